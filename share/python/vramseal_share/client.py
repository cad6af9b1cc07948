"""A client for vramseal's lease server, protocol v1.

The server listens on a Unix stream socket. Every message is a frame: a
4-byte big-endian length N (1 <= N <= 16 MiB), then N bytes of one UTF-8
JSON object with a string field "op". A frame that carries a file
descriptor has it as SCM_RIGHTS ancillary data on the frame's first byte.
A request may carry an integer "req", and the reply to it echoes it.

The client says {"op":"hello","version":1} first and gets a "welcome"; then
"list" gives "shards", "acquire" gives a "grant" with one fd (the shard's
memory), "release" gives "released". At any time the server may send an
unsolicited "revoke" for a lease, after which that lease is over.

One background thread per Client reads every frame: it hands replies to the
callers waiting on their "req" and applies revokes to their leases.

Only the standard library is needed, and numpy for a memfd Lease.tensor().
A cuda-vmm-fd grant is mapped through libcuda.so.1 (cuda.py), loaded on the
first such grant only.
"""

from __future__ import annotations

import array
import json
import mmap
import os
import queue
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Any, Optional

PROTOCOL_VERSION = 1
"""The protocol version this client speaks."""

MAX_FRAME = 16 << 20
"""The largest frame body either side may send, in bytes."""

_HEADER = struct.Struct(">I")
_MAX_FDS = 8  # room for fds per recvmsg; any beyond a grant's one are closed

HANDLE_MEMFD = "memfd"
HANDLE_CUDA_VMM_FD = "cuda-vmm-fd"

# safetensors dtype names -> numpy dtype strings (little-endian, as
# safetensors stores them). BF16 has no numpy dtype: it comes as uint16.
_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}


class ShareError(Exception):
    """Base of every error this package raises."""


class ServerError(ShareError):
    """The server answered with {"op":"error"}.

    code is the server's error code ("bad_request", "unknown_shard",
    "not_allowed", "version", "busy", "stopped", ...), message its text.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ProtocolError(ShareError):
    """The server sent something protocol v1 does not allow."""


class ConnectionClosed(ShareError):
    """The connection is closed, by the client or by the server."""


class Revoked(ShareError):
    """The lease was revoked by the server, or released, and is not usable."""


@dataclass(frozen=True)
class Tensor:
    """One tensor of a shard: offset is relative to the shard's first byte."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    size: int


@dataclass(frozen=True)
class Shard:
    """One shard the server offers; digest is the sha256 (lowercase hex) of
    its bytes; device is as the server names it."""

    id: str
    device: Any
    size: int
    digest: str
    tensors: tuple[Tensor, ...]


