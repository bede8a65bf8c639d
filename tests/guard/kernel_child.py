"""Kernel-mode attack cases, run ONLY inside a private network namespace (tests/guard/test_kernel_mode.py).

Never run this on a host: kernel mode is irreversible and the targets are documentation addresses.

    kernel_child.py --netns-run          orchestrate: addresses on lo, witness listeners (their own
                                         process, never restricted), then the attacker with kernel
                                         mode, a snapshot of what arrived, the same attacks without
                                         kernel mode (the control: each attack is real), a snapshot
    kernel_child.py --attack kernel|control
    kernel_child.py --scenario threads|fake_abi|opened_before

Each prints one line ``MM-RESULTS <json>``.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import json
import multiprocessing
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from model_manager.errors import KernelGuardUnavailable
from model_manager.guard import kernel

TESTS = Path(__file__).resolve().parents[1]

ALLOWED = 18000
#: case -> the witness endpoint it aims at (each case its own, so an arrival names its case)
TARGETS = {
    "tcp_v4": "tcp:192.0.2.1:80",
    "tcp_v6": "tcp:[2001:db8::1]:443",
    "ctypes_libc_connect": "tcp:203.0.113.5:80",
    "uvloop_create_connection": "tcp:192.0.2.1:8443",
    "pycurl_fetch": "tcp:192.0.2.1:8080",
    "udp_dns_sendto": "udp:198.51.100.7:53",
    "bash_dev_tcp": "tcp:192.0.2.1:2222",
    "python_S_child": "tcp:203.0.113.5:443",
    "multiprocessing_spawn_child": "tcp:203.0.113.5:9000",
    "forked_child": "tcp:203.0.113.5:9001",
    "tcp_fast_open_sendto": "tcp:192.0.2.1:7000",
    "mptcp_connect": "tcp:192.0.2.1:7001",
}
ALLOWED_TARGETS = {"allowed_loopback": f"tcp:127.0.0.1:{ALLOWED}",
                   "allowed_port_other_address": f"tcp:192.0.2.1:{ALLOWED}"}
ADDRESSES = [["ip", "addr", "add", a, "dev", "lo"] for a in ("192.0.2.1/32", "198.51.100.7/32", "203.0.113.5/32")]
ADDRESSES.append(["ip", "-6", "addr", "add", "2001:db8::1/128", "dev", "lo", "nodad"])
MPTCP, MSG_FASTOPEN = 262, 0x20000000


def _addr(endpoint: str) -> tuple[str, int]:
    _, _, rest = endpoint.partition(":")
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)


def _result(fn: Callable[[], Any]) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        detail = fn()
        outcome, code = "connected", None
        if isinstance(detail, dict):  # a case that reports an errno it saw elsewhere (child, C library)
            code = detail.get("errno")
            outcome = "refused" if code in (errno.EACCES, errno.EPERM) else detail.get("outcome", "connected")
    except KernelGuardUnavailable as exc:
        outcome, code, detail = "kernel_guard_unavailable", None, str(exc)
    except OSError as exc:
        outcome = "refused" if exc.errno in (errno.EACCES, errno.EPERM) else "error"
        code, detail = exc.errno, str(exc)
    return {"outcome": outcome, "errno": code, "detail": repr(detail)[:400],
            "seconds": round(time.perf_counter() - start, 3)}


def _tcp(endpoint: str, family: int = socket.AF_INET, proto: int = 0) -> str:
    with socket.socket(family, socket.SOCK_STREAM, proto) as s:
        s.settimeout(3)
        s.connect(_addr(endpoint))
        return "connected"


def _ctypes_connect() -> dict[str, Any]:
    libc = ctypes.CDLL(None, use_errno=True)
    host, port = _addr(TARGETS["ctypes_libc_connect"])
    fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    sockaddr = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(host) + bytes(8)
    rc = libc.connect(fd, ctypes.create_string_buffer(sockaddr, 16), 16)
    err = ctypes.get_errno() if rc != 0 else None
    os.close(fd)
    return {"errno": err, "outcome": "connected" if rc == 0 else "error"}


def _uvloop() -> str:
    import uvloop

    async def go() -> str:
        loop = asyncio.get_running_loop()
        transport, _ = await asyncio.wait_for(
            loop.create_connection(asyncio.Protocol, *_addr(TARGETS["uvloop_create_connection"])), 3)
        transport.close()
        return type(loop).__module__

    return uvloop.run(go())


def _pycurl() -> dict[str, Any]:
    import pycurl  # type: ignore[import-untyped]
    curl = pycurl.Curl()
    host, port = _addr(TARGETS["pycurl_fetch"])
    curl.setopt(pycurl.URL, f"http://{host}:{port}/")
    curl.setopt(pycurl.PROXY, "")
    curl.setopt(pycurl.CONNECTTIMEOUT, 3)
    curl.setopt(pycurl.TIMEOUT, 3)
    curl.setopt(pycurl.WRITEFUNCTION, lambda data: None)
    try:
        curl.perform()
        return {"errno": None}
    except pycurl.error as exc:
        os_errno = curl.getinfo(pycurl.OS_ERRNO)
        # 52 "empty reply": it connected (the witness closes at once); 7: could not connect
        return {"errno": os_errno or None, "curl": exc.args[0],
                "outcome": "connected" if exc.args[0] == 52 else "error"}


def _udp() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        query = bytes.fromhex("abcd01000001000000000000") + b"\x07example\x03com\x00\x00\x01\x00\x01"
        s.sendto(query, _addr(TARGETS["udp_dns_sendto"]))
        return "sent"


def _bash() -> dict[str, Any]:
    host, port = _addr(TARGETS["bash_dev_tcp"])
    proc = subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"], capture_output=True, text=True,
                          timeout=10)
    refused = "Permission denied" in proc.stderr
    return {"errno": errno.EACCES if refused else None, "rc": proc.returncode, "stderr": proc.stderr[-200:],
            "outcome": "connected" if proc.returncode == 0 else "error"}


def _python_s() -> dict[str, Any]:
    host, port = _addr(TARGETS["python_S_child"])
    code = ("import socket, json\ns = socket.socket()\ns.settimeout(3)\n"
            f"try:\n    s.connect(({host!r}, {port})); print(json.dumps(None))\n"
            "except OSError as e:\n    print(json.dumps(e.errno))")
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env={}, timeout=10)
    return {"errno": json.loads(proc.stdout or "null"), "stderr": proc.stderr[-200:]}


def _mp_connect(conn: Connection, endpoint: str) -> None:
    try:
        _tcp(endpoint)
        conn.send(None)
    except OSError as exc:
        conn.send(exc.errno)


def _mp_spawn() -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_mp_connect, args=(child, TARGETS["multiprocessing_spawn_child"]))
    proc.start()
    got = parent.recv() if parent.poll(20) else "timeout"
    proc.join(10)
    return {"errno": got, "start_method": ctx.get_start_method()}


def _fork() -> dict[str, Any]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            _tcp(TARGETS["forked_child"])
            os.write(write, b"0")
        except OSError as exc:
            os.write(write, str(exc.errno).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    got = int(os.read(read, 16))
    return {"errno": got or None}


def _tfo() -> str:
    with socket.socket() as s:
        s.settimeout(3)
        try:
            s.sendto(b"GET / HTTP/1.0\r\n\r\n", MSG_FASTOPEN, _addr(TARGETS["tcp_fast_open_sendto"]))
        except BlockingIOError:
            pass                    # EINPROGRESS: the SYN left
        return "sent"


NETWORK_CASES: dict[str, Callable[[], Any]] = {
    "tcp_v4": lambda: _tcp(TARGETS["tcp_v4"]),
    "tcp_v6": lambda: _tcp(TARGETS["tcp_v6"], socket.AF_INET6),
    "ctypes_libc_connect": _ctypes_connect,
    "uvloop_create_connection": _uvloop,
    "pycurl_fetch": _pycurl,
    "udp_dns_sendto": _udp,
    "bash_dev_tcp": _bash,
    "python_S_child": _python_s,
    "multiprocessing_spawn_child": _mp_spawn,
    "forked_child": _fork,
    "tcp_fast_open_sendto": _tfo,
    "mptcp_connect": lambda: _tcp(TARGETS["mptcp_connect"], proto=MPTCP),
    "allowed_loopback": lambda: _tcp(ALLOWED_TARGETS["allowed_loopback"]),
    "allowed_port_other_address": lambda: _tcp(ALLOWED_TARGETS["allowed_port_other_address"]),
}


# ---------------------------------------------------------------- local cases (kernel mode only)
def _unix() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s")
        with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
            server.bind(path)
            server.listen(1)
            client.connect(path)
            peer, _ = server.accept()
            client.sendall(b"ping")
            got = peer.recv(4)
            peer.close()
    a, b = socket.socketpair()
    a.sendall(b"pong")
    got += b.recv(4)
    a.close()
    b.close()
    return got.decode()


def _io_uring_setup() -> dict[str, Any]:
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)      # struct io_uring_params, zeroed
    fd = libc.syscall(425, 4, params)
    if fd >= 0:
        os.close(fd)
    return {"errno": ctypes.get_errno() if fd < 0 else None, "outcome": "created" if fd >= 0 else "error"}


def _second_apply_other() -> Any:
    return kernel.apply_kernel_mode([ALLOWED, 8001])


def _second_apply_same() -> Any:
    report = kernel.apply_kernel_mode([ALLOWED])
    return {"outcome": "accepted", "layers": report["layers"], "tcp_ports": report["tcp_ports"]}


def _narrowed_to_no_ports() -> Any:
    report = kernel.apply_kernel_mode([])          # a subset: stacks a second, narrower layer
    assert (report["layers"], report["tcp_ports"]) == (2, []), report
    return _tcp(ALLOWED_TARGETS["allowed_loopback"])


LOCAL_CASES: dict[str, Callable[[], Any]] = {
    "unix_sockets": _unix,
    "packet_socket": lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)).close(),
    "raw_socket": lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close(),
    "icmp_ping_socket": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP).close(),
    "sctp_socket": lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132).close(),
    "io_uring_setup": _io_uring_setup,
    "second_apply_other_ports": _second_apply_other,
    "second_apply_same_ports": _second_apply_same,
    "narrowed_to_no_ports": _narrowed_to_no_ports,     # last: the allowed port is shut after it
}


def attack(mode: str) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": mode}
    if mode == "kernel":
        out["report"] = kernel.apply_kernel_mode([ALLOWED])
        out["active"] = kernel.kernel_mode_active()
    for name, fn in NETWORK_CASES.items():
        out[name] = _result(fn)
    if mode == "kernel":
        for name, fn in LOCAL_CASES.items():
            out[name] = _result(fn)
    return out


def netns_run() -> dict[str, Any]:
    sys.path.insert(0, str(TESTS))
    from helpers.listeners import Listeners
    for argv in ADDRESSES:
        subprocess.run(argv, check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items()   # no Python guard, no proxy: only the kernel decides
           if not k.startswith(("MM_NETWORK_GUARD", "MM_GUARD")) and "proxy" not in k.lower()}
    out: dict[str, Any] = {"interfaces": socket.if_nameindex()}
    with Listeners([*TARGETS.values(), *ALLOWED_TARGETS.values()]) as witness:
        for mode in ("kernel", "control"):
            proc = subprocess.run([sys.executable, __file__, "--attack", mode], capture_output=True, text=True,
                                  env=env, timeout=60)
            out[mode] = _parse(proc)
            out[f"arrived_{mode}"] = witness.snapshot()
    return out


def _parse(proc: subprocess.CompletedProcess[str]) -> Any:
    lines = [line for line in proc.stdout.splitlines() if line.startswith("MM-RESULTS ")]
    if not lines:
        return {"failed": proc.returncode, "stdout": proc.stdout[-2000:], "stderr": proc.stderr[-2000:]}
    return json.loads(lines[-1][len("MM-RESULTS "):])


# ---------------------------------------------------------------- scenarios (fresh processes)
def _status() -> dict[str, str]:
    with open("/proc/self/status", encoding="ascii") as f:
        rows = [line.split(":", 1) for line in f]
    return {k: v.strip() for k, v in rows if k in ("NoNewPrivs", "Seccomp", "Seccomp_filters")}


def scenario_threads() -> dict[str, Any]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    target = f"tcp:127.0.0.1:{server.getsockname()[1]}"     # NOT in the allowed ports
    jobs: list[Callable[[], Any]] = []
    done: list[Any] = []
    wake, finished = threading.Event(), threading.Event()

    def old_thread() -> None:
        while wake.wait():
            wake.clear()
            done.append(_result(jobs.pop()))
            finished.set()

    def in_old_thread(fn: Callable[[], Any]) -> Any:
        jobs.append(fn)
        finished.clear()
        wake.set()
        finished.wait(10)
        return done.pop()

    worker = threading.Thread(target=old_thread, daemon=True)
    worker.start()
    out: dict[str, Any] = {"old_tid": worker.native_id}
    out["refused"] = _result(lambda: kernel.apply_kernel_mode([ALLOWED]))
    out["status_after_refusal"] = _status()
    out["report"] = kernel.apply_kernel_mode([ALLOWED], allow_threads=True)
    out["main_connect"] = _result(lambda: _tcp(target))
    out["old_thread_connect"] = in_old_thread(lambda: _tcp(target))
    out["old_thread_udp"] = in_old_thread(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close())
    new: list[Any] = []
    late = threading.Thread(target=lambda: new.append(_result(lambda: _tcp(target))))
    late.start()
    late.join(10)
    out["new_thread_connect"] = new[0]
    return out


def scenario_fake_abi() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, probe in {"abi_3": (3, 0), "enosys": (-1, errno.ENOSYS), "eopnotsupp": (-1, errno.EOPNOTSUPP)}.items():
        def fake_probe(result: tuple[int, int] = probe) -> tuple[int, int]:
            return result

        kernel._landlock_abi = fake_probe          # the test seam: the raw probe, faked
        out[name] = _result(lambda: kernel.apply_kernel_mode([ALLOWED]))
    out["status"] = _status()
    out["active"] = kernel.kernel_mode_active()
    out["udp_socket_still_allowed"] = _result(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close())
    return out


def scenario_opened_before() -> dict[str, Any]:
    """An io_uring instance and a UDP socket opened before activation."""
    libc = ctypes.CDLL(None, use_errno=True)
    ring = libc.syscall(425, 4, ctypes.create_string_buffer(120))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out: dict[str, Any] = {"ring_fd": ring, "udp_fd": udp.fileno()}
    out["with_ring"] = _result(lambda: kernel.apply_kernel_mode([ALLOWED]))
    out["status_after_refusal"] = _status()
    os.close(ring)
    out["report"] = kernel.apply_kernel_mode([ALLOWED])
    return out


SCENARIOS = {"threads": scenario_threads, "fake_abi": scenario_fake_abi, "opened_before": scenario_opened_before}


def main(argv: list[str]) -> int:
    if os.environ.get("MM_IN_PRIVATE_NETNS") != "1" or [n for _, n in socket.if_nameindex()] != ["lo"]:
        print("refusing to run outside the private network namespace", file=sys.stderr)
        return 2
    if argv[:1] == ["--netns-run"]:
        result = netns_run()
    elif argv[:1] == ["--attack"]:
        result = attack(argv[1])
    else:
        result = SCENARIOS[argv[1]]()
    print("MM-RESULTS " + json.dumps(result, default=repr), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
