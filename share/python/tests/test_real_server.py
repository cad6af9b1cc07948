"""The client against a real vramseal lease server.

share/python/real_server_test.go (go test) starts the server over simulated
GPUs and runs this module with VRAMSEAL_SHARE_SOCKET set; without it, the
tests skip.
"""

from __future__ import annotations

import hashlib
import os
import unittest

import numpy as np

import vramseal_share

SOCKET = os.environ.get("VRAMSEAL_SHARE_SOCKET")


@unittest.skipUnless(SOCKET, "VRAMSEAL_SHARE_SOCKET is not set: go test runs these against a server")
class RealServerTest(unittest.TestCase):
    def setUp(self) -> None:
        self.client = vramseal_share.connect(SOCKET, timeout=30)

    def tearDown(self) -> None:
        self.client.close()

    def test_a_verified_lease_maps_the_published_bytes(self) -> None:
        shards = {s.id: s for s in self.client.shards()}
        self.assertIn("model.safetensors", shards)
        with self.client.acquire("model.safetensors", verified=True) as lease:
            view = lease.memoryview()
            self.assertTrue(view.readonly)
            self.assertEqual(hashlib.sha256(view).hexdigest(), shards["model.safetensors"].digest)
            del view

    def test_a_tensor_is_a_read_only_array_over_the_sealed_memory(self) -> None:
        with self.client.acquire("model.safetensors") as lease:
            weights = lease.tensor("weights")
            self.assertEqual(weights.dtype, np.float32)
            self.assertEqual(weights.shape, (2, 3))
            np.testing.assert_array_equal(weights, np.arange(6, dtype=np.float32).reshape(2, 3) + 0.5)
            with self.assertRaises(ValueError):
                weights[0, 0] = 1.0
            del weights

    def test_unknown_shards_are_refused_with_their_code(self) -> None:
        with self.assertRaises(vramseal_share.ServerError) as caught:
            self.client.acquire("no-such-shard")
        self.assertEqual(caught.exception.code, "unknown_shard")

    def test_zz_an_eviction_revokes_the_lease(self) -> None:
        # go test evicts the victim's device once we say we hold this lease.
        lease = self.client.acquire("victim", verified=False)
        leased_fd = os.environ.get("VRAMSEAL_LEASED_FD")
        if leased_fd is not None:
            os.write(int(leased_fd), b"leased\n")
        self.assertTrue(lease.revoked.wait(30), "no revoke within 30 s")
        self.assertEqual(lease.revoke_reason, "evicted")
        with self.assertRaises(vramseal_share.Revoked):
            lease.memoryview()
        lease.release()


if __name__ == "__main__":
    unittest.main()
