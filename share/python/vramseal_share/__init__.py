"""Python client for vramseal's lease server, protocol v1.

See client.py for the protocol and README.md beside this package for an
example. cuda.py maps cuda-vmm-fd grants (CudaError is its failure) and
device_tensor.py is the tensor they give.
"""

from .client import (
    PROTOCOL_VERSION,
    Client,
    ConnectionClosed,
    Lease,
    ProtocolError,
    Revoked,
    ServerError,
    Shard,
    ShareError,
    Tensor,
    connect,
)
from .cuda import CudaError
from .device_tensor import DeviceTensor

__all__ = [
    "PROTOCOL_VERSION",
    "Client",
    "ConnectionClosed",
    "CudaError",
    "DeviceTensor",
    "Lease",
    "ProtocolError",
    "Revoked",
    "ServerError",
    "Shard",
    "ShareError",
    "Tensor",
    "connect",
]
