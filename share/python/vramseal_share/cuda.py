"""Mapping a cuda-vmm-fd grant: the CUDA driver API through ctypes.

A cuda-vmm-fd grant's descriptor is a CUDA VMM allocation's POSIX file
descriptor. In the primary context of the device whose UUID the grant
names, the client imports it (cuMemImportFromShareableHandle), reserves
map_size bytes of device address space (cuMemAddressReserve), maps the
allocation there (cuMemMap) and gives that device read access only
(cuMemSetAccess with CU_MEM_ACCESS_FLAGS_PROT_READ). The bytes stay where
the server sealed them: nothing is copied.

libcuda.so.1 is loaded, and cuInit called, on the first such grant only: a
client that sees memfd grants never loads it. Every call makes the device's
primary context current on the calling thread first (the reader thread
unmaps on a revoke), and puts back the context that was current, where the
driver has cuCtxGetCurrent.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Any, Optional

from .client import ShareError

LIBRARY = "libcuda.so.1"
"""The driver library loaded, by the dynamic linker's search."""

CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR = 1
CU_MEM_LOCATION_TYPE_DEVICE = 1
CU_MEM_ACCESS_FLAGS_PROT_READ = 1

CUresult = ctypes.c_int
CUdevice = ctypes.c_int
CUcontext = ctypes.c_void_p
CUdeviceptr = ctypes.c_uint64
CUmemGenericAllocationHandle = ctypes.c_uint64


class CUuuid(ctypes.Structure):
    """cuda.h's CUuuid: 16 bytes."""

    _fields_ = [("bytes", ctypes.c_ubyte * 16)]


class CUmemLocation(ctypes.Structure):
    """cuda.h's CUmemLocation: a CUmemLocationType and an id (the ordinal)."""

    _fields_ = [("type", ctypes.c_int), ("id", ctypes.c_int)]


class CUmemAccessDesc(ctypes.Structure):
    """cuda.h's CUmemAccessDesc: where, and the CUmemAccess_flags."""

    _fields_ = [("location", CUmemLocation), ("flags", ctypes.c_int)]


class CudaError(ShareError):
    """A CUDA driver call failed. call is the function, code the CUresult,
    name its name from cuGetErrorName ("CUDA_ERROR_INVALID_VALUE", ...)."""

    def __init__(self, call: str, code: int, name: str) -> None:
        super().__init__(f"{call}: {name} ({code})")
        self.call = call
        self.code = code
        self.name = name


# name -> argtypes of the calls a client needs; every one returns CUresult.
_SIGNATURES = {
    "cuInit": [ctypes.c_uint],
    "cuGetErrorName": [CUresult, ctypes.POINTER(ctypes.c_char_p)],
    "cuDeviceGetCount": [ctypes.POINTER(ctypes.c_int)],
    "cuDeviceGet": [ctypes.POINTER(CUdevice), ctypes.c_int],
    "cuDevicePrimaryCtxRetain": [ctypes.POINTER(CUcontext), CUdevice],
    "cuDevicePrimaryCtxRelease_v2": [CUdevice],
    "cuCtxSetCurrent": [CUcontext],
    "cuCtxSynchronize": [],
    "cuMemImportFromShareableHandle": [
        ctypes.POINTER(CUmemGenericAllocationHandle), ctypes.c_void_p, ctypes.c_int],
    "cuMemAddressReserve": [
        ctypes.POINTER(CUdeviceptr), ctypes.c_size_t, ctypes.c_size_t, CUdeviceptr,
        ctypes.c_ulonglong],
    "cuMemAddressFree": [CUdeviceptr, ctypes.c_size_t],
    "cuMemMap": [CUdeviceptr, ctypes.c_size_t, ctypes.c_size_t, CUmemGenericAllocationHandle,
                 ctypes.c_ulonglong],
    "cuMemUnmap": [CUdeviceptr, ctypes.c_size_t],
    "cuMemSetAccess": [CUdeviceptr, ctypes.c_size_t, ctypes.POINTER(CUmemAccessDesc),
                       ctypes.c_size_t],
    "cuMemRelease": [CUmemGenericAllocationHandle],
    "cuMemcpyDtoH_v2": [ctypes.c_void_p, CUdeviceptr, ctypes.c_size_t],
}
# Optional: the MIG instance's own UUID (CUDA 11.4 on) or the device's, as
# the Go backend picks; the current context, to put it back.
_OPTIONAL = {
    "cuDeviceGetUuid_v2": [ctypes.POINTER(CUuuid), CUdevice],
    "cuDeviceGetUuid": [ctypes.POINTER(CUuuid), CUdevice],
    "cuCtxGetCurrent": [ctypes.POINTER(CUcontext)],
}


