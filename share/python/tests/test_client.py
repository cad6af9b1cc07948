"""Tests of vramseal_share against a fake lease server written here.

The fake server listens on a Unix socket in a temp dir, speaks protocol v1
and passes each grant's memory as a sealed memfd (os.memfd_create), as the
real server's simulated GPU does.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest
from typing import Any, Callable, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import vramseal_share  # noqa: E402
from vramseal_share import ProtocolError, Revoked, ServerError, ShareError  # noqa: E402
from vramseal_share import ConnectionClosed  # noqa: E402

try:
    import numpy as np
except ImportError:  # the client needs numpy for Lease.tensor() only
    np = None

needs_numpy = unittest.skipUnless(np is not None, "numpy is not installed")

F_SEAL_FUTURE_WRITE = getattr(fcntl, "F_SEAL_FUTURE_WRITE", 0x10)

# The shard: two tensors at tensor offsets 0 and 48, placed at byte 128 of a
# 4096-byte memfd mapping.
WEIGHT = [[float(i) + 0.5 for i in range(4 * r, 4 * r + 4)] for r in range(3)]  # F32 [3,4]
BIAS = [7, -8, 9]  # I32 [3]
SHARD_BYTES = struct.pack("<12f", *[v for row in WEIGHT for v in row]) + struct.pack("<3i", *BIAS)
SHARD_OFFSET = 128
MAP_SIZE = 4096
TENSORS = [
    {"name": "weight", "dtype": "F32", "shape": [3, 4], "offset": 0, "size": 48},
    {"name": "bias", "dtype": "I32", "shape": [3], "offset": 48, "size": 12},
]
SHARD = {
    "id": "layer0",
    "device": "gpu0",
    "size": len(SHARD_BYTES),
    "digest": hashlib.sha256(SHARD_BYTES).hexdigest(),
    "tensors": TENSORS,
}


def send_frame(sock: socket.socket, msg: dict[str, Any], fd: Optional[int] = None) -> None:
    body = json.dumps(msg).encode()
    data = struct.pack(">I", len(body)) + body
    if fd is None:
        sock.sendall(data)
    else:
        sock.sendmsg([data[:1]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))])
        sock.sendall(data[1:])


def recv_exact(sock: socket.socket, n: int) -> Optional[bytes]:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def recv_frame(sock: socket.socket) -> Optional[dict[str, Any]]:
    header = recv_exact(sock, 4)
    if header is None:
        return None
    body = recv_exact(sock, struct.unpack(">I", header)[0])
    return None if body is None else json.loads(body)


def sealed_memfd(payload: bytes, offset: int, size: int) -> int:
    """A memfd of size bytes holding payload at offset, sealed as the Sim seals."""
    fd = os.memfd_create("fake-shard", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    os.pwrite(fd, payload, offset)
    seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | F_SEAL_FUTURE_WRITE | fcntl.F_SEAL_SEAL
    try:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    except OSError:  # an old kernel without F_SEAL_FUTURE_WRITE
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals & ~F_SEAL_FUTURE_WRITE)
    return fd


class FakeServer:
    """A protocol v1 server for one connection, run on a thread.

    Hooks let a test change its answers: on_hello(msg) returns the hello
    reply (or None to say welcome); before_reply(msg) runs before each
    answer to a request after hello; respond(msg) answers it (a test may
    replace it); handle is the grant's handle kind, memory() makes the fd
    each grant carries (a sealed memfd of map_size bytes holding the shard
    at SHARD_OFFSET) and device_uuid is the grant's.
    """

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="vramseal-share-test-")
        self.path = os.path.join(self.dir, "lease.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(1)
        self.conn: Optional[socket.socket] = None
        self.connected = threading.Event()
        self.send_lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.next_lease = 1
        self.handle = "memfd"
        self.map_size = MAP_SIZE
        self.memory: Callable[[], int] = lambda: sealed_memfd(SHARD_BYTES, SHARD_OFFSET, MAP_SIZE)
        self.device_uuid = "GPU-fake"
        self.on_connect: Optional[Callable[[socket.socket], bool]] = None
        self.on_hello: Optional[Callable[[dict[str, Any]], Optional[dict[str, Any]]]] = None
        self.before_reply: Optional[Callable[[dict[str, Any]], None]] = None
        self.respond: Callable[[dict[str, Any]], None] = self._answer
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "FakeServer":
        self.thread.start()
        return self

    def send(self, msg: dict[str, Any], fd: Optional[int] = None) -> None:
        assert self.conn is not None
        with self.send_lock:
            send_frame(self.conn, msg, fd)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.listener.close()
        self.thread.join(5)
        if self.conn is not None:
            self.conn.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self) -> None:
        try:
            self.conn, _ = self.listener.accept()
            self.connected.set()
            if self.on_connect is not None and not self.on_connect(self.conn):
                return
            hello = recv_frame(self.conn)
            if hello is None:
                return
            self.received.append(hello)
            reply = self.on_hello(hello) if self.on_hello else None
            if reply is not None:
                self.send(reply)
                return
            self.send({"op": "welcome", "version": 1, "worker": "worker-7", "req": hello.get("req")})
            while True:
                msg = recv_frame(self.conn)
                if msg is None:
                    return
                self.received.append(msg)
                if self.before_reply is not None:
                    self.before_reply(msg)
                self.respond(msg)
        except OSError:
            pass  # the test closed us
        except BaseException as e:  # shown by the test's tearDown
            self.errors.append(e)

    def _answer(self, msg: dict[str, Any]) -> None:
        op, req = msg["op"], msg.get("req")
        if op == "list":
            self.send({"op": "shards", "req": req, "shards": [SHARD]})
        elif op == "acquire":
            if msg.get("id") != SHARD["id"]:
                self.send({"op": "error", "req": req, "code": "unknown_shard",
                           "message": f"no shard {msg.get('id')!r}"})
                return
            lease = self.next_lease
            self.next_lease += 1
            fd = self.memory()
            try:
                self.send({"op": "grant", "req": req, "lease": lease, "id": SHARD["id"],
                           "size": SHARD["size"], "digest": SHARD["digest"],
                           "chunk_size": 1 << 20, "handle": self.handle,
                           "offset": SHARD_OFFSET, "map_size": self.map_size,
                           "device_uuid": self.device_uuid, "tensors": TENSORS}, fd)
            finally:
                os.close(fd)
        elif op == "release":
            self.send({"op": "released", "req": req, "lease": msg.get("lease")})
        else:
            self.send({"op": "error", "req": req, "code": "bad_request",
                       "message": f"unknown op {op!r}"})


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


class Waits(unittest.TestCase):
    """A test case that can wait, within 5 s, for a condition."""

    def wait_for(self, cond: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 5
        while not cond():
            if time.monotonic() > deadline:
                self.fail("condition not met in 5s")
            time.sleep(0.01)


class ClientTest(Waits):
    def setUp(self) -> None:
        self.threads_before = threading.active_count()
        self.fds_before = fd_count()
        self.server = FakeServer()

    def tearDown(self) -> None:
        self.server.close()
        if self.server.errors:
            raise self.server.errors[0]

    def connect(self) -> vramseal_share.Client:
        self.server.start()
        client = vramseal_share.connect(self.server.path, timeout=5)
        self.addCleanup(client.close)
        return client

    def test_hello_welcome(self) -> None:
        client = self.connect()
        self.assertEqual(client.worker, "worker-7")
        self.assertEqual(self.server.received[0], {"op": "hello", "version": 1, "req": 1})

    def test_wrong_version_raises_server_error(self) -> None:
        self.server.on_hello = lambda m: {"op": "error", "req": m.get("req"), "code": "version",
                                          "message": "version 1 is not spoken here"}
        self.server.start()
        with self.assertRaises(ServerError) as cm:
            vramseal_share.connect(self.server.path, timeout=5)
        self.assertEqual(cm.exception.code, "version")
        self.assertIn("not spoken", cm.exception.message)

    def test_refusal_before_hello_raises_server_error(self) -> None:
        def refuse(conn: socket.socket) -> bool:
            send_frame(conn, {"op": "error", "code": "not_allowed", "message": "uid 1000 is not allowed"})
            conn.shutdown(socket.SHUT_RDWR)
            return False

        self.server.on_connect = refuse
        self.server.start()
        with self.assertRaises(ServerError) as cm:
            vramseal_share.connect(self.server.path, timeout=5)
        self.assertEqual(cm.exception.code, "not_allowed")

    def test_list_parses_shards_and_tensors(self) -> None:
        shards = self.connect().shards()
        self.assertEqual(len(shards), 1)
        s = shards[0]
        self.assertEqual((s.id, s.device, s.size, s.digest),
                         ("layer0", "gpu0", 60, SHARD["digest"]))
        self.assertEqual(s.tensors, (
            vramseal_share.Tensor("weight", "F32", (3, 4), 0, 48),
            vramseal_share.Tensor("bias", "I32", (3,), 48, 12),
        ))

    def test_acquire_maps_the_shard_bytes(self) -> None:
        client = self.connect()
        with client.acquire("layer0") as lease:
            self.assertEqual(self.server.received[-1],
                             {"op": "acquire", "id": "layer0", "verified": True, "req": 2})
            self.assertEqual((lease.id, lease.shard_id, lease.size, lease.handle),
                             (1, "layer0", 60, "memfd"))
            view = lease.memoryview()
            self.assertTrue(view.readonly)
            self.assertEqual(len(view), 60)
            self.assertEqual(hashlib.sha256(view).hexdigest(), lease.digest)
            with self.assertRaises(TypeError):
                view[0] = 1
            view.release()

    @needs_numpy
    def test_tensor_values_are_zero_copy_and_read_only(self) -> None:
        client = self.connect()
        with client.acquire("layer0", verified=False) as lease:
            weight = lease.tensor("weight")
            self.assertEqual(weight.dtype, np.float32)
            self.assertEqual(weight.shape, (3, 4))
            np.testing.assert_array_equal(weight, np.array(WEIGHT, dtype=np.float32))
            np.testing.assert_array_equal(lease.tensor("bias"), np.array(BIAS, dtype=np.int32))
            self.assertFalse(weight.flags.writeable)
            self.assertFalse(weight.flags.owndata)  # a view over the mapping
            with self.assertRaises(ValueError):
                weight[0, 0] = 1.0
            with self.assertRaises(ValueError):
                weight.flags.writeable = True
            with self.assertRaises(KeyError):
                lease.tensor("nope")
            del weight

    def test_revoke_sets_event_and_stops_use(self) -> None:
        client = self.connect()
        lease = client.acquire("layer0")
        self.server.send({"op": "revoke", "lease": lease.id, "reason": "integrity",
                          "message": "digest mismatch on chunk 3"})
        self.assertTrue(lease.revoked.wait(5))
        self.assertEqual(lease.revoke_reason, "integrity")
        self.assertEqual(lease.revoke_message, "digest mismatch on chunk 3")
        with self.assertRaises(Revoked):
            lease.memoryview()
        if np is not None:
            with self.assertRaises(Revoked):
                lease.tensor("weight")
        n = len(self.server.received)
        lease.release()  # a no-op: the revoke ended it
        self.assertEqual(client.shards()[0].id, "layer0")
        self.assertEqual([m["op"] for m in self.server.received[n:]], ["list"])

    def test_release_sends_release(self) -> None:
        client = self.connect()
        lease = client.acquire("layer0")
        lease.release()
        self.assertEqual(self.server.received[-1], {"op": "release", "lease": 1, "req": 3})
        lease.release()  # idempotent
        self.assertEqual(len(self.server.received), 3)
        with self.assertRaises(Revoked):
            lease.memoryview()
        self.assertFalse(lease.revoked.is_set())

    def test_error_reply_raises_server_error(self) -> None:
        client = self.connect()
        with self.assertRaises(ServerError) as cm:
            client.acquire("no-such-shard")
        self.assertEqual(cm.exception.code, "unknown_shard")
        self.assertEqual(client.shards()[0].id, "layer0")  # the connection goes on

    def test_reply_matched_by_req_across_a_revoke(self) -> None:
        client = self.connect()
        lease = client.acquire("layer0")

        def interleave(msg: dict[str, Any]) -> None:
            if msg["op"] == "list":
                self.server.send({"op": "revoke", "lease": lease.id, "reason": "evicted",
                                  "message": "memory pressure"})
                self.server.send({"op": "released", "req": 999, "lease": 42})  # nobody's
                self.server.send({"op": "shards", "req": 998, "shards": []})  # nobody's

        self.server.before_reply = interleave
        shards = client.shards()
        self.assertEqual([s.id for s in shards], ["layer0"])
        self.assertTrue(lease.revoked.is_set())
        self.assertEqual(lease.revoke_reason, "evicted")

    def test_concurrent_requests_answered_out_of_order(self) -> None:
        client = self.connect()
        held: list[dict[str, Any]] = []

        # Hold the first request's answer until the second request came,
        # then answer the second first.
        def respond(msg: dict[str, Any]) -> None:
            if not held:
                held.append(msg)
                return
            self.server.respond = self.server._answer  # once only
            self.server._answer(msg)
            self.server._answer(held.pop())

        self.server.respond = respond

        results: dict[str, Any] = {}

        def lister() -> None:
            results["shards"] = client.shards()

        t = threading.Thread(target=lister)
        t.start()
        self.wait_for(lambda: len(self.server.received) == 2)  # hello, list
        lease = client.acquire("layer0")
        t.join(5)
        self.assertEqual(results["shards"][0].id, "layer0")
        self.assertEqual(lease.shard_id, "layer0")
        self.assertEqual([(m["op"], m["req"]) for m in self.server.received[1:]],
                         [("list", 2), ("acquire", 3)])
        lease.release()

    def test_revoke_right_after_grant(self) -> None:
        client = self.connect()
        original = self.server.respond

        def grant_then_revoke(msg: dict[str, Any]) -> None:
            original(msg)
            if msg["op"] == "acquire":
                self.server.send({"op": "revoke", "lease": 1, "reason": "device",
                                  "message": "Xid 79"})

        self.server.respond = grant_then_revoke
        lease = client.acquire("layer0")
        self.assertTrue(lease.revoked.wait(5))
        self.assertEqual(lease.revoke_reason, "device")

    def test_late_grant_after_timeout_is_released(self) -> None:
        self.server.start()
        client = vramseal_share.connect(self.server.path, timeout=0.2)
        self.addCleanup(client.close)
        original = self.server.respond

        def slow(msg: dict[str, Any]) -> None:
            if msg["op"] == "acquire":
                time.sleep(0.5)
            original(msg)

        self.server.respond = slow
        with self.assertRaises(ShareError):
            client.acquire("layer0")
        # The grant nobody waits for any more is given back.
        self.wait_for(lambda: self.server.received[-1].get("op") == "release")
        self.assertEqual(self.server.received[-1], {"op": "release", "lease": 1, "req": 3})
        self.assertEqual(client.shards()[0].id, "layer0")  # its reply was dropped

    @needs_numpy
    def test_bf16_comes_as_uint16(self) -> None:
        client = self.connect()
        global TENSORS
        saved = TENSORS
        TENSORS = [{"name": "half", "dtype": "BF16", "shape": [2], "offset": 0, "size": 4}]
        try:
            with client.acquire("layer0") as lease:
                raw = lease.tensor("half")
                self.assertEqual(raw.dtype, np.uint16)
                widened = (raw.astype(np.uint32) << 16).view(np.float32)
                expected = np.frombuffer(SHARD_BYTES[:4], dtype="<u2")
                np.testing.assert_array_equal(raw, expected)
                self.assertEqual(widened.shape, (2,))
                del raw, widened
        finally:
            TENSORS = saved

    def test_connection_closed_while_waiting_raises(self) -> None:
        client = self.connect()

        def hang_up(msg: dict[str, Any]) -> None:
            if msg["op"] == "list":
                assert self.server.conn is not None
                self.server.conn.shutdown(socket.SHUT_RDWR)

        lease = client.acquire("layer0")
        self.server.before_reply = hang_up
        with self.assertRaises(ConnectionClosed):
            client.shards()
        self.assertTrue(issubclass(ConnectionClosed, ShareError))
        self.assertTrue(lease.revoked.wait(5))  # the server's end ended the lease
        self.assertEqual(lease.revoke_reason, "closed")
        with self.assertRaises(ConnectionClosed):
            client.shards()

    def test_bad_frame_is_a_protocol_error(self) -> None:
        client = self.connect()

        def garble(msg: dict[str, Any]) -> None:
            assert self.server.conn is not None
            self.server.conn.sendall(struct.pack(">I", 0))

        self.server.before_reply = garble
        with self.assertRaises(ProtocolError):
            client.shards()

    def test_a_cuda_grant_that_cannot_be_mapped_is_released(self) -> None:
        # A memfd is no CUDA allocation: without a driver loading libcuda
        # fails, with one the import does. (tests/test_cuda.py maps real ones.)
        self.server.handle = "cuda-vmm-fd"
        client = self.connect()
        with self.assertRaises(ShareError):
            client.acquire("layer0")
        self.wait_for(lambda: self.server.received[-1].get("op") == "release")
        self.assertEqual(self.server.received[-1], {"op": "release", "lease": 1, "req": 3})
        self.assertEqual(client.shards()[0].id, "layer0")

    def test_read_copies_the_shard_bytes(self) -> None:
        client = self.connect()
        with client.acquire("layer0") as lease:
            self.assertEqual(lease.read(), SHARD_BYTES)
            self.assertEqual(lease.read(48, 4), SHARD_BYTES[48:52])
            with self.assertRaises(ValueError):
                lease.read(58, 4)
        with self.assertRaises(Revoked):
            lease.read()

    def test_close_leaves_no_thread_and_no_fd(self) -> None:
        self.server.start()
        self.server.connected.clear()
        client = vramseal_share.connect(self.server.path, timeout=5)
        leases = [client.acquire("layer0"), client.acquire("layer0")]
        if np is not None:
            self.assertEqual(float(leases[0].tensor("weight")[2, 3]), 11.5)
        leases[1].release()
        self.assertGreater(threading.active_count(), self.threads_before)
        client.close()
        client.close()  # idempotent
        with self.assertRaises(Revoked):
            leases[0].memoryview()
        with self.assertRaises(ConnectionClosed):
            client.shards()
        leases[0].release()  # a no-op after close
        self.server.close()
        self.assertEqual(threading.active_count(), self.threads_before)
        self.assertEqual(fd_count(), self.fds_before)

    def test_context_managers_clean_up(self) -> None:
        self.server.start()
        with vramseal_share.connect(self.server.path, timeout=5) as client:
            with client.acquire("layer0") as lease:
                self.assertEqual(bytes(lease.memoryview()[:4]), SHARD_BYTES[:4])
            self.assertEqual(self.server.received[-1]["op"], "release")
        self.server.close()
        self.assertEqual(threading.active_count(), self.threads_before)
        self.assertEqual(fd_count(), self.fds_before)


if __name__ == "__main__":
    unittest.main()