def connect(path: str, timeout: Optional[float] = 10.0) -> "Client":
    """Connect to the lease server at the Unix socket path and say hello.

    timeout bounds the connect and each wait for a reply (None: no bound).
    Raises ServerError if the server refuses (e.g. code "version").
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return Client(sock, timeout=timeout)


class Client:
    """A connection to the lease server. Use connect() to make one.

    Client(sock) takes a connected socket, starts the reader thread and does
    the hello/welcome handshake; worker is the server's worker id.
    """

    def __init__(self, sock: socket.socket, timeout: Optional[float] = 10.0) -> None:
        self._sock = sock
        self._timeout = timeout
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()  # guards everything below
        self._next_req = 1
        self._pending: dict[int, queue.Queue] = {}
        self._leases: dict[int, Lease] = {}
        # leases granted whose acquire() has not registered them yet, with a
        # revoke (reason, message) that arrived meanwhile, if any
        self._granting: dict[int, Optional[tuple[str, str]]] = {}
        self._closing = False
        self._dead: Optional[ShareError] = None  # why no more replies come
        self.worker: str = ""
        self._reader = threading.Thread(
            target=self._read_loop, name="vramseal-share-reader", daemon=True
        )
        self._reader.start()
        try:
            self._hello()
        except BaseException:
            self.close()
            raise

    # -- public API --------------------------------------------------------

    def shards(self) -> list[Shard]:
        """Ask the server which shards it offers."""
        reply = self._call({"op": "list"}, "shards")
        raw = reply.get("shards")
        if not isinstance(raw, list):
            raise ProtocolError("shards reply without a shards list")
        return [_parse_shard(s) for s in raw]

    def acquire(self, id: str, verified: bool = True) -> "Lease":
        """Lease shard id and map its memory read-only.

        verified asks the server to check the shard's digest before granting.
        """
        reply, fds = self._request({"op": "acquire", "id": id, "verified": bool(verified)})
        lease_id = reply.get("lease")
        try:
            _raise_error(reply)
            if reply.get("op") != "grant":
                raise ProtocolError(f"acquire answered with {reply.get('op')!r}")
            if len(fds) != 1:
                raise ProtocolError(f"grant carried {len(fds)} file descriptors, want 1")
            lease = Lease(self, reply, fds[0])
        except BaseException:
            if _is_int(lease_id):
                self._forget_grant(lease_id, release=True)
            raise
        finally:
            _close_fds(fds)
        with self._lock:
            early = self._granting.pop(lease.id, None)
            closing = self._closing
            if not closing:
                self._leases[lease.id] = lease
            dead = self._dead is not None
        if closing:  # close() ran meanwhile and did not see this lease
            lease._end()
            raise ConnectionClosed("the client is closed")
        if early is not None:
            lease._revoke(*early)
        elif dead:
            lease._revoke("closed", "the connection to the server was lost")
        return lease

    def close(self) -> None:
        """Close the connection: stop the reader thread, close the socket and
        unmap every lease (the server ends a connection's leases with it).
        Idempotent."""
        with self._lock:
            already = self._closing
            self._closing = True
            if self._dead is None:
                self._dead = ConnectionClosed("the client is closed")
        if not already:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._reader is not threading.current_thread():
            self._reader.join()
        if already:
            return
        self._sock.close()
        with self._lock:
            leases = list(self._leases.values())
            self._leases.clear()
        for lease in leases:
            lease._end()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ----------------------------------------------------------

    def _hello(self) -> None:
        reply = self._call({"op": "hello", "version": PROTOCOL_VERSION}, "welcome")
        if reply.get("version") != PROTOCOL_VERSION:
            raise ProtocolError(f"welcome for version {reply.get('version')!r}")
        worker = reply.get("worker")
        if not isinstance(worker, str):
            raise ProtocolError("welcome without a worker id")
        self.worker = worker

    def _call(self, msg: dict[str, Any], want: str) -> dict[str, Any]:
        """Send a request that carries no fd back; return its reply of op want."""
        reply, fds = self._request(msg)
        _close_fds(fds)
        _raise_error(reply)
        if reply.get("op") != want:
            raise ProtocolError(f"{msg['op']} answered with {reply.get('op')!r}, want {want!r}")
        return reply

    def _request(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        """Send msg with a fresh "req" and wait for the frame that echoes it."""
        box: queue.Queue = queue.Queue(maxsize=1)
        with self._lock:
            if self._dead is not None:
                raise _copy_error(self._dead)
            req = self._next_req
            self._next_req += 1
            self._pending[req] = box
        try:
            try:
                self._send(dict(msg, req=req))
                send_error: Optional[ShareError] = None
            except ConnectionClosed as e:
                # The server may have said why before closing (a refusal):
                # the reader hands that, or the close, to this box.
                send_error = e
            try:
                item = box.get(timeout=self._timeout)
            except queue.Empty:
                if send_error is not None:
                    raise send_error from None
                raise ShareError(f"no reply to {msg['op']} within {self._timeout}s") from None
        finally:
            with self._lock:
                self._pending.pop(req, None)
            try:  # a reply that came as we gave up
                late = box.get_nowait()
            except queue.Empty:
                pass
            else:
                if isinstance(late, tuple):
                    self._orphan(*late)
        if isinstance(item, ShareError):
            raise item
        return item

    def _send(self, msg: dict[str, Any]) -> None:
        body = json.dumps(msg, separators=(",", ":")).encode("utf-8")
        with self._send_lock:
            try:
                self._sock.sendall(_HEADER.pack(len(body)) + body)
            except OSError as e:
                raise ConnectionClosed(f"send {msg.get('op')}: {e}") from e

    def _release(self, lease_id: int) -> None:
        """Send release for lease_id and check the answer (called by Lease)."""
        self._call({"op": "release", "lease": lease_id}, "released")

    def _forget(self, lease_id: int) -> None:
        with self._lock:
            self._leases.pop(lease_id, None)

    def _forget_grant(self, lease_id: int, release: bool) -> None:
        """Drop a grant nobody will use, releasing it if the server thinks it lives."""
        with self._lock:
            self._granting.pop(lease_id, None)
            dead = self._dead is not None
            req = self._next_req  # a req nobody waits on: its reply is dropped
            self._next_req += 1
        if release and not dead:
            try:
                self._send({"op": "release", "lease": lease_id, "req": req})
            except ShareError:
                pass

    # -- the reader thread -------------------------------------------------

    def _read_loop(self) -> None:
        try:
            while True:
                frame = self._read_frame()
                if frame is None:
                    err: ShareError = ConnectionClosed("the server closed the connection")
                    break
                self._dispatch(*frame)
        except ShareError as e:
            err = e
        except OSError as e:
            err = ConnectionClosed(f"connection lost: {e}")
        self._die(err)

    def _read_frame(self) -> Optional[tuple[dict[str, Any], list[int]]]:
        """Read one frame and every fd that came with it; None on a clean EOF."""
        fds: list[int] = []
        try:
            header = self._recv_exact(_HEADER.size, fds, eof_ok=True)
            if header is None:
                return None
            (n,) = _HEADER.unpack(header)
            if not 1 <= n <= MAX_FRAME:
                raise ProtocolError(f"frame length {n} out of range")
            body = self._recv_exact(n, fds, eof_ok=False)
            try:
                msg = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ProtocolError(f"frame is not UTF-8 JSON: {e}") from None
            if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
                raise ProtocolError("frame is not a JSON object with a string op")
        except BaseException:
            _close_fds(fds)
            raise
        return msg, fds

    def _recv_exact(self, n: int, fds: list[int], eof_ok: bool) -> Optional[bytes]:
        buf = bytearray()
        while len(buf) < n:
            data, anc, flags, _ = self._sock.recvmsg(
                n - len(buf), socket.CMSG_SPACE(_MAX_FDS * 4), socket.MSG_CMSG_CLOEXEC
            )
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    got = array.array("i")
                    got.frombytes(payload[: len(payload) - len(payload) % got.itemsize])
                    fds.extend(got)
            if flags & socket.MSG_CTRUNC:
                raise ProtocolError("too many file descriptors on one frame")
            if not data:
                if eof_ok and not buf:
                    return None
                raise ConnectionClosed("the server closed the connection mid-frame")
            buf += data
        return bytes(buf)

    def _dispatch(self, msg: dict[str, Any], fds: list[int]) -> None:
        op = msg["op"]
        req = msg.get("req")
        if op == "revoke":
            _close_fds(fds)
            self._on_revoke(msg)
            return
        with self._lock:
            box = self._pending.get(req) if _is_int(req) else None
            if box is not None:
                if op == "grant" and _is_int(msg.get("lease")):
                    self._granting[msg["lease"]] = None
                box.put((msg, fds))
                return
            unsolicited_error = op == "error" and "req" not in msg
            waiting = list(self._pending.values()) if unsolicited_error else []
        if unsolicited_error:
            # An error about the connection itself (a framing error, or a
            # refusal before hello): every waiting caller gets it.
            _close_fds(fds)
            err = ServerError(str(msg.get("code", "")), str(msg.get("message", "")))
            with self._lock:
                if self._dead is None:
                    self._dead = err
            for box in waiting:
                box.put(_copy_error(err))
            return
        self._orphan(msg, fds)

    def _orphan(self, msg: dict[str, Any], fds: list[int]) -> None:
        """A frame no caller waits for (a late reply, or an op we don't know)."""
        _close_fds(fds)
        if msg.get("op") == "grant" and _is_int(msg.get("lease")):
            self._forget_grant(msg["lease"], release=True)

    def _on_revoke(self, msg: dict[str, Any]) -> None:
        lease_id = msg.get("lease")
        if not _is_int(lease_id):
            raise ProtocolError("revoke without an integer lease")
        reason = str(msg.get("reason", ""))
        message = str(msg.get("message", ""))
        with self._lock:
            lease = self._leases.pop(lease_id, None)
            if lease is None and lease_id in self._granting:
                self._granting[lease_id] = (reason, message)
        if lease is not None:
            lease._revoke(reason, message)

    def _die(self, err: ShareError) -> None:
        """The reader is done: fail every waiting caller; if the server went
        away (not close()), revoke every lease, for the server ended them."""
        with self._lock:
            if self._dead is None:
                self._dead = err
            err = self._dead
            waiting = list(self._pending.values())
            closing = self._closing
            leases = [] if closing else list(self._leases.values())
            if not closing:
                self._leases.clear()
        for box in waiting:
            box.put(_copy_error(err))
        for lease in leases:
            lease._revoke("closed", f"the connection to the server was lost: {err}")


class Lease:
    """A granted shard, mapped read-only into this process.

    id is the lease number, shard_id the shard's id. revoked is a
    threading.Event the client sets when the server revokes the lease (or the
    connection is lost, reason "closed"); revoke_reason and revoke_message
    say why. Once revoked or released, memoryview(), read() and tensor()
    raise Revoked, and so does a DeviceTensor's every use. Views, arrays and
    DeviceTensors taken before (and the torch or cupy tensors made from
    them, which hold them) keep the mapping alive until they are dropped,
    but must not be used any more: drop them on a revoke, so the device's
    memory can be freed.
    """

    def __init__(self, client: Client, grant: dict[str, Any], fd: int) -> None:
        try:
            self.id: int = _int(grant, "lease")
            self.shard_id: str = _str(grant, "id")
            self.size: int = _int(grant, "size")
            self.digest: str = _str(grant, "digest")
            self.chunk_size: int = _int(grant, "chunk_size")
            self.handle: str = _str(grant, "handle")
            self.offset: int = _int(grant, "offset")
            self.map_size: int = _int(grant, "map_size")
            self.device_uuid: str = str(grant.get("device_uuid", ""))
            self.tensors: tuple[Tensor, ...] = _parse_tensors(grant.get("tensors"), self.size)
        except (KeyError, TypeError, ValueError) as e:
            raise ProtocolError(f"bad grant: {e}") from None
        if self.offset < 0 or self.size < 0 or self.offset + self.size > self.map_size:
            raise ProtocolError(
                f"grant's bytes [{self.offset}, {self.offset + self.size}) "
                f"outside its map_size {self.map_size}"
            )
        self.revoked = threading.Event()
        self.revoke_reason: Optional[str] = None
        self.revoke_message: Optional[str] = None
        self._client = client
        self._lock = threading.Lock()
        self._released = False
        self._mm: Optional[mmap.mmap] = None
        self._device: Optional[Any] = None  # a cuda.DeviceMapping
        if self.handle == HANDLE_MEMFD:
            # ACCESS_READ is MAP_SHARED + PROT_READ, and its buffer is read-only
            # to Python too. mmap keeps a dup of fd; the caller closes fd.
            try:
                self._mm = mmap.mmap(fd, self.map_size, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as e:
                raise ShareError(f"map lease {self.id}'s {self.map_size} bytes: {e}") from e
        elif self.handle == HANDLE_CUDA_VMM_FD:
            from . import cuda  # loads libcuda.so.1 on the first CUDA grant

            self._device = cuda.DeviceMapping(fd, self.map_size, self.device_uuid)
        else:
            raise ProtocolError(f"unknown handle kind {self.handle!r}")

    def memoryview(self) -> memoryview:
        """A read-only memoryview of the shard's bytes (memfd handles only:
        device memory has no host view; read() copies it)."""
        with self._lock:  # so a revoke's unmap cannot slip in between
            mm = self._host_mapping()
            return memoryview(mm)[self.offset : self.offset + self.size].toreadonly()

    def read(self, start: int = 0, n: Optional[int] = None) -> bytes:
        """A copy of the shard's bytes [start, start+n) (n None: to the end),
        for either handle; from device memory with cuMemcpyDtoH."""
        if n is None:
            n = self.size - start
        if start < 0 or n < 0 or start + n > self.size:
            raise ValueError(f"[{start}, {start + n}) is outside the shard's {self.size} bytes")
        with self._lock:
            self._check_live()
            device = self._device
            if device is None:
                assert self._mm is not None
                return self._mm[self.offset + start : self.offset + start + n]
            device.hold()  # a revoke meanwhile unmaps after the copy
        try:
            return device.copy_to_host(self.offset + start, n)
        finally:
            device.drop()

    def tensor(self, name: str) -> Any:
        """The named tensor, over the mapping (no copy), read-only.

        memfd: a numpy array. cuda-vmm-fd: a DeviceTensor, which torch and
        cupy take through __cuda_array_interface__ (or DLPack), and which
        copies to the host with to_bytes() or numpy().

        dtypes are safetensors' (F64 F32 F16 I64 I32 I16 I8 U8 BOOL, ...).
        BF16 has no numpy dtype and comes as uint16 holding the raw bfloat16
        bits (shift left by 16 and view as float32 to widen it); so it is
        '<u2' in __cuda_array_interface__ too, but bfloat16 in DLPack.
        """
        t = self._tensor_info(name)
        spec = _DTYPES.get(t.dtype)
        if spec is None:
            raise ShareError(f"tensor {name!r}: dtype {t.dtype!r} is not supported")
        count = 1
        for d in t.shape:
            count *= d
        if count * _itemsize(spec) != t.size:
            raise ProtocolError(
                f"tensor {name!r}: shape {list(t.shape)} of {t.dtype} is not {t.size} bytes"
            )
        with self._lock:
            self._check_live()  # Revoked before numpy is needed
            device = self._device
            if device is not None:
                from .device_tensor import DeviceTensor

                return DeviceTensor(self, t, spec, device)
        import numpy as np

        with self._lock:  # so a revoke's unmap cannot slip in between
            mm = self._host_mapping()
            arr = np.frombuffer(mm, dtype=np.dtype(spec), count=count, offset=self.offset + t.offset)
        arr = arr.reshape(t.shape)
        arr.flags.writeable = False
        return arr

    def release(self) -> None:
        """End the lease: unmap it and tell the server. Idempotent; a no-op
        on the server side for a revoked lease or a closed connection."""
        with self._lock:
            if self._released:
                return
            self._released = True
        unmap_error = self._unmap()
        self._client._forget(self.id)
        if not self.revoked.is_set():
            try:
                self._client._release(self.id)
            except ConnectionClosed:
                pass  # the connection's end ended the lease
            except ServerError:
                if not self.revoked.is_set():  # a revoke that crossed our release is fine
                    raise
        if unmap_error is not None:
            raise unmap_error

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "revoked" if self.revoked.is_set() else "released" if self._released else "live"
        return f"<Lease {self.id} shard={self.shard_id!r} {self.handle} {state}>"

    # -- internals ---------------------------------------------------------

    def _tensor_info(self, name: str) -> Tensor:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(f"shard {self.shard_id!r} has no tensor {name!r}")

    def _check_live(self) -> None:
        """Raise Revoked unless the lease is live; the caller holds _lock."""
        if self.revoked.is_set():
            raise Revoked(
                f"lease {self.id} was revoked ({self.revoke_reason}): {self.revoke_message}"
            )
        if self._released:
            raise Revoked(f"lease {self.id} was released")

    def _host_mapping(self) -> mmap.mmap:
        """The live memfd mapping, or why there is none; the caller holds _lock."""
        self._check_live()
        if self._mm is None:
            raise ShareError(
                f"lease {self.id}'s {self.handle!r} memory is on the device, not in this "
                "process's memory: use tensor() or read()"
            )
        return self._mm

    def _revoke(self, reason: str, message: str) -> None:
        with self._lock:
            if self.revoked.is_set():
                return
            self.revoke_reason = reason
            self.revoke_message = message
            self.revoked.set()
        self._unmap()

    def _end(self) -> None:
        """The client closed: the lease is over without a word to the server."""
        with self._lock:
            self._released = True
        self._unmap()

    def _unmap(self) -> Optional[ShareError]:
        """Unmap, or leave it to the last view, array or DeviceTensor that
        still uses the mapping; return a failure to unmap device memory."""
        with self._lock:
            mm, self._mm = self._mm, None
            device, self._device = self._device, None
        if mm is not None:
            try:
                mm.close()
            except BufferError:
                pass  # views or arrays still use it: it unmaps when they go
        if device is not None:
            try:
                device.retire()
            except ShareError as e:
                return e
        return None


def _itemsize(spec: str) -> int:
    """The size in bytes of one element of a numpy dtype string of _DTYPES."""
    return 1 if spec == "?" else int(spec.lstrip("<|")[1:])


def _raise_error(reply: dict[str, Any]) -> None:
    if reply.get("op") == "error":
        raise ServerError(str(reply.get("code", "")), str(reply.get("message", "")))


def _copy_error(err: ShareError) -> ShareError:
    """A fresh exception like err, so each waiting thread raises its own."""
    if isinstance(err, ServerError):
        return ServerError(err.code, err.message)
    return type(err)(*err.args)


def _close_fds(fds: list[int]) -> None:
    while fds:
        try:
            os.close(fds.pop())
        except OSError:
            pass


def _is_int(v: object) -> bool:
    return type(v) is int


def _int(d: dict[str, Any], key: str) -> int:
    v = d[key]
    if not _is_int(v):
        raise TypeError(f"{key} is not an integer")
    return v


def _str(d: dict[str, Any], key: str) -> str:
    v = d[key]
    if not isinstance(v, str):
        raise TypeError(f"{key} is not a string")
    return v


def _parse_tensors(raw: Any, shard_size: int) -> tuple[Tensor, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise TypeError("tensors is not a list")
    out = []
    for t in raw:
        if not isinstance(t, dict):
            raise TypeError("a tensor is not an object")
        shape = t["shape"]
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise TypeError("shape is not a list of non-negative integers")
        tensor = Tensor(
            name=_str(t, "name"),
            dtype=_str(t, "dtype"),
            shape=tuple(shape),
            offset=_int(t, "offset"),
            size=_int(t, "size"),
        )
        if tensor.offset < 0 or tensor.size < 0 or tensor.offset + tensor.size > shard_size:
            raise ValueError(f"tensor {tensor.name!r} lies outside the shard's {shard_size} bytes")
        out.append(tensor)
    return tuple(out)


def _parse_shard(raw: Any) -> Shard:
    try:
        if not isinstance(raw, dict):
            raise TypeError("a shard is not an object")
        size = _int(raw, "size")
        return Shard(
            id=_str(raw, "id"),
            device=raw.get("device"),
            size=size,
            digest=_str(raw, "digest"),
            tensors=_parse_tensors(raw.get("tensors"), size),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ProtocolError(f"bad shard: {e}") from None
