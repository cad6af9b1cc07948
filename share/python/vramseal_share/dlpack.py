"""DLPack 1.0 capsules for DeviceTensor.__dlpack__, built with ctypes.

The capsule ("dltensor_versioned") holds a DLManagedTensorVersioned whose
flags say DLPACK_FLAG_BITMASK_READ_ONLY. Its manager_ctx is unused: the
tensor it describes, and the structs, are kept in _LIVE under the struct's
address until the deleter runs, which the consumer calls once it has done
with the memory, or the capsule's destructor calls if no consumer took it.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

DLPACK_VERSION = (1, 0)
"""The DLPack ABI version of the capsules made here."""

DLPACK_FLAG_BITMASK_READ_ONLY = 1 << 0
KDL_CUDA = 2

_NAME = b"dltensor_versioned"

# safetensors dtype -> DLDataType (code, bits): kDLInt 0, kDLUInt 1,
# kDLFloat 2, kDLBfloat 4, kDLBool 6.
_DTYPES = {
    "F64": (2, 64), "F32": (2, 32), "F16": (2, 16), "BF16": (4, 16),
    "I64": (0, 64), "I32": (0, 32), "I16": (0, 16), "I8": (0, 8),
    "U64": (1, 64), "U32": (1, 32), "U16": (1, 16), "U8": (1, 8),
    "BOOL": (6, 8),
}


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    pass


DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensorVersioned))
DLManagedTensorVersioned._fields_ = [
    ("version", DLPackVersion),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", DELETER),
    ("flags", ctypes.c_uint64),
    ("dl_tensor", DLTensor),
]

_LIVE: dict[int, tuple[Any, ...]] = {}  # struct address -> what it needs alive
_LIVE_LOCK = threading.Lock()

# Private prototypes: setting argtypes on ctypes.pythonapi's own attributes
# would change them for every user of the process.
_DESTRUCTOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_capsule_new = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, _DESTRUCTOR)(
    ("PyCapsule_New", ctypes.pythonapi))
_capsule_is_valid = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)(
    ("PyCapsule_IsValid", ctypes.pythonapi))
_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi))

def _delete(managed: Any) -> None:
    with _LIVE_LOCK:
        _LIVE.pop(ctypes.addressof(managed.contents), None)


def _destroy(capsule: int) -> None:
    # Called as the capsule dies: a consumer renames what it took
    # ("used_dltensor_versioned") and calls the deleter itself.
    if _capsule_is_valid(capsule, _NAME):
        address = _capsule_pointer(capsule, _NAME)
        with _LIVE_LOCK:
            _LIVE.pop(address, None)


_DELETER = DELETER(_delete)
_DESTROY = _DESTRUCTOR(_destroy)


def capsule(owner: Any, ptr: int, device: int, dtype: str, shape: tuple[int, ...]) -> Any:
    """A read-only DLPack 1.0 capsule over ptr, keeping owner alive until it
    is deleted. dtype is safetensors'."""
    code_bits = _DTYPES.get(dtype)
    if code_bits is None:
        raise BufferError(f"dtype {dtype!r} has no DLPack type here")
    dims = (ctypes.c_int64 * max(len(shape), 1))(*shape)
    managed = DLManagedTensorVersioned()
    managed.version = DLPackVersion(*DLPACK_VERSION)
    managed.deleter = _DELETER
    managed.flags = DLPACK_FLAG_BITMASK_READ_ONLY
    managed.dl_tensor = DLTensor(
        data=ptr, device=DLDevice(KDL_CUDA, device), ndim=len(shape),
        dtype=DLDataType(code_bits[0], code_bits[1], 1), shape=dims, strides=None, byte_offset=0)
    address = ctypes.addressof(managed)
    with _LIVE_LOCK:
        _LIVE[address] = (managed, dims, owner)
    try:
        return _capsule_new(address, _NAME, _DESTROY)
    except BaseException:
        with _LIVE_LOCK:
            _LIVE.pop(address, None)
        raise
