"""Attack cases for the network guard, run as ONE child inside a private network namespace.

Never run this file directly on a host: ``tests/test_guard_netns.py`` starts it through
``tests/netns.py``. It prints one JSON object: case name -> outcome. Targets are only
documentation-reserved (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32,
example.com) or loopback.
"""

from __future__ import annotations

import _socket
import asyncio
import http.client
import http.server
import importlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import venv
from collections.abc import Callable
from pathlib import Path
from typing import Any

SAVED_CONNECT = socket.socket.connect  # taken before the guard exists: the audit hook must catch it

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from model_manager import guard  # noqa: E402
from model_manager.errors import NetworkAccessForbidden  # noqa: E402

CASES: dict[str, Callable[[], Any]] = {}
DNS_SEEN: list[tuple[str, Any]] = []


def case(fn: Callable[[], Any]) -> Callable[[], Any]:
    CASES[fn.__name__] = fn
    return fn


def _dns_recorder(event: str, args: tuple[Any, ...]) -> None:
    # Installed after the guard's hook: it sees only what the guard let through to C.
    if event in ("socket.getaddrinfo", "socket.gethostbyname") and args[0] not in (None, "", b""):
        host = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        if not host.replace(".", "").isdigit() and ":" not in host and host != "localhost":
            DNS_SEEN.append((event, host))


def _tcp(host: str, port: int, family: int = socket.AF_INET) -> None:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect((host, port))


# ---------------------------------------------------------------- stdlib
@case
def urllib_ip() -> None:
    import urllib.request
    urllib.request.urlopen("http://192.0.2.1/", timeout=2)


@case
def urllib_name() -> None:
    import urllib.request
    urllib.request.urlopen("https://example.com/", timeout=2)


@case
def http_client_ip() -> None:
    http.client.HTTPConnection("198.51.100.7", 80, timeout=2).request("GET", "/")


@case
def asyncio_ip() -> None:
    asyncio.run(asyncio.wait_for(asyncio.open_connection("203.0.113.9", 443), 2))


@case
def asyncio_name() -> None:
    asyncio.run(asyncio.wait_for(asyncio.open_connection("example.com", 80), 2))


# ---------------------------------------------------------------- third-party clients
@case
def requests_ip() -> None:
    import requests
    requests.get("http://192.0.2.1/", timeout=2)


@case
def requests_name() -> None:
    import requests
    requests.get("https://example.com/", timeout=2)


@case
def httpx_ip() -> None:
    import httpx
    httpx.get("http://198.51.100.1/", timeout=2)


@case
def httpx_name() -> None:
    import httpx
    httpx.get("https://example.com/", timeout=2)


@case
def httpx_async_ip() -> None:
    import httpx

    async def go() -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            await client.get("http://203.0.113.4/")
    asyncio.run(go())


@case
def urllib3_ip() -> None:
    import urllib3
    urllib3.PoolManager(retries=False).request("GET", "http://192.0.2.2/", timeout=2)


@case
def aiohttp_ip() -> None:
    import aiohttp

    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            await session.get("http://198.51.100.3/", timeout=aiohttp.ClientTimeout(total=2))
    asyncio.run(go())


@case
def geventhttpclient_ip() -> None:
    from geventhttpclient import HTTPClient
    HTTPClient("192.0.2.5", 80, connection_timeout=2).get("/")


@case
def geventhttpclient_name() -> None:
    from geventhttpclient import HTTPClient
    HTTPClient("example.com", 80, connection_timeout=2).get("/")


@case
def tritonclient_http_ip() -> None:
    import tritonclient.http as triton_http
    triton_http.InferenceServerClient("203.0.113.8:8000", connection_timeout=2).is_server_ready()


@case
def hf_offline_switch() -> str:
    import huggingface_hub
    try:
        huggingface_hub.hf_hub_download("gpt2", "config.json", cache_dir=tempfile.mkdtemp())
    except NetworkAccessForbidden:
        raise
    except Exception as exc:
        return f"offline:{type(exc).__name__}"
    return "downloaded?!"


def _hf_without_switch(call: Callable[[], Any]) -> None:
    from huggingface_hub import constants
    constants.HF_HUB_OFFLINE = False  # a library that ignores the switch: the socket layer must stop it
    try:
        call()
    finally:
        constants.HF_HUB_OFFLINE = True


