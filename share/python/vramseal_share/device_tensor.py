"""DeviceTensor: one tensor of a cuda-vmm-fd lease, in device memory.

It is no array library's type: torch.as_tensor(t), cupy.asarray(t) and
numba take it through __cuda_array_interface__ (version 3, read-only), and
from_dlpack through __dlpack__ (DLPack 1.0's versioned capsule, flagged
read-only). Either way the consumer keeps the DeviceTensor, and so the
mapping, alive for as long as it uses the memory. to_bytes() and numpy()
copy it to the host.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Optional

from . import dlpack
from .client import Tensor

if TYPE_CHECKING:
    from .client import Lease
    from .cuda import DeviceMapping

# numpy dtype strings of client._DTYPES -> __cuda_array_interface__ typestr
_TYPESTR = {"i1": "|i1", "u1": "|u1", "?": "|b1"}


class DeviceTensor:
    """A tensor of a lease's device memory: name, dtype (safetensors'), shape,
    typestr (numpy's; BF16 is '<u2'), nbytes, and device (the CUDA ordinal).

    Every use (ptr, the interfaces, the copies) raises Revoked once the lease
    is revoked or released. The mapping lasts while a DeviceTensor does.
    """

    def __init__(self, lease: "Lease", info: Tensor, spec: str, mapping: "DeviceMapping") -> None:
        self.name = info.name
        self.dtype = info.dtype
        self.shape = info.shape
        self.typestr = _TYPESTR.get(spec, spec)
        self.nbytes = info.size
        self.device: int = mapping.device
        self._spec = spec
        self._lease = lease
        self._mapping = mapping
        self._start = lease.offset + info.offset  # in the mapping
        mapping.hold()
        weakref.finalize(self, mapping.drop)

    @property
    def ptr(self) -> int:
        """The device address of the first element."""
        self._lease_live()
        return self._mapping.ptr + self._start

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        """Numba's CUDA Array Interface, version 3: read-only, C-contiguous,
        and no stream to wait on (the bytes were written before the grant)."""
        return {
            "shape": self.shape,
            "typestr": self.typestr,
            "data": (self.ptr, True),
            "strides": None,
            "stream": None,
            "version": 3,
        }

    def __dlpack_device__(self) -> tuple[int, int]:
        """(kDLCUDA, the device ordinal)."""
        return (dlpack.KDL_CUDA, self.device)

    def __dlpack__(self, *, stream: Optional[int] = None, max_version: Optional[tuple[int, int]] = None,
                   dl_device: Optional[tuple[int, int]] = None, copy: Optional[bool] = None) -> Any:
        """A DLPack 1.0 capsule ("dltensor_versioned") flagged read-only.

        A consumer that cannot take version 1 (max_version None or under
        (1, 0)) gets BufferError: the legacy capsule cannot say read-only.
        stream is not waited on: nothing is pending on the memory. A copy
        (copy=True) or another device is refused with BufferError.
        """
        ptr = self.ptr  # Revoked first
        if max_version is None or tuple(max_version)[0] < 1:
            raise BufferError("this tensor is read-only, and only DLPack 1.0 can say so: "
                              "use a consumer that passes max_version=(1, 0), or "
                              "__cuda_array_interface__")
        if copy:
            raise BufferError("a DeviceTensor cannot be copied by DLPack: use to_bytes() or numpy()")
        if dl_device is not None and tuple(dl_device) != self.__dlpack_device__():
            raise BufferError(f"the tensor is on {self.__dlpack_device__()}, not {tuple(dl_device)}")
        return dlpack.capsule(self, ptr, self.device, self.dtype, self.shape)

    def to_bytes(self) -> bytes:
        """The tensor's bytes, copied to the host (cuMemcpyDtoH)."""
        self._lease_live()
        return self._mapping.copy_to_host(self._start, self.nbytes)

    def numpy(self) -> Any:
        """A host copy as a numpy array (BF16 as uint16, as tensor() says)."""
        import numpy as np

        return np.frombuffer(self.to_bytes(), dtype=np.dtype(self._spec)).reshape(self.shape)

    def __repr__(self) -> str:
        return f"<DeviceTensor {self.name!r} {self.dtype}{list(self.shape)} cuda:{self.device}>"

    def _lease_live(self) -> None:
        with self._lease._lock:
            self._lease._check_live()
