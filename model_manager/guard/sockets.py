"""The Python layer: wrappers on ``socket.socket`` and the module's resolvers.

The wrappers are built by ``build`` as closures over the checks and the implementations they
wrap, so replacing ``checks.check_address`` (or any module attribute) changes nothing they do;
``integrity_problems()`` reports the replacement. Loopback by literal address takes a fast path
of a few comparisons (exact types only: a ``str`` subclass cannot pass for ``127.0.0.1``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from model_manager.guard import checks
from model_manager.guard.addresses import DNS_PORTS, LOOPBACK_FAST, name_key, port_or_none, text
from model_manager.guard.patches import ours, put
from model_manager.guard.state import LOCK, STATE

SOCKET_ATTRS = ("__init__", "connect", "connect_ex", "sendto", "sendmsg")
MODULE_ATTRS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")


def build(nxt: dict[str, Any]) -> dict[str, Callable[..., Any]]:
    """The wrappers around the implementations ``nxt`` (attribute name -> what was there)."""
    fast, dns = LOOPBACK_FAST, DNS_PORTS
    check_address, check_family = checks.check_address, checks.check_family
    check_resolve, check_reverse, pinned, localhost = (checks.check_resolve, checks.check_reverse,
                                                       checks.pinned, checks.localhost)
    next_init, next_connect, next_connect_ex = nxt["__init__"], nxt["connect"], nxt["connect_ex"]
    next_sendto, next_sendmsg, next_getaddrinfo = nxt["sendto"], nxt["sendmsg"], nxt["getaddrinfo"]
    next_byname, next_byname_ex = nxt["gethostbyname"], nxt["gethostbyname_ex"]
    next_byaddr, next_nameinfo = nxt["gethostbyaddr"], nxt["getnameinfo"]
    names = STATE.names

    def __init__(self: socket.socket, family: Any = -1, type: Any = -1, proto: Any = -1,
                 fileno: Any = None) -> None:
        if fileno is None or family != -1:
            check_family(family, type if fileno is None else -1)
        next_init(self, family, type, proto, fileno)

    def connect(self: socket.socket, address: Any) -> None:
        if address.__class__ is tuple and address[0] in fast and address[1] not in dns \
                and address[0].__class__ is str and address[1].__class__ is int:
            return next_connect(self, address)
        return next_connect(self, check_address(self, address, "connect", "python"))

    def connect_ex(self: socket.socket, address: Any) -> int:
        if address.__class__ is tuple and address[0] in fast and address[1] not in dns \
                and address[0].__class__ is str and address[1].__class__ is int:
            return next_connect_ex(self, address)
        return next_connect_ex(self, check_address(self, address, "connect_ex", "python"))

    def sendto(self: socket.socket, data: Any, flags_or_address: Any, *address: Any) -> int:
        if address:
            return next_sendto(self, data, flags_or_address,
                               check_address(self, address[0], "sendto", "python"), *address[1:])
        return next_sendto(self, data, check_address(self, flags_or_address, "sendto", "python"))

    def sendmsg(self: socket.socket, buffers: Any, *rest: Any) -> int:
        if len(rest) >= 3 and rest[2] is not None:
            rest = (*rest[:2], check_address(self, rest[2], "sendmsg", "python"), *rest[3:])
        return next_sendmsg(self, buffers, *rest)

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                    flags: int = 0) -> list[Any]:
        check_resolve(host, port, "getaddrinfo")
        if host is not None and not (host.__class__ is str and host in fast):
            key, number = name_key(text(host)), port_or_none(port)
            if key == "localhost":
                return _answer(localhost(), number, family, type, proto)
            if number is not None and (key, number) in names:
                return _answer(pinned(key, number), number, family, type, proto)
        return next_getaddrinfo(host, port, family, type, proto, flags)

    def gethostbyname(hostname: Any) -> Any:
        check_resolve(hostname, None, "gethostbyname")
        return next_byname(_pinned_host(hostname, pinned, localhost))

    def gethostbyname_ex(hostname: Any) -> Any:
        check_resolve(hostname, None, "gethostbyname_ex")
        return next_byname_ex(_pinned_host(hostname, pinned, localhost))

    def gethostbyaddr(ip_address: Any) -> Any:
        check_reverse(ip_address)
        return next_byaddr(ip_address)

    def getnameinfo(sockaddr: Any, flags: int) -> Any:
        if not flags & socket.NI_NUMERICHOST:
            check_reverse(sockaddr[0], sockaddr[1] if len(sockaddr) > 1 else None, "getnameinfo (reverse DNS)")
        return next_nameinfo(sockaddr, flags)

    return {"__init__": __init__, "connect": connect, "connect_ex": connect_ex, "sendto": sendto,
            "sendmsg": sendmsg, "getaddrinfo": getaddrinfo, "gethostbyname": gethostbyname,
            "gethostbyname_ex": gethostbyname_ex, "gethostbyaddr": gethostbyaddr, "getnameinfo": getnameinfo}


_KINDS = ((socket.SOCK_STREAM, 6), (socket.SOCK_DGRAM, 17), (socket.SOCK_RAW, 0))  # what glibc lists for type 0


def _answer(pins: list[Any], port: int | None, family: int, kind: int, proto: int) -> list[Any]:
    """The pinned answer in getaddrinfo's shape, for the family, type and port asked."""
    out = []
    for f, _, _, canon, sockaddr in pins:
        if family in (0, f):
            for k, p in _KINDS if not kind else ((kind, proto),):
                out.append((_enum(socket.AddressFamily, f), _enum(socket.SocketKind, k), proto or p, canon,
                            (sockaddr[0], port or 0, *sockaddr[2:])))
    return out


def _enum(cls: Any, value: int) -> Any:
    try:
        return cls(value)
    except ValueError:
        return value


def _pinned_host(hostname: Any, pinned: Any, localhost: Any) -> Any:
    key = name_key(text(hostname))
    if key == "localhost":
        v4 = [a for a in localhost() if a[0] == socket.AF_INET]
        return v4[0][4][0] if v4 else hostname
    ports = sorted(p for n, p in STATE.names if n == key and p is not None)
    if not ports:
        return hostname
    v4 = [a for a in pinned(key, ports[0]) if a[0] == socket.AF_INET]
    return v4[0][4][0] if v4 else hostname


def _targets() -> list[tuple[Any, str]]:
    return [(socket.socket, attr) for attr in SOCKET_ATTRS] + [(socket, attr) for attr in MODULE_ATTRS]


def install() -> None:
    """(Re)install the wrappers: after activation, after ``importlib.reload(socket)``, to repair."""
    with LOCK:
        for owner, attr in _targets():
            if not ours(owner, attr) or attr not in STATE.next:
                current = owner.__dict__.get(attr)
                STATE.next[attr] = current if current is not None else getattr(owner, attr)
        wrappers = build(STATE.next)
        for owner, attr in _targets():
            put(owner, attr, wrappers[attr])