class Driver:
    """libcuda.so.1 with the calls a client needs, initialised (cuInit(0))."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self._fn: dict[str, Any] = {}  # ctypes function pointers
        for table, required in ((_SIGNATURES, True), (_OPTIONAL, False)):
            for name, argtypes in table.items():
                try:
                    fn = getattr(lib, name)
                except AttributeError:
                    if required:
                        raise ShareError(f"{LIBRARY} has no {name}: the driver is too old") from None
                    continue
                fn.argtypes = argtypes
                fn.restype = CUresult
                self._fn[name] = fn
        uuid = self._fn.get("cuDeviceGetUuid_v2") or self._fn.get("cuDeviceGetUuid")
        if uuid is None:
            raise ShareError(f"{LIBRARY} has neither cuDeviceGetUuid_v2 nor cuDeviceGetUuid")
        self._uuid = uuid
        self.call("cuInit", 0)

    def call(self, name: str, *args: object) -> None:
        """Call name(*args); raise CudaError unless it returns CUDA_SUCCESS."""
        res = self._fn[name](*args)
        if res != 0:
            raise CudaError(name, res, self.error_name(res))

    def error_name(self, res: int) -> str:
        """cuGetErrorName's name for res, or "CUresult <res>"."""
        name = ctypes.c_char_p()
        if self._fn["cuGetErrorName"](res, ctypes.byref(name)) == 0 and name.value:
            return name.value.decode("ascii", "replace")
        return f"CUresult {res}"

    def device_uuid(self, dev: int) -> str:
        """dev's UUID as the server writes it: GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx."""
        u = CUuuid()
        res = self._uuid(ctypes.byref(u), dev)
        if res != 0:
            raise CudaError(self._uuid.__name__, res, self.error_name(res))
        h = bytes(u.bytes).hex()
        return f"GPU-{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    def find_device(self, uuid: str) -> int:
        """The ordinal of the device whose UUID is uuid (case does not matter)."""
        count = ctypes.c_int()
        self.call("cuDeviceGetCount", ctypes.byref(count))
        for ordinal in range(count.value):
            dev = CUdevice()
            self.call("cuDeviceGet", ctypes.byref(dev), ordinal)
            if self.device_uuid(dev.value).lower() == uuid.lower():
                return dev.value
        raise ShareError(f"no CUDA device here has the grant's UUID {uuid!r} ({count.value} seen)")

    def current(self) -> Optional[int]:
        """The calling thread's current context, or None where the driver
        cannot say (it then is not put back)."""
        get = self._fn.get("cuCtxGetCurrent")
        if get is None:
            return None
        ctx = CUcontext()
        return (ctx.value or 0) if get(ctypes.byref(ctx)) == 0 else None


_driver: Optional[Driver] = None
_driver_lock = threading.Lock()


def driver() -> Driver:
    """The process's Driver, loading libcuda.so.1 on the first call."""
    global _driver
    with _driver_lock:
        if _driver is None:
            try:
                lib = ctypes.CDLL(LIBRARY)
            except OSError as e:
                raise ShareError(f"a cuda-vmm-fd grant needs the CUDA driver: load {LIBRARY}: {e}") from e
            _driver = Driver(lib)
        return _driver


class _InContext:
    """A with-block in which the context ctx is current on this thread."""

    def __init__(self, drv: Driver, ctx: int) -> None:
        self._drv = drv
        self._ctx = ctx
        self._saved: Optional[int] = None

    def __enter__(self) -> None:
        self._saved = self._drv.current()
        self._drv.call("cuCtxSetCurrent", CUcontext(self._ctx))

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None and self._saved != self._ctx:
            self._drv.call("cuCtxSetCurrent", CUcontext(self._saved or None))