@case
def hf_hub_download_socket_layer() -> None:
    import huggingface_hub
    _hf_without_switch(lambda: huggingface_hub.hf_hub_download("gpt2", "config.json",
                                                               cache_dir=tempfile.mkdtemp()))


@case
def snapshot_download_socket_layer() -> None:
    import huggingface_hub
    _hf_without_switch(lambda: huggingface_hub.snapshot_download("gpt2", cache_dir=tempfile.mkdtemp()))


# ---------------------------------------------------------------- raw sockets and DNS
@case
def ipv6_connect() -> None:
    _tcp("2001:db8::1", 80, socket.AF_INET6)


@case
def ipv6_mapped_v4() -> None:
    _tcp("::ffff:192.0.2.1", 80, socket.AF_INET6)


@case
def connect_ex_ip() -> None:
    with socket.socket() as s:
        s.connect_ex(("192.0.2.1", 80))


@case
def udp_sendto() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", ("198.51.100.1", 9))


@case
def udp_sendto_flags() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", 0, ("198.51.100.1", 9))


@case
def udp_connect() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("203.0.113.1", 9))


@case
def udp_sendmsg() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.sendmsg([b"x"], [], 0, ("2001:db8::5", 9))


@case
def dns_to_loopback_stub() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", ("127.0.0.53", 53))


@case
def dns_getaddrinfo() -> None:
    socket.getaddrinfo("example.com", 443)


@case
def dns_gethostbyname() -> None:
    socket.gethostbyname("example.com")


@case
def dns_gethostbyname_ex() -> None:
    socket.gethostbyname_ex("www.example.com")


@case
def dns_reverse() -> None:
    socket.gethostbyaddr("192.0.2.1")


@case
def dns_getnameinfo() -> None:
    socket.getnameinfo(("198.51.100.2", 80), 0)


@case
def connect_by_name() -> None:
    socket.create_connection(("example.com", 80), timeout=2)


@case
def saved_reference() -> None:
    with socket.socket() as s:
        SAVED_CONNECT(s, ("192.0.2.1", 80))


@case
def c_level_method() -> None:
    with socket.socket() as s:
        _socket.socket.connect_ex(s, ("192.0.2.1", 80))


@case
def reload_socket() -> str:
    importlib.reload(socket)
    layer = "python layer back" if not guard.integrity_problems() else str(guard.integrity_problems())
    try:
        _tcp("192.0.2.9", 80)
    except NetworkAccessForbidden as exc:
        raise NetworkAccessForbidden(f"{exc.message} [{layer}]") from exc
    return layer


@case
def forked_child() -> str:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            _tcp("198.51.100.9", 80)
            verdict = b"connected?!"
        except NetworkAccessForbidden as exc:
            verdict = exc.code.encode()
        except BaseException as exc:
            verdict = repr(exc).encode()
        os.write(write, verdict)
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    verdict = os.read(read, 200).decode()
    os.close(read)
    if verdict == "network_access_forbidden":
        raise NetworkAccessForbidden("refused in the forked child")
    return verdict


# ---------------------------------------------------------------- child processes
@case
def curl_subprocess() -> None:
    subprocess.run(["curl", "-s", "http://192.0.2.1/"], timeout=5)


@case
def wget_shell() -> None:
    subprocess.run("cd /tmp && wget -q -O- http://198.51.100.1/ | head", shell=True, timeout=5)


@case
def os_system_curl() -> None:
    os.system("env LANG=C /usr/bin/curl http://203.0.113.1/")


@case
def git_clone() -> None:
    subprocess.run(["git", "clone", "https://example.com/repo.git", tempfile.mkdtemp()], timeout=5)


@case
def harmless_subprocess() -> str:
    return subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True,
                          timeout=20).stdout.strip()


@case
def spawned_child_plain() -> str:
    code = "import socket; s = socket.socket(); s.settimeout(1); s.connect(('192.0.2.1', 80))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    return proc.stderr.strip().splitlines()[-1]


