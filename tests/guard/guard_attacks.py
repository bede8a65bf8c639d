"""Attack cases for the network guard, run as ONE child inside a private network namespace.

Never run this file directly on a host: ``tests/guard/test_guard_netns.py`` starts it through
``tests/helpers/netns.py``. It prints one JSON object: case name -> outcome, with what arrived at
the witness during that case. Targets are only documentation-reserved addresses (192.0.2.1,
198.51.100.7, 203.0.113.5, 2001:db8::1, on ``lo`` in the namespace) and example.com; the
red team's ways out are in guard_ways_out.py.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(1, str(HERE))

from attack_kit import (  # noqa: E402
    CASES,
    DNS_SEEN,
    LIMITS,
    ROOT,
    STATE,
    V4,
    V4B,
    V4C,
    V6,
    Witness,
    case,
    dns_recorder,
    limit,
    never_vsock,
    tcp,
)

from model_manager import guard  # noqa: E402
from model_manager.errors import NetworkAccessForbidden  # noqa: E402


# ---------------------------------------------------------------- stdlib
@case
def urllib_ip() -> None:
    import urllib.request
    urllib.request.urlopen(f"http://{V4}/", timeout=2)


@case
def urllib_name() -> None:
    import urllib.request
    urllib.request.urlopen("https://example.com/", timeout=2)


@case
def http_client_ip() -> None:
    http.client.HTTPConnection(V4B, 80, timeout=2).request("GET", "/")


@case
def asyncio_ip() -> None:
    asyncio.run(asyncio.wait_for(asyncio.open_connection(V4C, 443), 2))


@case
def asyncio_name() -> None:
    asyncio.run(asyncio.wait_for(asyncio.open_connection("example.com", 80), 2))


# ---------------------------------------------------------------- third-party clients
@case
def requests_ip() -> None:
    import requests
    requests.get(f"http://{V4}/", timeout=2)


@case
def requests_name() -> None:
    import requests
    requests.get("https://example.com/", timeout=2)


@case
def httpx_ip() -> None:
    import httpx
    httpx.get(f"http://{V4B}/", timeout=2)


@case
def httpx_name() -> None:
    import httpx
    httpx.get("https://example.com/", timeout=2)


@case
def httpx_async_ip() -> None:
    import httpx

    async def go() -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            await client.get(f"http://{V4C}/")
    asyncio.run(go())


@case
def urllib3_ip() -> None:
    import urllib3
    urllib3.PoolManager(retries=False).request("GET", f"http://{V4}/", timeout=2)


@case
def aiohttp_ip() -> None:
    import aiohttp

    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            await session.get(f"http://{V4B}/", timeout=aiohttp.ClientTimeout(total=2))
    asyncio.run(go())


@case
def geventhttpclient_ip() -> None:
    from geventhttpclient import HTTPClient
    HTTPClient(V4, 80, connection_timeout=2).get("/")


@case
def geventhttpclient_name() -> None:
    from geventhttpclient import HTTPClient
    HTTPClient("example.com", 80, connection_timeout=2).get("/")


@case
def tritonclient_http_ip() -> None:
    import tritonclient.http as triton_http
    triton_http.InferenceServerClient(f"{V4C}:8000", connection_timeout=2).is_server_ready()


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
    tcp(V6, 80, socket.AF_INET6)


@case
def ipv6_mapped_v4() -> None:
    tcp(f"::ffff:{V4}", 80, socket.AF_INET6)


@case
def connect_ex_ip() -> None:
    with socket.socket() as s:
        s.connect_ex((V4, 80))


@case
def udp_sendto() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", (V4B, 9))


@case
def udp_sendto_flags() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", 0, (V4B, 9))


@case
def udp_connect() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((V4C, 9))
        s.send(b"x")


@case
def udp_sendmsg() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.sendmsg([b"x"], [], 0, (V6, 9))


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
    socket.gethostbyaddr(V4)


@case
def dns_getnameinfo() -> None:
    socket.getnameinfo((V4B, 80), 0)


@case
def connect_by_name() -> None:
    socket.create_connection(("example.com", 80), timeout=2)


@case
def saved_reference() -> None:
    with socket.socket() as s:
        SAVED_CONNECT(s, (V4, 80))


@case
def c_level_method() -> None:
    with socket.socket() as s:
        _socket.socket.connect_ex(s, (V4, 80))


@case
def reload_socket() -> str:
    importlib.reload(socket)
    replaced = [p for p in guard.integrity_problems() if "replaced" in p]
    layer = "python layer back" if not replaced else str(replaced)
    try:
        tcp(V4, 80)
    except NetworkAccessForbidden as exc:
        raise NetworkAccessForbidden(f"{exc.message} [{layer}]") from exc
    return layer


@case
def forked_child() -> str:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            tcp(V4B, 80)
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
    subprocess.run(["curl", "-s", "-m", "2", f"http://{V4}/"], timeout=5)


@case
def wget_shell() -> None:
    subprocess.run(f"cd /tmp && wget -q -T 2 -O- http://{V4B}/ | head", shell=True, timeout=5)


@case
def os_system_curl() -> None:
    os.system(f"env LANG=C /usr/bin/curl -s -m 2 http://{V4C}/")


@case
def git_clone() -> None:
    subprocess.run(["git", "clone", "https://example.com/repo.git", tempfile.mkdtemp()], timeout=5)


@case
def harmless_subprocess() -> str:
    return subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True,
                          timeout=20).stdout.strip()


@limit
def spawned_child_plain() -> str:
    # A script file: no scanner reads it. The spawned interpreter is unguarded (documented).
    script = Path(tempfile.mkdtemp(), "child.py")
    script.write_text(f"import socket\nsocket.create_connection(('{V4}', 8080), timeout=2).close()\nprint('sent')\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=20)
    return (proc.stdout + proc.stderr).strip().splitlines()[-1]


@case
def spawned_child_startup_hook() -> str:
    from model_manager.guard.startup import install_startup_hook
    folder = Path(tempfile.mkdtemp())
    venv.create(folder, with_pip=False)
    site = next(folder.glob("lib/python3*/site-packages"))
    (site / "repo.pth").write_text(str(ROOT) + "\n")
    install_startup_hook(site)
    script = folder / "child.py"
    script.write_text("import socket, model_manager.guard as g\nprint(g.allowed())\n"
                      f"socket.create_connection(('{V4}', 80), timeout=1)\n")
    proc = subprocess.run([str(folder / "bin" / "python"), str(script)], capture_output=True, text=True, timeout=30)
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.stdout
    if "network_access_forbidden" in last:
        raise NetworkAccessForbidden(f"refused in the spawned child; it allowed {proc.stdout.strip()}")
    return last


# ---------------------------------------------------------------- gRPC
@case
def grpc_ip() -> None:
    import grpc
    grpc.insecure_channel(f"{V4}:8001")


@case
def grpc_dns_authority() -> None:
    import grpc
    grpc.insecure_channel(f"dns://{V4C}/localhost:8001")


@case
def grpc_aio_name() -> None:
    import grpc.aio
    grpc.aio.insecure_channel("example.com:443")


@case
def tritonclient_grpc_ip() -> None:
    import tritonclient.grpc as triton_grpc
    triton_grpc.InferenceServerClient(f"{V4C}:8001")


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
        urllib.request.urlopen(f"http://{V4}/", timeout=2)
    except Exception:
        pass
    new = guard.blocked_attempts()[before:]
    if new:
        raise NetworkAccessForbidden(f"recorded though swallowed: {new[0].host}:{new[0].port}")
    return "not recorded"


def _allowed(host: str, port: int, family: int = socket.AF_INET) -> str:
    try:
        tcp(host, port, family)
    except NetworkAccessForbidden:
        raise
    except OSError as exc:
        return f"guard allowed, kernel said {type(exc).__name__}"
    return "connected"


@case
def pinned_pair_allowed() -> str:
    return _allowed("tritonremote", 8000)  # /etc/hosts: 198.51.100.7; the guard lets it through


@case
def pinned_ip_allowed() -> str:
    return _allowed(V4B, 8000)


@case
def pinned_ip_other_port() -> None:
    tcp(V4B, 8001)


@case
def pinned_name_other_port() -> None:
    tcp("tritonremote", 8001)


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/v2/health/ready" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


SERVER = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
PORT = STATE["port"] = SERVER.server_address[1]


@case
def tritonclient_http_mapped_name() -> bool:
    import tritonclient.http as triton_http
    return bool(triton_http.InferenceServerClient(f"triton:{PORT}").is_server_ready())


@case
def mapped_name_other_port() -> None:
    tcp("triton", PORT + 1)


import guard_ways_out  # noqa: E402  (registers the red team's cases)


def run() -> dict[str, Any]:
    threading.Thread(target=SERVER.serve_forever, daemon=True).start()
    witness = Witness()
    STATE.update(guard_ways_out.before_activation())
    results: dict[str, Any] = {"_setup_arrived": witness.arrived()}
    guard.activate(allow=[f"triton:{PORT}", "tritonremote:8000"])
    STATE["allow"] = [f"triton:{PORT}", "tritonremote:8000"]
    sys.addaudithook(dns_recorder)
    sys.addaudithook(never_vsock)
    for name, fn in CASES.items():
        DNS_SEEN.clear()
        start = time.perf_counter()
        outcome: dict[str, Any] = {"limit": name in LIMITS}
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
        outcome["arrived"] = witness.arrived()
        results[name] = outcome
    results["_blocked"] = [[a.op, a.host, a.port, a.library, a.layer] for a in guard.blocked_attempts()]
    witness.close()
    return results


if __name__ == "__main__":
    if os.environ.get("MM_IN_PRIVATE_NETNS") != "1":
        sys.exit("refusing to run outside the private network namespace (use tests/helpers/netns.py)")
    print("\nMM-RESULTS " + json.dumps(run(), default=str))
