"""The runtime network guard: nothing leaves this machine but traffic to the mapped Triton endpoints.

``activate(allow=...)`` is process-wide and idempotent (allow-lists add up). Layers:
offline switches (``guard_support``), a Python-level check on socket connect,
``connect_ex``, ``sendto``/``sendmsg`` and name resolution, a permanent audit hook
that backs them up (gevent sockets, saved references, a reloaded ``socket``,
child-process download tools) and a check of gRPC targets. Standard library only;
see docs/network-guard.md.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn

from model_manager.errors import NetworkAccessForbidden
from model_manager.guard import audit as _audit
from model_manager.guard import support as _support
from model_manager.guard.support import BlockedAttempt, find_refusal, parse_allow
from model_manager.guard.support import ip_or_none as _ip
from model_manager.guard.support import is_loopback as _is_loopback
from model_manager.guard.support import port_or_none as _port
from model_manager.guard.support import text as _text

__all__ = ["BlockedAttempt", "activate", "activate_from_env", "allowed", "allowing", "blocked_attempts",
           "check_endpoint", "check_grpc_target", "check_resolve", "clear_blocked_attempts", "find_refusal",
           "deactivate", "integrity_problems", "is_active", "parse_allow", "refusal_count", "set_context",
           "suspended"]

ENV_SWITCH = "MM_NETWORK_GUARD"          # "1": a spawned child with the startup hook activates
ENV_ALLOW = "MM_NETWORK_GUARD_ALLOW"     # comma-separated host:port list for that child


_LOOPBACK_FAST = frozenset({"127.0.0.1", "::1", "localhost"})
# A loopback DNS stub (systemd-resolved on 127.0.0.53) forwards queries off the host.
_DNS_PORTS = frozenset({53, 853, 5353})

_lock = threading.RLock()
_tls = threading.local()
_on = False                      # the audit hook's switch; read on every audited event
_hook_installed = False
_allow_entries: dict[tuple[str, int], str] = {}      # (host, port) -> entry as given
_allowed_names: set[tuple[str, int | None]] = set()         # hostnames: resolve once, that pair only
_allowed_addrs: set[tuple[str, int | None]] = set()         # IP literals and pinned resolutions
_resolved: dict[tuple[str, int], list[Any]] = {}     # (name, port) -> getaddrinfo result
_blocked: list[BlockedAttempt] = []
_refusals = 0                    # monotonic: clearing the record does not hide a refusal
_context: str | None = None
_saved: dict[tuple[Any, str], Any] = {}              # (owner, attr) -> original (None: absent)

_orig_getaddrinfo = socket.getaddrinfo


# ---------------------------------------------------------------- the checks
def check_endpoint(host: object, port: object, op: str = "connect", layer: str = "python") -> None:
    """Refuse (raise and record) unless host:port is loopback or an allowed pair."""
    name = _text(host)
    p = _port(port)
    if _is_loopback(name) or name.lower() == "localhost":
        if p not in _DNS_PORTS or (name, p) in _allowed_addrs:
            return
    elif (ip := _ip(name)) is not None:
        if (ip.compressed, p) in _allowed_addrs:
            return
    elif (name.lower().rstrip("."), p) in _allowed_names:
        return
    _refuse(op, name, p, layer)


def _check_address(address: object, op: str, layer: str) -> None:
    # Shape, not family: a str/bytes address is AF_UNIX, a tuple starting with an int is
    # netlink (kernel-local); anything else with a str first item is an inet-style address.
    if address.__class__ is tuple:
        host = address[0]
        if host in _LOOPBACK_FAST:
            if address[1] not in _DNS_PORTS:
                return
        elif host.__class__ is int:
            return
        check_endpoint(host, address[1] if len(address) > 1 else None, op, layer)


def check_resolve(host: object, port: object = None, op: str = "getaddrinfo",
                  layer: str = "python") -> None:
    """Name resolution: IP literals and localhost resolve locally; a name only if allowed."""
    if host is None or host in _LOOPBACK_FAST or host == "" or host == b"":
        return
    name = _text(host)
    if _ip(name) is not None or name.lower() == "localhost":
        return
    key = name.lower().rstrip(".")
    p = _port(port)
    if (key, p) in _allowed_names or (p is None and any(n == key for n, _ in _allowed_names)):
        return
    _refuse(op, name, p, layer)


def check_grpc_target(target: str) -> None:
    """gRPC connects from C: check the target string before a channel is made."""
    if not _on:
        return
    for host, port in _support.grpc_endpoints(target):
        check_endpoint(host, port, "grpc channel", "grpc")


def _refuse(op: str, host: str, port: int | None, layer: str) -> NoReturn:
    library, chain = _support.calling_library(sys._getframe(2))
    attempt = BlockedAttempt(op, host, port, library, chain, layer, _context, os.getpid(), time.time())
    global _refusals
    with _lock:
        _blocked.append(attempt)
        _refusals += 1
    where = f" to {host}:{port}" if port is not None else ("" if layer == "subprocess" else f" to {host}")
    test = f" in test {_context}" if _context else ""
    allowed = ", ".join(sorted(_allow_entries.values())) or "none"
    exc = NetworkAccessForbidden(
        f"{op}{where} refused{test}: called from {library} (stack: {chain}); "
        f"allowed: loopback, unix sockets, mapped Triton endpoints ({allowed})")
    exc.host, exc.port, exc.library = host, port, library  # type: ignore[attr-defined]
    raise exc


# ---------------------------------------------------------------- allowed names: resolve once
def _pinned(host: str, port: int) -> list[Any]:
    key = (host.lower().rstrip("."), port)
    with _lock:
        if key not in _resolved:
            _tls.resolving = True
            try:
                result = _orig_getaddrinfo(key[0], port, 0, socket.SOCK_STREAM)
            finally:
                _tls.resolving = False
            _resolved[key] = result
            _allowed_addrs.update((_ip(str(ai[4][0])).compressed, port) for ai in result)  # type: ignore[union-attr]
        return _resolved[key]


def _getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                 flags: int = 0) -> list[Any]:
    check_resolve(host, port, "getaddrinfo")
    p = _port(port)
    if isinstance(host, (str, bytes)) and p is not None and (_text(host).lower().rstrip("."), p) in _allowed_names:
        return [(f, socket.SocketKind(type) if type else t, proto or pr, c, a)
                for f, t, pr, c, a in _pinned(_text(host), p) if family in (0, f)]
    return _orig_getaddrinfo(host, port, family, type, proto, flags)


def _gethostbyname(hostname: Any) -> Any:
    check_resolve(hostname, None, "gethostbyname")
    return _next["gethostbyname"](_pinned_host(hostname))


def _gethostbyname_ex(hostname: Any) -> Any:
    check_resolve(hostname, None, "gethostbyname_ex")
    return _next["gethostbyname_ex"](_pinned_host(hostname))


def _pinned_host(hostname: Any) -> Any:
    key = _text(hostname).lower().rstrip(".")
    ports = sorted(p for n, p in _allowed_names if n == key and p is not None)
    return _pinned(key, ports[0])[0][4][0] if ports else hostname


def _gethostbyaddr(ip_address: Any) -> Any:
    if not _is_loopback(_text(ip_address)) and _text(ip_address) != "localhost":
        _refuse("gethostbyaddr (reverse DNS)", _text(ip_address), None, "python")
    return _next["gethostbyaddr"](ip_address)


def _getnameinfo(sockaddr: Any, flags: int) -> Any:
    if not flags & socket.NI_NUMERICHOST and not _is_loopback(_text(sockaddr[0])):
        _refuse("getnameinfo (reverse DNS)", _text(sockaddr[0]), _port(sockaddr[1]), "python")
    return _next["getnameinfo"](sockaddr, flags)


# ---------------------------------------------------------------- socket methods
# The next implementation down the chain (usually the C method): filled in by _apply_python_layer.
_next: dict[str, Any] = {}
_next_connect: Any = socket.socket.connect        # the hot two, as globals: one lookup cheaper
_next_connect_ex: Any = socket.socket.connect_ex


def _pin_address(sock: socket.socket, address: Any) -> Any:
    if address.__class__ is tuple and len(address) >= 2 and address[0] not in _LOOPBACK_FAST \
            and isinstance(address[0], str) and (address[0].lower().rstrip("."), address[1]) in _allowed_names:
        for family, _, _, _, sockaddr in _pinned(address[0], address[1]):
            if family == sock.family:
                return sockaddr
    return address


def _connect(self: socket.socket, address: Any) -> None:
    if address.__class__ is tuple and address[0] in _LOOPBACK_FAST and address[1] not in _DNS_PORTS:
        return _next_connect(self, address)  # fast path: loopback
    _check_address(address, "connect", "python")
    return _next["connect"](self, _pin_address(self, address))


def _connect_ex(self: socket.socket, address: Any) -> int:
    if address.__class__ is tuple and address[0] in _LOOPBACK_FAST and address[1] not in _DNS_PORTS:
        return _next_connect_ex(self, address)  # fast path: loopback
    _check_address(address, "connect_ex", "python")
    return _next["connect_ex"](self, _pin_address(self, address))


def _sendto(self: socket.socket, data: Any, flags_or_address: Any, *address: Any) -> int:
    _check_address(address[0] if address else flags_or_address, "sendto", "python")
    return _next["sendto"](self, data, flags_or_address, *address)


def _sendmsg(self: socket.socket, buffers: Any, *rest: Any) -> int:
    if len(rest) >= 3 and rest[2] is not None:
        _check_address(rest[2], "sendmsg", "python")
    return _next["sendmsg"](self, buffers, *rest)


def _patches() -> list[tuple[Any, str, Any]]:
    cls = socket.socket
    return [
        (cls, "connect", _connect), (cls, "connect_ex", _connect_ex),
        (cls, "sendto", _sendto), (cls, "sendmsg", _sendmsg),
        (socket, "getaddrinfo", _getaddrinfo),
        (socket, "gethostbyname", _gethostbyname), (socket, "gethostbyname_ex", _gethostbyname_ex),
        (socket, "gethostbyaddr", _gethostbyaddr), (socket, "getnameinfo", _getnameinfo),
    ]


def _apply_python_layer() -> None:
    """(Re)install the Python-level wrappers; also run after ``importlib.reload(socket)``."""
    global _orig_getaddrinfo, _next_connect, _next_connect_ex
    with _lock:
        for owner, attr, wrapper in _patches():
            current = owner.__dict__.get(attr)
            if getattr(current, "__module__", None) == __name__:
                continue
            _saved[(owner, attr)] = current
            _next[attr] = current if current is not None else getattr(owner, attr)
            if owner is socket and attr == "getaddrinfo":
                _orig_getaddrinfo = _next[attr]
            setattr(owner, attr, wrapper)
        _next_connect, _next_connect_ex = _next["connect"], _next["connect_ex"]


def _remove_python_layer() -> None:
    global _orig_getaddrinfo
    with _lock:
        for (owner, attr), orig in _saved.items():
            if orig is None:
                with contextlib.suppress(AttributeError):
                    delattr(owner, attr)
            else:
                setattr(owner, attr, orig)
        _saved.clear()
        _orig_getaddrinfo = socket.getaddrinfo


# ---------------------------------------------------------------- the audit hook
_AUDIT: dict[str, Any] = _audit.handlers(sys.modules[__name__])
_audit_connect = _AUDIT["socket.connect"]


def _audit_hook(event: str, args: tuple[Any, ...], _get: Any = _AUDIT.get, _connect: Any = _audit_connect,
                _fast: frozenset[str] = _LOOPBACK_FAST, _dns: frozenset[int] = _DNS_PORTS) -> None:
    if _on:  # the fast path: one global read and one dict probe for every audited event
        handler = _get(event)
        if handler is not None:
            if handler is _connect:  # the hot one, inlined: loopback connects cost no extra call
                address = args[1]
                if address.__class__ is tuple and address[0] in _fast and address[1] not in _dns:
                    return
            handler(args)


# ---------------------------------------------------------------- public API
def activate(allow: Iterable[str] = ()) -> None:
    """Turn the guard on for the whole process (idempotent; ``allow`` adds host:port pairs)."""
    global _on, _hook_installed
    if isinstance(allow, str):
        allow = [allow]
    parsed = {parse_allow(entry): entry for entry in allow}  # all or nothing: parse first
    with _lock:
        for (host, port), entry in parsed.items():
            _allow_entries[(host, port)] = entry
            (_allowed_addrs if _ip(host) is not None else _allowed_names).add((host, port))
        if not _hook_installed:
            sys.addaudithook(_audit_hook)  # permanent by design: it cannot be removed
            _hook_installed = True
        _support.apply_offline_switches()
        _support.install_import_hook(_after_import)
        _apply_python_layer()
        os.environ[ENV_SWITCH] = "1"
        os.environ[ENV_ALLOW] = ",".join(sorted(_allow_entries.values()))
        _on = True


def activate_from_env() -> None:
    """Startup hook entry: activate if ``MM_NETWORK_GUARD=1`` (allow-list from ``MM_NETWORK_GUARD_ALLOW``)."""
    if os.environ.get(ENV_SWITCH) == "1":
        activate([e for e in os.environ.get(ENV_ALLOW, "").split(",") if e])


def deactivate() -> None:
    """Switch everything off and forget the allow-list (tests and tools only; ModelManager never does)."""
    global _on
    with _lock:
        _on = False
        _remove_python_layer()
        _support.restore_offline_switches()
        _support.uninstall_import_hook()
        _allow_entries.clear()
        _allowed_names.clear()
        _allowed_addrs.clear()
        _resolved.clear()
        os.environ.pop(ENV_SWITCH, None)
        os.environ.pop(ENV_ALLOW, None)


def is_active() -> bool:
    return _on


def allowed() -> tuple[str, ...]:
    """The allow-list entries as given, sorted."""
    return tuple(sorted(_allow_entries.values()))


def blocked_attempts() -> tuple[BlockedAttempt, ...]:
    """Every refusal so far in this process, including ones a library caught and swallowed."""
    with _lock:
        return tuple(_blocked)


def refusal_count() -> int:
    """How many refusals this process has made (never goes down, even after clearing)."""
    return _refusals


def clear_blocked_attempts() -> None:
    with _lock:
        _blocked.clear()


def set_context(name: str | None) -> None:
    """Label later refusals (the pytest plugin passes the test's node id)."""
    global _context
    _context = name


def integrity_problems() -> list[str]:
    """What has been switched off or replaced behind the guard's back (empty when intact)."""
    if not _on:
        return ["the guard is off"]
    return [f"{getattr(owner, '__name__', owner)}.{attr} was replaced"
            for owner, attr, _ in _patches()
            if getattr(owner.__dict__.get(attr), "__module__", None) != __name__]


@contextlib.contextmanager
def allowing(entries: Iterable[str]) -> Iterator[None]:
    """Add host:port pairs for the ``with`` block, then restore the previous allow-list."""
    parsed = [parse_allow(e) for e in entries]
    with _lock:
        before = (dict(_allow_entries), set(_allowed_names), set(_allowed_addrs))
    activate(list(entries))
    try:
        yield
    finally:
        with _lock:
            _allow_entries.clear()
            _allow_entries.update(before[0])
            _allowed_names.clear()
            _allowed_names.update(before[1])
            _allowed_addrs.clear()
            _allowed_addrs.update(before[2])
            for key in parsed:
                _resolved.pop(key, None)
            os.environ[ENV_ALLOW] = ",".join(sorted(_allow_entries.values()))


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """Guard off for the ``with`` block (pytest's ``mm_allow_network`` marker), then back on."""
    entries = list(_allow_entries.values())
    was_on = _on
    deactivate()
    try:
        yield
    finally:
        if was_on:
            activate(entries)


def _after_import(name: str) -> None:
    if name == "socket":
        _apply_python_layer()
    elif name in ("grpc", "grpc.aio"):
        _support.patch_grpc(sys.modules[name], check_grpc_target)
