"""Sockets the process already had when the guard came on: their traffic is never checked again.

Read from ``/proc/self/fd`` (which descriptors are sockets) and ``/proc/self/net/*`` (what each
socket is connected to). A TCP or UDP socket connected to an address that is neither loopback
nor allowed, and every raw or packet socket, is one. Linux only; elsewhere nothing is found.
"""

from __future__ import annotations

import ipaddress
import os

from model_manager.guard.checks import endpoint_allowed

_TABLES = ("tcp", "tcp6", "udp", "udp6", "raw", "raw6", "packet")


class OpenSocket:  # a plain class: a dataclass or NamedTuple costs more to define than the scan
    __slots__ = ("fd", "inode", "kind", "remote")

    def __init__(self, fd: int, inode: int, kind: str, remote: str) -> None:
        self.fd = fd
        self.inode = inode
        self.kind = kind        # tcp, tcp6, udp, udp6, raw, raw6, packet
        self.remote = remote    # host:port, or "" for a packet socket

    def describe(self) -> str:
        to = f" to {self.remote}" if self.remote else ""
        return f"fd {self.fd}: a {self.kind} socket{to} opened before the guard (its traffic is not checked)"

    def still_open(self) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{self.fd}") == f"socket:[{self.inode}]"
        except OSError:
            return False


def _socket_fds() -> dict[int, int]:
    """inode -> fd of every socket descriptor."""
    found: dict[int, int] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        try:
            link = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if link.startswith("socket:["):
            found[int(link[8:-1])] = int(name)
    return found


def _address(hexed: str) -> tuple[str, int]:
    addr, _, port = hexed.partition(":")
    raw = bytes.fromhex(addr)
    # /proc prints each 32-bit word of the address in host (little-endian) order
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(words)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).compressed, int(port, 16)


def scan() -> list[OpenSocket]:
    inodes = _socket_fds()
    found: list[OpenSocket] = []
    if not inodes:
        return found
    for kind in _TABLES:
        try:
            with open(f"/proc/self/net/{kind}", encoding="ascii") as table:
                lines = table.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            column = 8 if kind == "packet" else 9
            inode = int(fields[column]) if len(fields) > column else 0
            if inode not in inodes:
                continue
            if kind == "packet":
                found.append(OpenSocket(inodes[inode], inode, kind, ""))
                continue
            host, port = _address(fields[2])
            if kind.startswith("raw") or (port != 0 and not endpoint_allowed(host, port)):
                shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                found.append(OpenSocket(inodes[inode], inode, kind, shown))
    return sorted(found, key=lambda s: s.fd)
