"""The witness of the guard's attack suite: a process of its own, never guarded, that counts what arrives.

Run only inside the private network namespace (tests/guard/guard_attacks.py starts it before the
guard comes on). It listens on the documentation addresses put on ``lo``: TCP and UDP ports,
a tiny DNS server (every query counted; A/AAAA questions answered with 192.0.2.1 / 2001:db8::1,
so a leaked lookup also shows as a connection), a forward HTTP proxy on loopback (the way out
the proxy variables open), and an AF_PACKET socket on ``lo`` that counts frames carrying the
escape marker. Each ``snap`` line on stdin is answered with one JSON object of counts.
"""

from __future__ import annotations

import json
import selectors
import socket
import struct
import sys
import time
from typing import Any

HOSTS = ("192.0.2.1", "198.51.100.7", "203.0.113.5", "2001:db8::1")
TCP_PORTS = (80, 443, 8000, 8001, 8080)
UDP_PORTS = (9, 53)
NAMESERVER = "203.0.113.5"
PROXY = ("127.0.0.1", 3128)
LOOPBACK_DNS = ("127.0.0.53", 53)
MARKER = b"MM-GUARD-PACKET-ESCAPE"


def _key(proto: str, host: str, port: int) -> str:
    return f"{proto}:[{host}]:{port}" if ":" in host else f"{proto}:{host}:{port}"


def _dns_answer(query: bytes) -> bytes | None:
    try:
        end = 12
        while query[end]:
            end += query[end] + 1
        qtype = struct.unpack("!H", query[end + 1:end + 3])[0]
        question = query[12:end + 5]
    except (IndexError, struct.error):
        return None
    header = query[:2] + b"\x81\x80" + struct.pack("!HHHH", 1, 1 if qtype in (1, 28) else 0, 0, 0)
    if qtype == 1:
        return header + question + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + socket.inet_aton(HOSTS[0])
    if qtype == 28:
        return header + question + b"\xc0\x0c\x00\x1c\x00\x01\x00\x00\x00\x3c\x00\x10" + \
            socket.inet_pton(socket.AF_INET6, HOSTS[3])
    return header + question


def main() -> None:
    sel = selectors.DefaultSelector()
    counts: dict[str, int] = {}

    def listen(proto: str, host: str, port: int, role: str = "count") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if proto == "tcp":
            sock.listen(128)
        sock.setblocking(False)
        key = _key(proto, host, port)
        counts[key] = 0
        sel.register(sock, selectors.EVENT_READ, (key, proto, role))

    for host in HOSTS:
        for port in TCP_PORTS:
            listen("tcp", host, port)
        for port in UDP_PORTS:
            listen("udp", host, port, "dns" if port == 53 else "count")
    listen("tcp", NAMESERVER, 53)
    listen("udp", *LOOPBACK_DNS, "dns")
    listen("tcp", *PROXY, "proxy")
    packet = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    packet.bind(("lo", 0))
    packet.setblocking(False)
    counts["packet:lo"] = 0
    sel.register(packet, selectors.EVENT_READ, ("packet:lo", "packet", "count"))
    print("READY", flush=True)

    def handle(key: selectors.SelectorKey) -> None:
        name, proto, role = key.data
        sock: Any = key.fileobj
        try:
            if proto == "packet":
                frame = sock.recv(65536)
                if MARKER in frame:
                    counts[name] += 1
                return
            if proto == "tcp":
                conn, _ = sock.accept()
                counts[name] += 1
                if role == "proxy":
                    _proxy(conn, counts)
                conn.close()
                return
            data, peer = sock.recvfrom(65536)
            counts[name] += 1
            answer = _dns_answer(data) if role == "dns" else None
            if answer:
                sock.sendto(answer, peer)
        except (BlockingIOError, OSError):
            pass

    sel.register(sys.stdin, selectors.EVENT_READ, ("stdin", "stdin", "stdin"))
    while True:
        for key, _ in sel.select():
            if key.data[0] != "stdin":
                handle(key)
                continue
            if not sys.stdin.readline():
                return
            time.sleep(0.02)  # let what is still in flight on lo land
            while pending := [k for k, _ in sel.select(0) if k.data[0] != "stdin"]:
                for k in pending:
                    handle(k)
            print(json.dumps(counts), flush=True)


def _proxy(conn: socket.socket, counts: dict[str, int]) -> None:
    """A forward proxy: read the request line, connect to the host it names (not guarded here)."""
    conn.settimeout(2)
    try:
        line = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
        method, target, _ = line.split(" ", 2)
        hostport = target.split("://", 1)[-1].split("/", 1)[0] if method != "CONNECT" else target
        host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "80")
        with socket.create_connection((host.strip("[]"), int(port or 80)), timeout=2):
            counts["proxy:forwarded"] = counts.get("proxy:forwarded", 0) + 1
        conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    main()
