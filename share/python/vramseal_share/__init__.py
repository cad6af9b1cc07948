"""Python client for vramseal's lease server, protocol v1.

See client.py for the protocol and README.md beside this package for an
example.
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

__all__ = [
    "PROTOCOL_VERSION",
    "Client",
    "ConnectionClosed",
    "Lease",
    "ProtocolError",
    "Revoked",
    "ServerError",
    "Shard",
    "ShareError",
    "Tensor",
    "connect",
]
