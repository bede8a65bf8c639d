"""Addresses as the kernel will read them, and the allow-list entries that name them.

Everything the guard judges goes through here first: a host that is a ``str`` subclass is read
as its characters (what C's ``connect`` uses), an address that is a ``tuple`` subclass
(``namedtuple``, starlette's ``Address``) as a plain tuple, a port that is a numpy integer as an
``int`` (``operator.index``, as C does). Standard library only.
"""

from __future__ import annotations

import ipaddress
import operator
from typing import NoReturn

from model_manager.errors import InvalidModelSpec

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: the literal loopback hosts the hot paths let through without any further work
LOOPBACK_FAST = frozenset({"127.0.0.1", "::1"})
#: a loopback DNS stub (systemd-resolved on 127.0.0.53) forwards queries off the host
DNS_PORTS = frozenset({53, 853, 5353})


def text(host: object) -> str:
    """The characters C would use for ``host``: a str or bytes subclass cannot pass for another value."""
    if host.__class__ is str:
        return host
    if isinstance(host, str):
        return str.__str__(host)  # the characters themselves, not what a subclass's __str__ says
    if isinstance(host, (bytes, bytearray, memoryview)):
        return bytes(memoryview(host)).decode("ascii", "replace")
    return str(host)


def port_or_none(port: object) -> int | None:
    """An int for anything C reads as one (``int`` subclasses, numpy integers), else None."""
    if port.__class__ is int:
        return port
    if isinstance(port, (str, bytes)):
        digits = text(port)
        return int(digits) if digits.isascii() and digits.isdigit() else None
    try:
        return operator.index(port)  # type: ignore[arg-type]
    except TypeError:
        return None


def ip_or_none(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    ip = ip_or_none(host)
    if ip is None:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def name_key(host: str) -> str:
    """How a hostname is compared: lower case, without the root dot."""
    return host.lower().rstrip(".")


def as_tuple(address: object) -> tuple[object, ...] | None:
    """A plain tuple for any tuple (subclasses included), None for other shapes."""
    if address.__class__ is tuple:
        return address
    if isinstance(address, tuple):
        return tuple.__getitem__(address, slice(None))  # a subclass's __iter__/__getitem__ cannot lie
    return None


# ---------------------------------------------------------------- allow-list entries
_HINT = ("write host:port ('localhost:8000', 'triton:8000', '[::1]:8001') or a network "
         "('192.0.2.0/24', '192.0.2.0/24:8000', '[2001:db8::/32]:443')")


def _bad(entry: object, why: str) -> NoReturn:
    raise InvalidModelSpec(f"network allow-list entry {entry!r}: {why}", field="allow", hint=_HINT)


def parse_allow(entry: object) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port``, ``http://host:port`` -> (host, port); a network
    ``a.b.c.d/n[:port]`` or ``[v6/n]:port`` or ``v6/n`` -> (network, port or None)."""
    if not isinstance(entry, str):
        _bad(entry, f"expected a 'host:port' string, got {type(entry).__name__}")
    body = entry.strip()
    if body != entry or not body:
        _bad(entry, "empty or surrounded by whitespace")
    for scheme in ("http://", "https://", "grpc://"):
        if body.lower().startswith(scheme):
            body = body[len(scheme):].rstrip("/")
    if "/" in body and ip_or_none(body.removeprefix("[").partition("/")[0]) is not None:
        return _parse_network(entry, body)
    if any(c in body for c in "/@?#* \t,"):
        _bad(entry, "only host:port is allowed (no path, user, wildcard, space or list)")
    if body.startswith("["):
        host, sep, port_text = body[1:].partition("]:")
        if not sep or ip_or_none(host) is None:
            _bad(entry, "an IPv6 address is written in brackets with a port: '[::1]:8001'")
    else:
        host, sep, port_text = body.rpartition(":")
        if not sep:
            _bad(entry, "no port: write host:port")
        if ":" in host:
            _bad(entry, "an IPv6 address needs brackets: '[::1]:8001'")
    if not host:
        _bad(entry, "no host")
    port = _port(entry, port_text)
    ip = ip_or_none(host)
    if ip is not None:
        if ip.is_unspecified or ip.is_multicast:
            _bad(entry, "an unspecified or multicast address names no server")
        return ip.compressed, port
    if not all(part and len(part) < 64 and part.replace("-", "").replace("_", "").isalnum() and part.isascii()
               for part in host.split(".")):
        _bad(entry, f"{host!r} is not a valid hostname")
    return name_key(host), port


def _port(entry: str, port_text: str) -> int:
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        _bad(entry, f"port {port_text!r} is not a number from 1 to 65535")
    return int(port_text)


def _parse_network(entry: str, body: str) -> tuple[str, int | None]:
    port: int | None = None
    if body.startswith("["):
        net_text, sep, port_text = body[1:].partition("]:")
        if not sep:
            _bad(entry, "a bracketed IPv6 network needs a port: '[2001:db8::/32]:443'")
        port = _port(entry, port_text)
    elif body.count(":") == 1:  # an IPv4 network with a port
        net_text, _, port_text = body.partition(":")
        port = _port(entry, port_text)
    else:
        net_text = body
    try:
        network = ipaddress.ip_network(net_text, strict=True)
    except ValueError as exc:
        _bad(entry, f"not a network ({exc})")
    if network.is_unspecified or network.is_multicast or network.prefixlen == 0:
        _bad(entry, "a network must name servers: not 0.0.0.0/0, ::/0 or multicast")
    return network.compressed, port


def network_or_none(host: str) -> Network | None:
    """The network of a parsed allow entry's host, or None for a host or address."""
    if "/" not in host:
        return None
    return ipaddress.ip_network(host)
