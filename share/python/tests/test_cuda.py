"""Tests of cuda-vmm-fd grants against the stand-in libcuda.

share/python/fake_cuda_test.go (go test) builds cuda/driver/testdata/
fake_libcuda.c into a libcuda.so.1 and runs this module with
LD_LIBRARY_PATH pointing at it and VRAMSEAL_FAKE_LIBCUDA=1; without that,
the tests skip (they write through the driver, which only the stand-in
lets them check safely).

The fake server of test_client.py exports a real VMM allocation of the
stand-in: on device 1, two granules, the shard's bytes written at
SHARD_OFFSET with cuMemcpyHtoD; each grant carries a fresh
cuMemExportToShareableHandle descriptor of it.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
import unittest
from typing import Any
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import vramseal_share  # noqa: E402
from vramseal_share import Revoked, ShareError, dlpack  # noqa: E402
from vramseal_share.cuda import (  # noqa: E402
    CudaError,
    CUcontext,
    CUdeviceptr,
    CUmemAccessDesc,
    CUmemGenericAllocationHandle,
    CUmemLocation,
    driver,
)
from tests import test_client  # noqa: E402
from tests.test_client import SHARD_BYTES, SHARD_OFFSET, WEIGHT, FakeServer, fd_count  # noqa: E402

try:
    import numpy as np
except ImportError:
    np = None

FAKE = os.environ.get("VRAMSEAL_FAKE_LIBCUDA") == "1"
DEVICE = 1
GRANULE = 2 << 20
SIZE = 2 * GRANULE
CUDA_ERROR_ILLEGAL_ADDRESS = 700
CUDA_ERROR_INVALID_CONTEXT = 201


# What a DLPack consumer calls, with prototypes of the tests' own.
capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi))
capsule_set_name = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_SetName", ctypes.pythonapi))


class CUmemAllocationProp(ctypes.Structure):
    """cuda.h's CUmemAllocationProp."""

    class _Flags(ctypes.Structure):
        _fields_ = [("compressionType", ctypes.c_ubyte), ("gpuDirectRDMACapable", ctypes.c_ubyte),
                    ("usage", ctypes.c_ushort), ("reserved", ctypes.c_ubyte * 4)]

    _fields_ = [("type", ctypes.c_int), ("requestedHandleTypes", ctypes.c_int),
                ("location", CUmemLocation), ("win32HandleMetaData", ctypes.c_void_p),
                ("allocFlags", _Flags)]


class Exporter:
    """The server's side: a VMM allocation on DEVICE, mapped read-write in
    this thread's primary context, holding SHARD_BYTES at SHARD_OFFSET."""

    def __init__(self) -> None:
        driver()  # loads libcuda.so.1 and calls cuInit, as the server has
        self.lib = ctypes.CDLL("libcuda.so.1")  # the same library the client loads
        self.ctx = CUcontext()
        self.check("cuDevicePrimaryCtxRetain", ctypes.byref(self.ctx), DEVICE)
        self.check("cuCtxSetCurrent", self.ctx)
        prop = CUmemAllocationProp(type=1, requestedHandleTypes=1, location=CUmemLocation(1, DEVICE))
        self.handle = CUmemGenericAllocationHandle()
        self.check("cuMemCreate", ctypes.byref(self.handle), ctypes.c_size_t(SIZE), ctypes.byref(prop),
                   ctypes.c_ulonglong(0))
        self.ptr = CUdeviceptr()
        self.check("cuMemAddressReserve", ctypes.byref(self.ptr), ctypes.c_size_t(SIZE),
                   ctypes.c_size_t(0), CUdeviceptr(0), ctypes.c_ulonglong(0))
        self.check("cuMemMap", self.ptr, ctypes.c_size_t(SIZE), ctypes.c_size_t(0), self.handle,
                   ctypes.c_ulonglong(0))
        rw = CUmemAccessDesc(CUmemLocation(1, DEVICE), 3)
        self.check("cuMemSetAccess", self.ptr, ctypes.c_size_t(SIZE), ctypes.byref(rw), ctypes.c_size_t(1))
        self.check("cuMemcpyHtoD_v2", CUdeviceptr(self.ptr.value + SHARD_OFFSET), SHARD_BYTES,
                   ctypes.c_size_t(len(SHARD_BYTES)))

    def check(self, name: str, *args: object) -> None:
        res = self.call(name, *args)
        if res != 0:
            raise AssertionError(f"{name}: CUresult {res}")

    def call(self, name: str, *args: object) -> int:
        self.lib.cuCtxSetCurrent(self.ctx)  # on whichever thread calls
        return getattr(self.lib, name)(*args)

    def export(self) -> int:
        fd = ctypes.c_int(-1)
        self.check("cuMemExportToShareableHandle", ctypes.byref(fd), self.handle, 1, ctypes.c_ulonglong(0))
        return fd.value

    def free_bytes(self) -> int:
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self.check("cuMemGetInfo_v2", ctypes.byref(free), ctypes.byref(total))
        return free.value

    def close(self) -> None:
        self.check("cuMemUnmap", self.ptr, ctypes.c_size_t(SIZE))
        self.check("cuMemAddressFree", self.ptr, ctypes.c_size_t(SIZE))
        self.check("cuMemRelease", self.handle)
        self.check("cuDevicePrimaryCtxRelease_v2", DEVICE)