class DeviceMapping:
    """A cuda-vmm-fd descriptor mapped read-only at ptr, map_size bytes, on
    device ordinal device.

    It unmaps once retire() was called and no user holds it (hold/drop), or
    when it is garbage, whichever is first: unmap, free the address range,
    release the imported handle, release the primary context, in that order.
    """

    def __init__(self, fd: int, map_size: int, device_uuid: str) -> None:
        drv = driver()
        self.device = drv.find_device(device_uuid)
        self.size = map_size
        self._drv = drv
        self._lock = threading.RLock()  # a tensor collected by the GC inside may drop()
        ctx = CUcontext()
        drv.call("cuDevicePrimaryCtxRetain", ctypes.byref(ctx), self.device)
        self._ctx: int = ctx.value or 0
        self._state = _Resources(drv, self.device, self._ctx)
        try:
            with _InContext(drv, self._ctx):
                handle = CUmemGenericAllocationHandle()
                drv.call("cuMemImportFromShareableHandle", ctypes.byref(handle),
                         ctypes.c_void_p(fd), CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
                self._state.handle = handle.value
                ptr = CUdeviceptr()
                drv.call("cuMemAddressReserve", ctypes.byref(ptr), map_size, 0, 0, 0)
                self._state.ptr, self._state.size = ptr.value, map_size
                drv.call("cuMemMap", ptr, map_size, 0, handle, 0)
                self._state.mapped = True
                access = CUmemAccessDesc(CUmemLocation(CU_MEM_LOCATION_TYPE_DEVICE, self.device),
                                         CU_MEM_ACCESS_FLAGS_PROT_READ)
                drv.call("cuMemSetAccess", ptr, map_size, ctypes.byref(access), 1)
        except BaseException:
            try:
                self._state.free()
            except CudaError:
                pass  # the failure that brought us here is the one to report
            raise
        self.ptr: int = self._state.ptr
        self._users = 0
        self._retired = False
        self._finalizer = weakref.finalize(self, self._state.free)

    def hold(self) -> None:
        """Count one more user (a tensor) that keeps the mapping after retire()."""
        with self._lock:
            self._users += 1

    def drop(self) -> None:
        """A user is gone: unmap if it was the last and retire() was called."""
        with self._lock:
            self._users -= 1
            if self._retired and self._users == 0:
                self._finalizer()

    def retire(self) -> None:
        """The lease is over: unmap now, or when the last user is dropped.
        A failure to unmap now raises CudaError."""
        with self._lock:
            self._retired = True
            if self._users == 0:
                self._finalizer()

    def copy_to_host(self, offset: int, n: int) -> bytes:
        """n bytes from offset of the mapping, copied to host memory. The
        caller must be a user (hold), so the mapping stays while it copies
        (a call with no user at all is refused; one that merely shares
        another's hold is not caught); the copy takes no lock, so a revoke
        meanwhile (retire) does not wait for it, nor does the client's
        reader thread that handles the revoke."""
        if offset < 0 or n < 0 or offset + n > self.size:
            raise ValueError(f"[{offset}, {offset + n}) is outside the mapping's {self.size} bytes")
        with self._lock:
            if not self._finalizer.alive:
                raise ShareError("the device mapping is unmapped")
            if self._users == 0:
                raise ShareError("copy_to_host without hold(): the mapping may go while it copies")
        buf = ctypes.create_string_buffer(n)
        if n:
            with _InContext(self._drv, self._ctx):
                self._drv.call("cuMemcpyDtoH_v2", buf, CUdeviceptr(self.ptr + offset), n)
        return buf.raw

    @property
    def unmapped(self) -> bool:
        """Whether it is unmapped."""
        return not self._finalizer.alive


class _Resources:
    """What a DeviceMapping holds, apart from it, so a finalizer can free it."""

    def __init__(self, drv: Driver, device: int, ctx: int) -> None:
        self.drv = drv
        self.device = device
        self.ctx = ctx
        self.handle: Optional[int] = None
        self.ptr = 0
        self.size = 0
        self.mapped = False
        self.retained = True

    def free(self) -> None:
        """Undo what is done, in reverse order; try every step and raise the
        first failure."""
        errors: list[CudaError] = []

        def step(name: str, *args: object) -> None:
            try:
                self.drv.call(name, *args)
            except CudaError as e:
                errors.append(e)

        try:
            with _InContext(self.drv, self.ctx):
                if self.mapped:
                    self.mapped = False
                    # cuMemUnmap does not wait for work still reading the
                    # range (a kernel torch queued on a tensor just dropped):
                    # let it finish first, or it faults the context.
                    step("cuCtxSynchronize")
                    step("cuMemUnmap", CUdeviceptr(self.ptr), self.size)
                if self.size:
                    size, self.size = self.size, 0
                    step("cuMemAddressFree", CUdeviceptr(self.ptr), size)
                if self.handle is not None:
                    handle, self.handle = self.handle, None
                    step("cuMemRelease", CUmemGenericAllocationHandle(handle))
        except CudaError as e:
            errors.append(e)
        if self.retained:
            self.retained = False
            step("cuDevicePrimaryCtxRelease_v2", self.device)
        if errors:
            raise errors[0]
