"""The checks: is this endpoint, address, name or socket family allowed? Refuse if not.

Names are judged by what they resolve to: ``localhost`` is resolved once and must give loopback
addresses only; an allowed name is resolved once for its pair and its addresses are pinned, for
IPv4 and IPv6 alike (a connect by name goes to the pinned address, never to a fresh answer).
"""

from __future__ import annotations

import _socket
import socket
from typing import Any

from model_manager.guard.addresses import (
    DNS_PORTS,
    LOOPBACK_FAST,
    as_tuple,
    ip_or_none,
    is_loopback,
    name_key,
    port_or_none,
    text,
)
from model_manager.guard.record import refuse
from model_manager.guard.state import LOCK, STATE

#: the only socket families the guard lets a process create
ALLOWED_FAMILIES = frozenset({socket.AF_UNIX, socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK})
_INET = frozenset({socket.AF_INET, socket.AF_INET6})
_LOCAL = frozenset({socket.AF_UNIX, socket.AF_NETLINK})
_RAW_TYPES = frozenset({socket.SOCK_RAW, 10})  # 10: SOCK_PACKET, the legacy packet interface
_family_of = _socket.socket.family.__get__
_real_getaddrinfo = _socket.getaddrinfo  # the C resolver itself, never a wrapper


def family_name(family: object) -> str:
    try:
        return socket.AddressFamily(family).name  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return f"address family {family!r}"


def family_allowed(family: object, kind: object = -1) -> bool:
    """Whether a socket of this family (and type) may be created under the guard."""
    number = port_or_none(family)
    if number == -1:
        number = socket.AF_INET  # what the socket module makes of "no family given"
    if number not in ALLOWED_FAMILIES:
        return False
    sock_type = port_or_none(kind)
    return number not in _INET or sock_type is None or (sock_type & 0xF) not in _RAW_TYPES


def check_family(family: object, kind: object = -1, layer: str = "python") -> None:
    if not family_allowed(family, kind):
        number = port_or_none(family)
        what = family_name(number) + ("" if number not in _INET else " raw")
        refuse(f"creating an {what} socket (only AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK)",
               what, None, layer, target=False)


def endpoint_allowed(host: str, port: int | None) -> bool:
    """Loopback (not a DNS port unless listed), an allowed pair, or an address in an allowed network."""
    ip = ip_or_none(host)
    if ip is None:
        key = name_key(host)
        if key == "localhost":
            return localhost_is_loopback() and (port not in DNS_PORTS or (key, port) in STATE.names)
        return (key, port) in STATE.names
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    if ip.is_loopback:
        return port not in DNS_PORTS or (ip.compressed, port) in STATE.addrs
    if (ip.compressed, port) in STATE.addrs:
        return True
    return any(ip in net and allowed_port in (None, port)
               for net, allowed_port in STATE.networks if net.version == ip.version)


def check_endpoint(host: object, port: object, op: str = "connect", layer: str = "python") -> None:
    """Refuse (raise and record) unless host:port is loopback or allowed."""
    name, number = text(host), port_or_none(port)
    if not endpoint_allowed(name, number):
        refuse(op, name, number, layer)


def check_address(sock: Any, address: object, op: str, layer: str) -> object:
    """Judge ``address`` for ``sock``; the address to hand to C (a name replaced by its pinned
    address). A refused socket is closed before the refusal is raised."""
    try:
        family = _family_of(sock)
    except TypeError:
        family = getattr(sock, "family", socket.AF_INET)
    if family in _LOCAL:
        return address
    if family not in _INET:
        what = family_name(family)
        refuse(f"{op} on an {what} socket", what, None, layer, sock, target=False)
    parts = as_tuple(address)
    if parts is None or len(parts) < 2:
        refuse(f"{op} to an address that is not (host, port)", text(address), None, layer, sock)
    host, port = text(parts[0]), port_or_none(parts[1])
    if ip_or_none(host) is not None:
        if not endpoint_allowed(host, port):
            refuse(op, host, port, layer, sock)
        return (host, port, *parts[2:])
    key = name_key(host)
    if key == "localhost":
        if not localhost_is_loopback():
            refuse(f"{op} ({not_loopback()})", host, port, layer, sock)
        if not endpoint_allowed(key, port):
            refuse(op, host, port, layer, sock)
        pins = localhost()
    elif (key, port) in STATE.names and port is not None:
        pins = pinned(key, port)
    else:
        refuse(op, host, port, layer, sock)
    for pin_family, _, _, _, sockaddr in pins:
        if pin_family == family:
            return (sockaddr[0], port, *sockaddr[2:])
    refuse(f"{op} ({host} has no pinned {family_name(family)} address)", host, port, layer, sock)


def check_resolve(host: object, port: object = None, op: str = "getaddrinfo", layer: str = "python") -> None:
    """Name resolution: IP literals resolve locally; ``localhost`` if it is loopback; a name if allowed."""
    if host is None or (host.__class__ is str and host in LOOPBACK_FAST):
        return
    name = text(host)
    if not name or ip_or_none(name) is not None:
        return
    key, number = name_key(name), port_or_none(port)
    if key == "localhost":
        if key in STATE.resolving or localhost_is_loopback():
            return
        refuse(f"{op} ({not_loopback()})", name, number, layer)
    if (key, number) in STATE.names or (number is None and any(n == key for n, _ in STATE.names)):
        return
    refuse(op, name, number, layer)


def check_reverse(address: object, port: object = None, op: str = "gethostbyaddr (reverse DNS)",
                  layer: str = "python") -> None:
    """Reverse DNS sends the address out: loopback only."""
    name = text(address)
    if not is_loopback(name) and name_key(name) != "localhost":
        refuse(op, name, port_or_none(port), layer)


# ---------------------------------------------------------------- names resolved once
def pinned(key: str, port: int) -> list[Any]:
    """The getaddrinfo answer for an allowed (name, port), resolved once; its addresses are allowed."""
    with LOCK:
        if (key, port) not in STATE.pins:
            if key in STATE.resolving:
                return []
            STATE.resolving.add(key)
            try:
                result = _real_getaddrinfo(key, port, 0, socket.SOCK_STREAM)
            finally:
                STATE.resolving.discard(key)
            STATE.pins[(key, port)] = result
            for _, _, _, _, sockaddr in result:
                ip = ip_or_none(str(sockaddr[0]))
                if ip is not None:
                    STATE.addrs.add((ip.compressed, port))
        return STATE.pins[(key, port)]


def localhost() -> list[Any]:
    """getaddrinfo('localhost') once per activation (an empty answer if it does not resolve)."""
    with LOCK:
        if STATE.localhost is None:
            if "localhost" in STATE.resolving:
                return []
            STATE.resolving.add("localhost")
            try:
                STATE.localhost = _real_getaddrinfo("localhost", None, 0, socket.SOCK_STREAM)
            except OSError:
                STATE.localhost = []
            finally:
                STATE.resolving.discard("localhost")
        return STATE.localhost


def localhost_is_loopback() -> bool:
    answer = localhost()
    return bool(answer) and all(is_loopback(str(a[4][0])) for a in answer)


def not_loopback() -> str:
    addresses = ", ".join(sorted({str(a[4][0]) for a in STATE.localhost or []})) or "nothing"
    return f"localhost resolves to {addresses}, not loopback only"
