"""The HTTP/1.1 transport under the Triton handle: one connection pool per endpoint, shared by every role
on it and by every thread, with a connect timeout, a network timeout and no retries.

Why not tritonclient's own transport: geventhttpclient silently resends a GET whose connection
closed before the answer (DECISIONS 9.2 forbids retries), and a tritonclient ``InferenceServerClient``
must not be used from several threads. tritonclient still builds every request body and parses
every answer (``generate_request_body``, ``InferResult.from_response_body``): the wire format is
exactly its own. Standard library only.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass

#: the most idle connections a pool keeps open (more are opened under load, and closed after use)
MAX_IDLE = 32
_MAX_HEAD = 64 * 1024
_CHUNK = 256 * 1024


class Unreachable(Exception):
    """No answer could start: refused, unresolvable, unroutable, connect timeout, or reset/closed before
    the first byte of the answer."""


class NoAnswer(Exception):
    """Connected and sent, but the answer did not arrive within the network timeout."""


class BadResponse(Exception):
    """The bytes that came back are not a whole HTTP response (malformed, or cut short)."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


def split_url(url: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` (the mapping's ``http_url``) -> (host, port)."""
    host, _, port = url.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


class Pool:
    """Idle keep-alive connections to one endpoint; a request takes one (or opens one) and gives it back."""

    def __init__(self, url: str, connect_timeout: float, network_timeout: float) -> None:
        self.url = url
        self.host, self.port = split_url(url)
        self.connect_timeout, self.network_timeout = connect_timeout, network_timeout
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()
        self._host_header = f"Host: {url}\r\n"
        _POOLS.add(self)

    def request(self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Response:
        """Send once and read the whole answer; raises Unreachable, NoAnswer or BadResponse. Never resends."""
        sock = self._take() or self._connect()
        keep = False
        try:
            deadline = time.monotonic() + self.network_timeout
            _limit(sock, self.network_timeout)
            extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items()) if headers else ""
            head = f"{method} {path} HTTP/1.1\r\n{self._host_header}Content-Length: {len(body)}\r\n{extra}\r\n"
            _send(sock, head.encode("latin-1"), body, deadline)
            response, keep = _read_response(sock, deadline)
            return response
        finally:
            if keep:
                self._give(sock)
            else:
                sock.close()

    def _connect(self) -> socket.socket:
        # One attempt per resolved address (as a browser does), each bounded by the connect timeout.
        try:
            infos = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise Unreachable(f"cannot resolve {self.host!r}: {exc.strerror}") from exc
        errors = []
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self.connect_timeout)
                sock.connect(address)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # Blocking mode with kernel timeouts (SO_RCVTIMEO/SO_SNDTIMEO): a read or a write is one
                # system call, with no poll() before it, and releases the GIL once (8 threads, one pool).
                sock.settimeout(None)
                return sock
            except TimeoutError:
                sock.close()
                errors.append(f"no connection within the connect timeout ({self.connect_timeout:g} s)")
            except OSError as exc:
                sock.close()
                errors.append(_describe(exc))
            except BaseException:  # the network guard's refusal, KeyboardInterrupt: nothing to keep
                sock.close()
                raise
        raise Unreachable("; ".join(dict.fromkeys(errors)) or f"{self.host!r} resolves to no address")

    def _take(self) -> socket.socket | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                sock = self._idle.pop()
            if _idle_and_open(sock):
                return sock
            sock.close()  # the server closed it while it was idle: not a retry, nothing was sent on it

    def _give(self, sock: socket.socket) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(sock)
                return
        sock.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()


_POOLS: weakref.WeakSet[Pool] = weakref.WeakSet()
_REGISTRY: dict[tuple[str, float, float], Pool] = {}
_REGISTRY_LOCK = threading.Lock()


def pool_for(url: str, connect_timeout: float, network_timeout: float) -> Pool:
    """The one pool of this endpoint (and timeouts): every handle on it shares its connections."""
    key = (url, connect_timeout, network_timeout)
    with _REGISTRY_LOCK:
        pool = _REGISTRY.get(key)
        if pool is None:
            pool = _REGISTRY[key] = Pool(url, connect_timeout, network_timeout)
        return pool


def _forget_after_fork() -> None:
    # A child must not share its parent's connections: it closes its copies (the parent's stay open).
    for pool in list(_POOLS):
        pool._lock = threading.Lock()
        pool.close()


os.register_at_fork(after_in_child=_forget_after_fork)


def _limit(sock: socket.socket, seconds: float) -> None:
    """The longest the next read or write may block (kernel timeouts: no extra system call per read)."""
    whole = int(seconds)
    value = struct.pack("ll", whole, max(int((seconds - whole) * 1e6), 1 if whole == 0 else 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def _idle_and_open(sock: socket.socket) -> bool:
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True  # nothing to read: still open and idle
    except OSError:
        return False
    return False  # end of file, or stray bytes: not a clean idle connection


def _describe(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is Triton running on this port?)"
    return exc.strerror or str(exc) or type(exc).__name__


def _send(sock: socket.socket, head: bytes, body: bytes, deadline: float) -> None:
    try:
        if len(body) <= 64 * 1024:
            sock.sendall(head + body)  # one segment: no Nagle/delayed-ACK stall
        else:
            sock.sendall(head)
            _limit(sock, max(deadline - time.monotonic(), 0.001))
            sock.sendall(body)
    except (TimeoutError, BlockingIOError) as exc:  # SO_SNDTIMEO ran out: EAGAIN
        raise NoAnswer("the request could not be sent within the network timeout") from exc
    except OSError as exc:
        raise Unreachable(f"the connection failed while sending: {_describe(exc)}") from exc


def _recv(sock: socket.socket, deadline: float, started: bool) -> bytes:
    if started:  # the first read waits the whole network timeout (set by request); later ones what is left
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NoAnswer("no complete answer within the network timeout")
        _limit(sock, remaining)
    try:
        data = sock.recv(_CHUNK)
    except (TimeoutError, BlockingIOError) as exc:  # SO_RCVTIMEO ran out: EAGAIN
        raise NoAnswer("no complete answer within the network timeout" if started
                       else "no answer within the network timeout") from exc
    except OSError as exc:
        if started:
            raise BadResponse(f"the answer was cut short: {_describe(exc)}") from exc
        raise Unreachable(f"the connection failed before the answer: {_describe(exc)}") from exc
    if not data:
        if started:
            raise BadResponse("the answer was cut short: the server closed the connection")
        raise Unreachable("the server closed the connection without answering")
    return data


def _read_response(sock: socket.socket, deadline: float) -> tuple[Response, bool]:
    buf = b""
    while True:  # skip interim (1xx) answers
        while (end := buf.find(b"\r\n\r\n")) < 0:
            if len(buf) > _MAX_HEAD:
                raise BadResponse("the answer's header is over 64 KiB")
            buf += _recv(sock, deadline, started=bool(buf))
        lines = buf[:end].decode("latin-1").split("\r\n")
        buf = buf[end + 4:]
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise BadResponse(f"not an HTTP answer: {lines[0][:80]!r}")
        if not 100 <= int(code) < 200:
            break
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise BadResponse(f"malformed header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _read_chunked(sock, buf, deadline)
    elif "content-length" in headers:
        size = headers["content-length"]
        if not size.isdigit():
            raise BadResponse(f"bad Content-Length {size[:40]!r}")
        body = _read_exactly(sock, buf, int(size), deadline)
    else:  # the body runs to the end of the connection
        parts = [buf]
        while chunk := _recv_or_eof(sock, deadline):
            parts.append(chunk)
        body, keep = b"".join(parts), False
    return Response(int(code), headers, body), keep


def _read_exactly(sock: socket.socket, buf: bytes, size: int, deadline: float) -> bytes:
    if len(buf) >= size:
        if len(buf) > size:
            raise BadResponse(f"{len(buf) - size} bytes beyond the announced Content-Length")
        return buf
    body = bytearray(size)
    body[: len(buf)] = buf
    view, got = memoryview(body), len(buf)
    while got < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NoAnswer("no complete answer within the network timeout")
        _limit(sock, remaining)
        try:
            n = sock.recv_into(view[got:], min(size - got, _CHUNK))
        except (TimeoutError, BlockingIOError) as exc:
            raise NoAnswer("no complete answer within the network timeout") from exc
        except OSError as exc:
            raise BadResponse(f"the answer was cut short: {_describe(exc)}") from exc
        if n == 0:
            raise BadResponse(f"the answer was cut short: {got} of {size} body bytes came")
        got += n
    return bytes(body)


def _recv_or_eof(sock: socket.socket, deadline: float) -> bytes:
    try:
        return _recv(sock, deadline, started=True)
    except BadResponse:
        return b""  # the end of a body without a length


def _read_chunked(sock: socket.socket, buf: bytes, deadline: float) -> bytes:
    parts: list[bytes] = []
    while True:
        while (end := buf.find(b"\r\n")) < 0:
            buf += _recv(sock, deadline, started=True)
        size_text = buf[:end].split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadResponse(f"bad chunk size {size_text[:20]!r}") from None
        buf = buf[end + 2:]
        while len(buf) < size + 2:
            buf += _recv(sock, deadline, started=True)
        if size == 0:  # trailers are not used by Triton: the final CRLF ends the body
            return b"".join(parts)
        parts.append(buf[:size])
        buf = buf[size + 2:]