@case
def spawned_child_startup_hook() -> str:
    from model_manager.guard.support import install_startup_hook
    folder = Path(tempfile.mkdtemp())
    venv.create(folder, with_pip=False)
    site = next(folder.glob("lib/python3*/site-packages"))
    (site / "repo.pth").write_text(str(ROOT) + "\n")
    install_startup_hook(site)
    code = ("import socket, model_manager.guard as g; print(g.allowed());"
            "socket.create_connection(('192.0.2.1', 80), timeout=1)")
    proc = subprocess.run([str(folder / "bin" / "python"), "-c", code], capture_output=True,
                          text=True, timeout=30)
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.stdout
    if "network_access_forbidden" in last:
        raise NetworkAccessForbidden(f"refused in the spawned child; it allowed {proc.stdout.strip()}")
    return last


# ---------------------------------------------------------------- gRPC
@case
def grpc_ip() -> None:
    import grpc
    grpc.insecure_channel("192.0.2.1:8001")


@case
def grpc_dns_authority() -> None:
    import grpc
    grpc.insecure_channel("dns://192.0.2.53/localhost:8001")


@case
def grpc_aio_name() -> None:
    import grpc.aio
    grpc.aio.insecure_channel("example.com:443")


@case
def tritonclient_grpc_ip() -> None:
    import tritonclient.grpc as triton_grpc
    triton_grpc.InferenceServerClient("203.0.113.5:8001")


@case
def grpc_loopback_allowed() -> str:
    import grpc
    grpc.insecure_channel("localhost:8001").close()
    grpc.insecure_channel("unix:/tmp/triton.sock").close()
    return "channels made"


# ---------------------------------------------------------------- swallowed refusals, allowed pairs
@case
def swallowed_refusal() -> str:
    before = len(guard.blocked_attempts())
    try:  # what sentence-transformers does with every exception
        import urllib.request
        urllib.request.urlopen("http://192.0.2.77/", timeout=2)
    except Exception:
        pass
    new = guard.blocked_attempts()[before:]
    if new:
        raise NetworkAccessForbidden(f"recorded though swallowed: {new[0].host}:{new[0].port}")
    return "not recorded"


@case
def pinned_pair_allowed() -> str:
    try:
        _tcp("tritonremote", 8000)  # /etc/hosts: 192.0.2.50; the guard lets it through
    except NetworkAccessForbidden:
        raise
    except OSError as exc:
        return f"guard allowed, kernel said {type(exc).__name__}"
    return "connected"


@case
def pinned_ip_allowed() -> str:
    try:
        _tcp("192.0.2.50", 8000)
    except NetworkAccessForbidden:
        raise
    except OSError as exc:
        return f"guard allowed, kernel said {type(exc).__name__}"
    return "connected"


@case
def pinned_ip_other_port() -> None:
    _tcp("192.0.2.50", 8001)


@case
def pinned_name_other_port() -> None:
    _tcp("tritonremote", 8001)


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/v2/health/ready" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


SERVER = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
PORT = SERVER.server_address[1]


@case
def tritonclient_http_mapped_name() -> bool:
    import tritonclient.http as triton_http
    return bool(triton_http.InferenceServerClient(f"triton:{PORT}").is_server_ready())


@case
def mapped_name_other_port() -> None:
    _tcp("triton", PORT + 1)


def run() -> dict[str, Any]:
    threading.Thread(target=SERVER.serve_forever, daemon=True).start()
    guard.activate(allow=[f"triton:{PORT}", "tritonremote:8000"])
    sys.addaudithook(_dns_recorder)
    results: dict[str, Any] = {}
    for name, fn in CASES.items():
        DNS_SEEN.clear()
        start = time.perf_counter()
        outcome: dict[str, Any] = {}
        try:
            outcome["value"] = fn()
            outcome["outcome"] = "allowed"
        except BaseException as exc:
            refused = guard.find_refusal(exc)
            outcome["outcome"] = "refused" if refused is not None else "error"
            outcome["error"] = f"{type(exc).__name__}: {exc}"[:600]
            if refused is not None:
                outcome["code"] = refused.code
                outcome["direct"] = refused is exc
        outcome["seconds"] = round(time.perf_counter() - start, 3)
        outcome["dns"] = list(DNS_SEEN)
        results[name] = outcome
    results["_blocked"] = [[a.op, a.host, a.port, a.library, a.layer] for a in guard.blocked_attempts()]
    return results


if __name__ == "__main__":
    if os.environ.get("MM_IN_PRIVATE_NETNS") != "1":
        sys.exit("refusing to run outside the private network namespace (use tests/netns.py)")
    print("\nMM-RESULTS " + json.dumps(run()))
