"""The guard in this process: parsing, switches, loopback and unix sockets, and its API.

Nothing here aims at a non-loopback target (those cases run in tests/test_guard_netns.py).
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

import pytest

from model_manager import guard
from model_manager.errors import ModelManagerError, NetworkAccessForbidden
from model_manager.guard import children, grpc_targets, startup

# These tests switch the guard on and off themselves; under pytest_mm that needs the marker.
pytestmark = pytest.mark.mm_allow_network(reason="tests of the guard itself switch it on and off")


@pytest.mark.parametrize(("entry", "expected"), [
    ("localhost:8000", ("localhost", 8000)), ("Triton:8000", ("triton", 8000)),
    ("http://triton:8000/", ("triton", 8000)), ("[::1]:8001", ("::1", 8001)),
    ("127.0.0.1:1", ("127.0.0.1", 1)), ("my-triton_1.svc:65535", ("my-triton_1.svc", 65535)),
    ("192.0.2.0/24", ("192.0.2.0/24", None)), ("192.0.2.0/24:8000", ("192.0.2.0/24", 8000)),
    ("2001:db8::/32", ("2001:db8::/32", None)), ("[2001:db8::/32]:443", ("2001:db8::/32", 443)),
    ("192.0.2.7/32", ("192.0.2.7/32", None)),
])
def test_allow_entries_parse(entry: str, expected: tuple[str, int]) -> None:
    assert guard.parse_allow(entry) == expected


@pytest.mark.parametrize(("entry", "why"), [
    ("", "empty"), (" triton:8000", "whitespace"), ("triton", "no port"), ("triton:", "port ''"),
    (":8000", "no host"), ("triton:0", "port '0'"), ("triton:65536", "port '65536'"),
    ("triton:http", "port 'http'"), ("::1:8000", "brackets"), ("[triton]:80", "brackets"),
    ("http://triton:8000/v2", "no path"), ("user@triton:80", "no path, user"), ("*:8000", "wildcard"),
    ("0.0.0.0:8000", "unspecified"), ("a,b:80", "list"), ("bad!host:80", "not a valid hostname"),
    (8000, "got int"), (None, "got NoneType"), ("0.0.0.0/0", "must name servers"),
    ("192.0.2.1/24", "not a network"), ("[2001:db8::/32]", "needs a port"), ("192.0.2.0/24:0", "port '0'"),
    ("224.0.0.0/4", "must name servers"),
])
def test_malformed_allow_entries_are_clear_errors(active: None, entry: Any, why: str) -> None:
    with pytest.raises(ModelManagerError) as info:
        guard.activate(["localhost:9000", entry])
    assert info.value.code == "invalid_model_spec"
    assert why in str(info.value) and "host:port" in str(info.value) and "192.0.2.0/24" in str(info.value)
    assert not guard.is_active() and guard.allowed() == ()  # all or nothing


def test_activate_is_idempotent_and_allow_lists_add_up(active: None) -> None:
    guard.activate(["triton:8000"])
    guard.activate(["triton:8000"])
    guard.activate("localhost:8001")
    assert guard.is_active() and guard.allowed() == ("localhost:8001", "triton:8000")
    assert socket.getaddrinfo is guard.state.STATE.installed[(socket, "getaddrinfo")]
    assert guard.integrity_problems() == []
    assert os.environ["MM_NETWORK_GUARD"] == "1"
    assert os.environ["MM_NETWORK_GUARD_ALLOW"] == "localhost:8001,triton:8000"


def test_deactivate_restores_everything(active: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    connect, gai = socket.socket.__dict__.get("connect"), socket.getaddrinfo
    guard.activate(["triton:8000"])
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_HUB_DISABLE_XET"] == "1"
    guard.deactivate()
    assert socket.socket.__dict__.get("connect") is connect and socket.getaddrinfo is gai
    assert os.environ["HF_HUB_OFFLINE"] == "0" and "MM_NETWORK_GUARD" not in os.environ
    assert guard.integrity_problems() == ["the guard is off"]


def test_already_imported_huggingface_constants_are_switched(active: None) -> None:
    from huggingface_hub import constants
    before = constants.HF_HUB_OFFLINE
    guard.activate()
    assert constants.HF_HUB_OFFLINE is True and constants.is_offline_mode()
    guard.deactivate()
    assert before == constants.HF_HUB_OFFLINE


def test_tritonclient_http_reaches_a_mapped_loopback_endpoint(active: None, triton_port: int) -> None:
    import tritonclient.http as triton_http
    guard.activate([f"localhost:{triton_port}"])
    client = triton_http.InferenceServerClient(f"localhost:{triton_port}")
    assert client.is_server_ready() and client.is_server_live()
    client.close()
    assert guard.blocked_attempts() == () or all(a.host != "localhost" for a in guard.blocked_attempts())


def test_loopback_http_and_unix_sockets_stay_allowed(active: None, triton_port: int, tmp_path: Any) -> None:
    import urllib.request

    import httpx
    import requests
    guard.activate()
    before = len(guard.blocked_attempts())
    url = f"http://127.0.0.1:{triton_port}/v2/health/ready"
    assert urllib.request.urlopen(url, timeout=5).status == 200
    assert requests.get(url, timeout=5).status_code == 200
    assert httpx.get(url.replace("127.0.0.1", "localhost"), timeout=5).status_code == 200
    with socket.socket(socket.AF_INET6) as s:
        assert s.connect_ex(("::1", 1)) != 0  # refused by the kernel, not by the guard
    path = str(tmp_path / "sock")
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(path)
        server.listen()
        client.connect(path)
    a, b = socket.socketpair()
    a.sendall(b"x")
    assert b.recv(1) == b"x"
    a.close(), b.close()
    assert len(guard.blocked_attempts()) == before


def test_loopback_dns_port_is_not_a_way_out(active: None) -> None:
    guard.activate()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(NetworkAccessForbidden):
        s.sendto(b"q", ("127.0.0.53", 53))  # never sent: refused before the kernel sees it
    attempt = guard.blocked_attempts()[-1]
    assert (attempt.host, attempt.port, attempt.layer) == ("127.0.0.53", 53, "python")
    assert attempt.library.startswith("test_guard") or "test_guard" in attempt.chain


def test_refusal_is_not_an_oserror_and_pickles(active: None) -> None:
    import pickle
    guard.activate()
    with pytest.raises(NetworkAccessForbidden) as info:
        socket.socket().connect(("127.0.0.1", 53))
    assert not isinstance(info.value, OSError) and isinstance(info.value, ModelManagerError)
    again = pickle.loads(pickle.dumps(info.value))
    assert again.code == "network_access_forbidden" and "127.0.0.1:53" in str(again)


def test_context_labels_refusals(active: None) -> None:
    guard.activate()
    guard.set_context("tests/x.py::test_y")
    try:
        with pytest.raises(NetworkAccessForbidden, match=r"in test tests/x.py::test_y"):
            socket.getaddrinfo("127.0.0.1", 53) and socket.socket().connect(("::1", 53))
    finally:
        guard.set_context(None)
    assert guard.blocked_attempts()[-1].context == "tests/x.py::test_y"


def test_allowing_and_suspended_restore_state(active: None) -> None:
    guard.activate(["triton:8000"])
    with guard.allowing(["other:9000"]):
        assert guard.allowed() == ("other:9000", "triton:8000")
    assert guard.allowed() == ("triton:8000",)
    with guard.suspended():
        assert not guard.is_active()
    assert guard.is_active() and guard.allowed() == ("triton:8000",)


def test_replaced_wrappers_are_reported_and_repaired(active: None) -> None:
    guard.activate()
    socket.socket.connect = socket.socket.__mro__[1].connect  # type: ignore[method-assign]
    assert guard.integrity_problems() == ["socket.socket.connect was replaced"]
    guard.activate()
    assert guard.integrity_problems() == []


@pytest.mark.parametrize(("event", "args", "program"), [
    ("subprocess.Popen", ("curl", ["curl", "-s", "http://x"], None, None), "curl"),
    ("subprocess.Popen", ("/bin/sh", ["/bin/sh", "-c", "cd /tmp && wget -q x | tar x"], None, None), "wget"),
    ("subprocess.Popen", (b"/usr/bin/env", [b"/usr/bin/env", b"A=1", b"aria2c", b"x"], None, None), "aria2c"),
    ("subprocess.Popen", ("git", ["git", "-C", "/r", "fetch"], None, None), "git fetch"),
    ("subprocess.Popen", (sys.executable, [sys.executable, "-m", "pip", "install", "x"], None, None), "pip"),
    ("os.system", ("echo hi; $(curl x)",), "curl"),
    ("os.exec", ("/usr/bin/scp", ["scp", "a", "b:c"], None), "scp"),
    ("os.posix_spawn", ("/usr/bin/timeout", ["timeout", "5", "wget", "x"], None), "wget"),
    ("os.spawn", (0, "/usr/bin/rsync", ["rsync", "a", "b"], None), "rsync"),
    ("subprocess.Popen", ("git", ["git", "status"], None, None), None),
    ("subprocess.Popen", ("ls", ["ls", "-l", "curl"], None, None), None),
    ("os.system", ("grep wget notes.txt",), None),
    ("subprocess.Popen", (None, "true", None, None), None),
])
def test_download_programs_are_recognised(event: str, args: tuple[Any, ...], program: str | None) -> None:
    finding = children.scan_event(event, args)
    assert (finding.program if finding is not None else None) == program


@pytest.mark.parametrize(("target", "pairs"), [
    ("localhost:8001", [("localhost", 8001)]), ("[::1]:8001", [("::1", 8001)]),
    ("dns:///triton:8001", [("triton", 8001)]), ("dns://10.0.0.2/triton:8001", [("10.0.0.2", 53), ("triton", 8001)]),
    ("ipv4:127.0.0.1:1,127.0.0.2:2", [("127.0.0.1", 1), ("127.0.0.2", 2)]), ("triton", [("triton", 443)]),
    ("unix:/tmp/s", []), ("unix-abstract:x", []),
])
def test_grpc_targets_parse(target: str, pairs: list[tuple[str, int]]) -> None:
    assert grpc_targets.grpc_endpoints(target) == pairs


def test_grpc_channels_are_checked_at_the_class_and_loopback_is_allowed(active: None) -> None:
    import grpc
    import grpc._channel
    saved = grpc.insecure_channel  # a factory taken before activation
    guard.activate(["triton:8001"])
    assert guard.integrity_problems() == []
    grpc.insecure_channel("127.0.0.1:8001").close()
    with pytest.raises(NetworkAccessForbidden, match=r"127\.0\.0\.1:53"):
        saved("127.0.0.1:53")  # a loopback DNS port: refused before the C core sees it
    with pytest.raises(NetworkAccessForbidden, match=r"grpc\.http_proxy"):
        grpc.insecure_channel("127.0.0.1:8001", options=[("grpc.http_proxy", "http://127.0.0.1:53")])
    for target in ("vsock:2:8001", "vsock:3:1234", "xds:///triton", "google-c2p:///x"):
        with pytest.raises(NetworkAccessForbidden, match="target"):
            guard.check_grpc_target(target)  # checked only: no channel is made for these
    guard.deactivate()
    assert "__init__" not in [k[1] for k in guard.state.STATE.installed]


def test_startup_hook_line(tmp_path: Any) -> None:
    path = startup.install_startup_hook(tmp_path)
    assert path.read_text() == startup.PTH_LINE  # the line installed environments already hold
    assert path.read_text() == ("import os; os.environ.get('MM_NETWORK_GUARD') == '1' and "
                                "__import__('model_manager.guard').guard.activate_from_env()\n")
    assert startup.main(["--install-startup-hook", "--site-dir", str(tmp_path)]) == 0
