"""Witness listeners: a separate process that counts every TCP connection and UDP datagram that arrives.

Used inside a private network namespace (helpers.netns) to make an escape observable: the
listeners run in their own process, never under the restriction being tested, and start before
the attacker. ``Listeners([...])`` starts them; ``snapshot()`` drains what is pending and returns
``{"tcp:192.0.2.1:80": 1, "udp:198.51.100.7:53": 0, ...}``. Endpoints: ``tcp:HOST:PORT``,
``udp:HOST:PORT``, IPv6 hosts in brackets (``tcp:[2001:db8::1]:443``).

    python tests/helpers/listeners.py tcp:127.0.0.1:18000 udp:198.51.100.7:53

prints ``READY``, then one JSON line of counts for every ``snap`` line read on stdin; exits on EOF.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType


def parse_endpoint(endpoint: str) -> tuple[str, str, int]:
    proto, _, rest = endpoint.partition(":")
    host, _, port = rest.rpartition(":")
    if proto not in ("tcp", "udp") or not host or not port.isdigit():
        raise ValueError(f"endpoint {endpoint!r}: write tcp:HOST:PORT or udp:HOST:PORT")
    return proto, host.strip("[]"), int(port)


def _serve(endpoints: Sequence[str]) -> None:
    sel = selectors.DefaultSelector()
    counts = dict.fromkeys(endpoints, 0)
    for endpoint in endpoints:
        proto, host, port = parse_endpoint(endpoint)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if proto == "tcp":
            sock.listen(64)
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, (endpoint, proto))
    sel.register(sys.stdin, selectors.EVENT_READ, ("stdin", "stdin"))
    print("READY", flush=True)

    def count(key: selectors.SelectorKey) -> None:
        endpoint, proto = key.data
        sock = key.fileobj
        assert isinstance(sock, socket.socket)
        try:
            if proto == "tcp":
                sock.accept()[0].close()
            else:
                sock.recvfrom(65536)
            counts[endpoint] += 1
        except BlockingIOError:
            pass

    while True:
        for key, _ in sel.select():
            if key.data[1] != "stdin":
                count(key)
                continue
            if not sys.stdin.readline():
                return
            time.sleep(0.1)                # let a handshake or datagram still in flight land
            while pending := [k for k, _ in sel.select(0) if k.data[1] != "stdin"]:
                for k in pending:
                    count(k)
            print(json.dumps(counts), flush=True)


class Listeners:
    """Start the witness process; ``snapshot()`` returns the counts so far; ``close()`` ends it."""

    def __init__(self, endpoints: Sequence[str]) -> None:
        for endpoint in endpoints:
            parse_endpoint(endpoint)
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *endpoints],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env={k: v for k, v in os.environ.items() if not k.startswith("MM_")})
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline().strip()
        if ready != "READY":
            self.proc.kill()
            raise RuntimeError(f"witness listeners did not start: {ready!r} (rc {self.proc.wait()})")

    def snapshot(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("snap\n")
        self.proc.stdin.flush()
        counts: dict[str, int] = json.loads(self.proc.stdout.readline())
        return counts

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Listeners:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


if __name__ == "__main__":
    _serve(sys.argv[1:])