@unittest.skipUnless(FAKE, "VRAMSEAL_FAKE_LIBCUDA is not 1: go test runs these over the stand-in libcuda")
class CudaGrantTest(test_client.Waits):
    def setUp(self) -> None:
        self.exporter = Exporter()
        self.fds_before = fd_count()
        self.server = FakeServer()
        self.server.handle = "cuda-vmm-fd"
        self.server.map_size = SIZE
        self.server.memory = self.exporter.export
        self.server.device_uuid = driver().device_uuid(DEVICE)
        self.free_before = self.exporter.free_bytes()
        self.server.start()
        self.client = vramseal_share.connect(self.server.path, timeout=5)
        self.fds_connected = fd_count()

    def tearDown(self) -> None:
        self.client.close()
        self.server.close()
        try:
            self.assertEqual(self.exporter.free_bytes(), self.free_before, "the client's mapping outlived it")
            self.assertEqual(fd_count(), self.fds_before, "a descriptor leaked")
        finally:
            self.exporter.close()
        # Had the client kept its retain of the primary context, it would
        # still be live: the stand-in refuses calls in a released one.
        self.assertEqual(self.exporter.call("cuMemGetInfo_v2", ctypes.byref(ctypes.c_size_t()),
                                            ctypes.byref(ctypes.c_size_t())), CUDA_ERROR_INVALID_CONTEXT)
        if self.server.errors:
            raise self.server.errors[0]

    def test_the_grant_maps_the_allocation_read_only_on_its_device(self) -> None:
        with self.client.acquire("layer0") as lease:
            self.assertEqual(lease.handle, "cuda-vmm-fd")
            self.assertEqual(self.exporter.free_bytes(), self.free_before - SIZE)
            self.assertEqual(lease.read(), SHARD_BYTES)
            self.assertEqual(lease.read(48, 12), SHARD_BYTES[48:])
            weight = lease.tensor("weight")
            self.assertEqual(weight.device, DEVICE)
            self.assertEqual(weight.__dlpack_device__(), (2, DEVICE))
            cai = weight.__cuda_array_interface__
            self.assertEqual(cai, {"shape": (3, 4), "typestr": "<f4", "data": (weight.ptr, True),
                                   "strides": None, "stream": None, "version": 3})
            self.assertEqual(weight.to_bytes(), SHARD_BYTES[:48])
            self.assertEqual(ctypes.string_at(cai["data"][0], 48), SHARD_BYTES[:48])  # no copy
            if np is not None:
                np.testing.assert_array_equal(weight.numpy(), np.array(WEIGHT, dtype=np.float32))
                np.testing.assert_array_equal(lease.tensor("bias").numpy(), [7, -8, 9])
            self.assertEqual(lease.tensor("bias").__cuda_array_interface__["typestr"], "<i4")
            with self.assertRaises(ShareError):
                lease.memoryview()  # device memory has no host view
            # A write through the client's mapping is refused.
            res = self.exporter.call("cuMemcpyHtoD_v2", CUdeviceptr(weight.ptr), b"\0" * 4, ctypes.c_size_t(4))
            self.assertEqual(res, CUDA_ERROR_ILLEGAL_ADDRESS)
            self.assertEqual(weight.to_bytes(), SHARD_BYTES[:48])
            del weight, cai
        # Released with no tensor left: unmapped at once.
        self.assertEqual(self.exporter.free_bytes(), self.free_before)
        self.assertEqual(fd_count(), self.fds_connected)
        self.assertEqual(self.server.received[-1]["op"], "release")

    def test_a_revoke_stops_every_use_and_unmaps_with_the_last_tensor(self) -> None:
        lease = self.client.acquire("layer0")
        weight = lease.tensor("weight")
        self.server.send({"op": "revoke", "lease": lease.id, "reason": "integrity",
                          "message": "digest mismatch"})
        self.assertTrue(lease.revoked.wait(5))
        for use in (lambda: weight.__cuda_array_interface__, lambda: weight.ptr, weight.to_bytes,
                    lambda: weight.__dlpack__(max_version=(1, 0)), lease.read,
                    lambda: lease.tensor("bias")):
            with self.assertRaises(Revoked):
                use()
        # The tensor (and whatever torch or cupy made of it) holds the mapping.
        self.assertEqual(self.exporter.free_bytes(), self.free_before - SIZE)
        del weight
        self.assertEqual(self.exporter.free_bytes(), self.free_before)
        lease.release()  # a no-op: the revoke ended it
        self.assertEqual([m["op"] for m in self.server.received], ["hello", "acquire"])

    def test_a_revoke_unmaps_on_the_reader_thread(self) -> None:
        lease = self.client.acquire("layer0")
        self.assertEqual(self.exporter.free_bytes(), self.free_before - SIZE)
        self.server.send({"op": "revoke", "lease": lease.id, "reason": "evicted", "message": "x"})
        self.assertTrue(lease.revoked.wait(5))
        # The reader made the primary context current on its own thread.
        self.wait_for(lambda: self.exporter.free_bytes() == self.free_before)

    def test_a_long_read_holds_up_neither_a_revoke_nor_the_reader_thread(self) -> None:
        reading, other = self.client.acquire("layer0"), self.client.acquire("layer0")
        drv, copying, finish = driver(), threading.Event(), threading.Event()
        call = drv.call

        def slow_copy(name: str, *args: Any) -> None:
            if name == "cuMemcpyDtoH_v2":
                copying.set()
                finish.wait(30)
            call(name, *args)

        got: list[bytes] = []
        with mock.patch.object(drv, "call", slow_copy):
            reader = threading.Thread(target=lambda: got.append(reading.read()))
            reader.start()
            try:
                self.assertTrue(copying.wait(5), "the read to start copying")
                self.server.send({"op": "revoke", "lease": reading.id, "reason": "evicted", "message": "x"})
                self.server.send({"op": "revoke", "lease": other.id, "reason": "evicted", "message": "y"})
                self.assertTrue(reading.revoked.wait(5), "the revoke of the lease being read")
                self.assertTrue(other.revoked.wait(5), "the next frame, while the read still copies")
                # The other lease unmaps; the one being read stays mapped
                # until its copy ends.
                self.wait_for(lambda: self.exporter.free_bytes() == self.free_before - SIZE)
            finally:
                finish.set()
                reader.join(30)
        self.assertEqual(got, [SHARD_BYTES], "the copy begun before the revoke completes")
        self.wait_for(lambda: self.exporter.free_bytes() == self.free_before)

    def test_bf16_is_uint16_to_the_array_interface_and_bfloat16_to_dlpack(self) -> None:
        global_tensors = test_client.TENSORS
        test_client.TENSORS = [{"name": "half", "dtype": "BF16", "shape": [2], "offset": 0, "size": 4}]
        try:
            with self.client.acquire("layer0") as lease:
                half = lease.tensor("half")
                self.assertEqual(half.__cuda_array_interface__["typestr"], "<u2")
                cap = half.__dlpack__(max_version=(1, 0))
                m = dlpack.DLManagedTensorVersioned.from_address(capsule_pointer(cap, b"dltensor_versioned"))
                self.assertEqual((m.dl_tensor.dtype.code, m.dl_tensor.dtype.bits), (4, 16))
                self.assertEqual(half.to_bytes(), SHARD_BYTES[:4])
                del half, cap, m
        finally:
            test_client.TENSORS = global_tensors

    def test_closing_the_client_unmaps(self) -> None:
        leases = [self.client.acquire("layer0"), self.client.acquire("layer0")]
        self.assertNotEqual(leases[0].tensor("weight").ptr, leases[1].tensor("weight").ptr)
        self.assertEqual(self.exporter.free_bytes(), self.free_before - 2 * SIZE)
        self.client.close()
        self.assertEqual(self.exporter.free_bytes(), self.free_before)
        with self.assertRaises(Revoked):
            leases[0].read()

    def test_the_device_is_found_by_its_own_uuid(self) -> None:
        # cuDeviceGetUuid is a MIG instance's parent's UUID in the stand-in;
        # the server names devices by cuDeviceGetUuid_v2, as the client.
        u = (ctypes.c_ubyte * 16)()
        self.assertEqual(self.exporter.lib.cuDeviceGetUuid(u, DEVICE), 0)
        h = bytes(u).hex()
        self.server.device_uuid = f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        self.assertNotEqual(self.server.device_uuid, driver().device_uuid(DEVICE))
        with self.assertRaisesRegex(ShareError, "no CUDA device"):
            self.client.acquire("layer0")
        self.server.device_uuid = driver().device_uuid(DEVICE).upper()
        with self.client.acquire("layer0") as lease:
            self.assertEqual(lease.tensor("bias").device, DEVICE)

    def test_a_driver_error_names_the_call_and_releases_the_grant(self) -> None:
        self.server.map_size = GRANULE + 4096  # not whole granules: cuMemAddressReserve refuses
        with self.assertRaises(CudaError) as caught:
            self.client.acquire("layer0")
        self.assertEqual((caught.exception.call, caught.exception.name),
                         ("cuMemAddressReserve", "CUDA_ERROR_INVALID_VALUE"))
        self.assertIn("CUDA_ERROR_INVALID_VALUE", str(caught.exception))
        self.wait_for(lambda: self.server.received[-1]["op"] == "release")
        # tearDown checks that nothing stayed imported, reserved or retained.

    def test_dlpack_capsule_is_read_only_and_holds_the_mapping(self) -> None:
        lease = self.client.acquire("layer0")
        weight = lease.tensor("weight")
        ptr = weight.ptr
        cap = weight.__dlpack__(max_version=(1, 0), stream=None)
        m = dlpack.DLManagedTensorVersioned.from_address(capsule_pointer(cap, b"dltensor_versioned"))
        t = m.dl_tensor
        self.assertEqual((m.version.major, m.version.minor), (1, 0))
        self.assertEqual(m.flags & dlpack.DLPACK_FLAG_BITMASK_READ_ONLY, 1)
        self.assertEqual((t.data, t.device.device_type, t.device.device_id, t.ndim), (ptr, 2, DEVICE, 2))
        self.assertEqual((t.dtype.code, t.dtype.bits, t.dtype.lanes), (2, 32, 1))
        self.assertEqual([t.shape[0], t.shape[1]], [3, 4])
        self.assertFalse(t.strides)  # C-contiguous
        self.assertEqual(t.byte_offset, 0)
        # A capsule nobody consumed holds the mapping until it dies.
        del weight
        lease.release()
        self.assertEqual(self.exporter.free_bytes(), self.free_before - SIZE)
        del cap, m, t
        self.assertEqual(self.exporter.free_bytes(), self.free_before)

    def test_a_dlpack_consumer_frees_with_the_deleter(self) -> None:
        with self.client.acquire("layer0") as lease:
            cap = lease.tensor("bias").__dlpack__(max_version=(1, 2))
        m = dlpack.DLManagedTensorVersioned.from_address(capsule_pointer(cap, b"dltensor_versioned"))
        self.assertEqual((m.dl_tensor.dtype.code, m.dl_tensor.dtype.bits), (0, 32))
        used = b"used_dltensor_versioned"  # what a consumer does: rename, use, delete
        self.assertEqual(capsule_set_name(cap, used), 0)
        del cap  # its destructor leaves a consumed capsule alone
        self.assertEqual(self.exporter.free_bytes(), self.free_before - SIZE)
        m.deleter(ctypes.pointer(m))
        self.assertEqual(self.exporter.free_bytes(), self.free_before)

    def test_a_second_process_maps_the_grant(self) -> None:
        # The real case: only the descriptor crosses from the exporting
        # process (this one) to the client's.
        other = FakeServer()
        other.handle, other.map_size, other.memory = "cuda-vmm-fd", SIZE, self.exporter.export
        other.device_uuid = self.server.device_uuid
        other.start()
        code = ("import sys, vramseal_share\n"
                "with vramseal_share.connect(sys.argv[1], timeout=10) as c:\n"
                "    lease = c.acquire('layer0')\n"
                "    t = lease.tensor('weight')\n"
                "    print(t.to_bytes().hex(), t.__cuda_array_interface__['data'][1], t.device)\n"
                "    del t\n"
                "    lease.release()\n")
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        try:
            out = subprocess.run([sys.executable, "-c", code, other.path], cwd=here, check=True, timeout=30,
                                 capture_output=True, text=True).stdout
            self.assertEqual(out.split(), [SHARD_BYTES[:48].hex(), "True", str(DEVICE)])
            self.wait_for(lambda: [m["op"] for m in other.received] == ["hello", "acquire", "release"])
        finally:
            other.close()

    def test_dlpack_wants_a_consumer_that_knows_read_only(self) -> None:
        with self.client.acquire("layer0") as lease:
            weight = lease.tensor("weight")
            with self.assertRaises(BufferError):
                weight.__dlpack__()  # the legacy capsule cannot say read-only
            with self.assertRaises(BufferError):
                weight.__dlpack__(max_version=(1, 0), copy=True)
            with self.assertRaises(BufferError):
                weight.__dlpack__(max_version=(1, 0), dl_device=(1, 0))
            del weight


class LazyLoadTest(unittest.TestCase):
    def test_importing_the_client_loads_no_driver(self) -> None:
        code = ("import vramseal_share; "
                "assert 'libcuda' not in open('/proc/self/maps').read()")
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        subprocess.run([sys.executable, "-c", code], cwd=here, check=True, timeout=30)


if __name__ == "__main__":
    unittest.main()
