"""What the attack cases share: the case registry, the targets, the witness, /etc/hosts rebinding.

Imported only by the attack child (tests/guard/guard_attacks.py), which runs inside the private
network namespace. Targets are the documentation addresses put on ``lo`` there, where the witness
(tests/guard/guard_witness.py, its own unguarded process) counts every arrival.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
V4, V4B, V4C, V6 = "192.0.2.1", "198.51.100.7", "203.0.113.5", "2001:db8::1"
ADDRESSES = [f"{V4}/32", f"{V4B}/32", f"{V4C}/32", f"{V6}/128"]
NAMESERVER = V4C
LOOPBACK_DNS = ("127.0.0.53", 53)
FORWARD_PROXY = "http://127.0.0.1:3128"
REMOTE_PROXY = f"http://{V4B}:8080"
#: exported in the attack child's environment before the guard comes on (ways out 2)
PROXY_ENV = {"https_proxy": REMOTE_PROXY, "HTTPS_PROXY": REMOTE_PROXY, "grpc_proxy": REMOTE_PROXY,
             "HTTP_PROXY": FORWARD_PROXY, "http_proxy": FORWARD_PROXY, "ALL_PROXY": REMOTE_PROXY,
             "no_proxy": "", "NO_GRPC_PROXY": ""}
HOSTS = {"triton": "127.0.0.1", "tritonremote": V4B}
MARKER = b"MM-GUARD-PACKET-ESCAPE"

CASES: dict[str, Callable[[], Any]] = {}
#: cases that show a documented limit: their traffic is expected to arrive
LIMITS: set[str] = set()
DNS_SEEN: list[tuple[str, Any]] = []
STATE: dict[str, Any] = {}   # shared between the runner and the cases (the loopback server's port ...)


def case(fn: Callable[[], Any]) -> Callable[[], Any]:
    CASES[fn.__name__] = fn
    return fn


def limit(fn: Callable[[], Any]) -> Callable[[], Any]:
    LIMITS.add(fn.__name__)
    return case(fn)


def tcp(host: str, port: int, family: int = socket.AF_INET, timeout: float = 2) -> None:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))


def run(argv: list[str], **kwargs: Any) -> str:
    """A child process of the attack; its output (the guard refuses before it starts, or not)."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, **kwargs)
    return f"rc {proc.returncode}: {(proc.stdout + proc.stderr).strip()[-200:]}"


@contextlib.contextmanager
def hosts_file(entries: dict[str, str]) -> Iterator[None]:
    """/etc/hosts replaced for the block (the attack child has its own mount namespace)."""
    with tempfile.NamedTemporaryFile("w", suffix=".hosts", delete=False) as f:
        f.write("".join(f"{ip} {name}\n" for name, ip in entries.items()))
    subprocess.run(["mount", "--bind", f.name, "/etc/hosts"], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "/etc/hosts"], check=True, capture_output=True)
        os.unlink(f.name)


def dns_recorder(event: str, args: tuple[Any, ...]) -> None:
    # Installed after the guard's hook: it sees only what the guard let through to C.
    if event in ("socket.getaddrinfo", "socket.gethostbyname") and args[0] not in (None, "", b""):
        host = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        if not host.replace(".", "").isdigit() and ":" not in host and host != "localhost":
            DNS_SEEN.append((event, host))


def never_vsock(event: str, args: tuple[Any, ...]) -> None:
    """A second audit hook, after the guard's: no AF_VSOCK socket ever reaches the kernel in this
    suite, whatever the guard does (namespaces do not isolate vsock). The guard must refuse first."""
    if event == "socket.__new__" and args[1] == getattr(socket, "AF_VSOCK", 40):
        raise RuntimeError("the guard let an AF_VSOCK socket through (stopped by the test's safety hook)")


class Witness:
    """The witness process: started before the guard, counts what arrives at the targets."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MM_") and not k.lower().endswith("_proxy")}
        self.proc = subprocess.Popen([sys.executable, str(HERE / "guard_witness.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        ready = self.proc.stdout.readline().strip()
        if ready != "READY":
            raise RuntimeError(f"witness did not start: {ready!r}")
        self.last = self._read()

    def _read(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("snap\n")
        self.proc.stdin.flush()
        counts: dict[str, int] = json.loads(self.proc.stdout.readline())
        return counts

    def arrived(self) -> dict[str, int]:
        """What arrived since the last call (endpoint -> count, only those with arrivals)."""
        now = self._read()
        new = {k: v - self.last.get(k, 0) for k, v in now.items() if v != self.last.get(k, 0)}
        self.last = now
        return new

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=5)
