"""The guard's own defences, in this process: addresses read as C reads them, socket families,
names, refusals that close their socket and pickle whole, proxies, C stacks, and tampering.

Nothing here aims at a non-loopback target; a refused loopback DNS port (127.0.0.1:53) stands in
for a forbidden endpoint (refused before the kernel sees it). The same ways out run for real in
test_guard_netns.py.
"""

from __future__ import annotations

import collections
import gc
import json
import os
import pickle
import socket
import subprocess
import sys
import typing
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from model_manager import guard
from model_manager.errors import NetworkAccessForbidden
from model_manager.guard import addresses, argv, audit, checks, imports, opensockets, record, state

pytestmark = pytest.mark.mm_allow_network(reason="tests of the guard itself switch it on and off")


class _Lookalike(str):
    def __hash__(self) -> int:
        return hash("127.0.0.1")

    def __eq__(self, other: object) -> bool:
        return True


class _Port(int):
    def __hash__(self) -> int:
        return 1


class Address(typing.NamedTuple):
    host: str
    port: int


def test_addresses_are_read_as_c_reads_them() -> None:
    import numpy as np
    assert addresses.port_or_none(np.int64(53)) == 53 and type(addresses.port_or_none(np.uint16(53))) is int
    assert addresses.port_or_none(_Port(53)) == 53 and addresses.port_or_none("80") == 80
    assert addresses.port_or_none("http") is None and addresses.port_or_none(1.5) is None
    assert addresses.text(_Lookalike("192.0.2.1")) == "192.0.2.1" and type(addresses.text(_Lookalike("x"))) is str
    assert addresses.text(bytearray(b"192.0.2.1")) == "192.0.2.1"
    assert addresses.as_tuple(Address("192.0.2.1", 80)) == ("192.0.2.1", 80)
    assert type(addresses.as_tuple(collections.namedtuple("A", "h p")("x", 1))) is tuple
    assert addresses.as_tuple(["192.0.2.1", 80]) is None


def test_tuple_subclasses_and_numpy_ports_do_not_slip_through(active: None) -> None:
    import numpy as np
    guard.activate()
    for address in (Address("127.0.0.1", 53), ("127.0.0.1", np.int64(53)), (_Lookalike("127.0.0.1"), 53),
                    ("127.0.0.1", _Port(53)), collections.namedtuple("A", "h p")("::1", 53)):
        family = socket.AF_INET6 if "::" in str(address[0]) else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s, pytest.raises(NetworkAccessForbidden):
            s.sendto(b"q", address)  # never sent: refused before the kernel sees it
        with pytest.raises(NetworkAccessForbidden):  # the audit layer alone, as a saved C method would reach it
            audit.HANDLERS["socket.sendto"]((socket.socket(family, socket.SOCK_DGRAM), address))
    for layer in (socket.getaddrinfo, lambda host, port: audit.HANDLERS["socket.getaddrinfo"]((host, port))):
        with pytest.raises(NetworkAccessForbidden, match=r"example\.com"):
            layer(_Lookalike("example.com"), 80)  # a name dressed as 127.0.0.1: never resolved


@pytest.mark.parametrize(("family", "kind", "allowed"), [
    (socket.AF_UNIX, socket.SOCK_STREAM, True), (socket.AF_INET, socket.SOCK_DGRAM, True), (-1, -1, True),
    (socket.AF_INET6, socket.SOCK_STREAM | socket.SOCK_NONBLOCK, True), (socket.AF_NETLINK, socket.SOCK_RAW, True),
    (socket.AF_PACKET, socket.SOCK_RAW, False), (socket.AF_VSOCK, socket.SOCK_STREAM, False),
    (socket.AF_INET, socket.SOCK_RAW, False), (socket.AF_INET6, socket.SOCK_RAW, False), (40, 1, False),
    (31, 1, False), (socket.AF_CAN, 3, False), (socket.AF_ALG, 5, False),  # 31: AF_BLUETOOTH
])
def test_socket_families(family: int, kind: int, allowed: bool) -> None:
    assert checks.family_allowed(family, kind) is allowed


def test_vsock_is_refused_at_creation_without_a_socket_ever_made(active: None) -> None:
    guard.activate()
    # the audit hook's handler for socket.__new__, called with what C would pass: no constructor runs
    with pytest.raises(NetworkAccessForbidden, match="AF_VSOCK"):
        audit.HANDLERS["socket.__new__"]((None, socket.AF_VSOCK, socket.SOCK_STREAM, 0))
    with pytest.raises(NetworkAccessForbidden, match="AF_PACKET"):
        audit.HANDLERS["socket.__new__"]((None, socket.AF_PACKET, socket.SOCK_RAW, 0))
    assert "socket.__new__" in audit.HANDLERS  # what test_guard_netns.py's vsock cases go through


def test_networks_in_the_allow_list(active: None) -> None:
    guard.activate()
    with guard.allowing(["192.0.2.0/24:8000", "2001:db8::/32"]):
        assert guard.allowed() == ("192.0.2.0/24:8000", "2001:db8::/32")
        assert checks.endpoint_allowed("192.0.2.9", 8000) and checks.endpoint_allowed("::ffff:192.0.2.9", 8000)
        assert checks.endpoint_allowed("2001:db8::5", 1) and checks.endpoint_allowed("2001:db8:ffff::1", 443)
        for host, port in (("192.0.2.9", 8001), ("198.51.100.1", 8000), ("2001:db9::1", 1), ("127.0.0.1", 53)):
            assert not checks.endpoint_allowed(host, port), (host, port)
    assert not checks.endpoint_allowed("192.0.2.9", 8000) and guard.allowed() == ()


def test_localhost_is_resolved_once_and_must_be_loopback(active: None, triton_port: int) -> None:
    guard.activate()
    answer = socket.getaddrinfo("localhost", triton_port)
    assert answer and all(addresses.is_loopback(a[4][0]) and a[4][1] == triton_port for a in answer)
    assert {a[1] for a in answer} >= {socket.SOCK_STREAM, socket.SOCK_DGRAM}  # type 0: every kind, as glibc
    with socket.socket() as s:
        assert checks.check_address(s, ("localhost", triton_port), "connect", "python") == ("127.0.0.1", triton_port)
        s.connect(("localhost", triton_port))  # connects to the pinned address
    # what a hosts file or a DNS answer could say
    state.STATE.localhost = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", 0))]
    with socket.socket() as s, pytest.raises(NetworkAccessForbidden, match=r"localhost resolves to 192\.0\.2\.1"):
        s.connect(("localhost", triton_port))
    with pytest.raises(NetworkAccessForbidden, match="not loopback only"):
        socket.getaddrinfo("localhost", 80)


def test_refused_sockets_are_closed_before_the_refusal_is_raised(active: None) -> None:
    import http.client

    import requests
    guard.activate()
    attempts = [
        lambda: socket.create_connection(("127.0.0.1", 53), timeout=1),
        lambda: socket.socket().connect(("127.0.0.1", 53)),
        lambda: socket.socket(socket.AF_INET6).connect_ex(("::1", 53)),
        lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"q", ("127.0.0.1", 53)),
        lambda: http.client.HTTPConnection("127.0.0.1", 53, timeout=1).request("GET", "/"),
        lambda: urllib.request.urlopen("http://127.0.0.1:53/", timeout=1),
        lambda: requests.get("http://127.0.0.1:53/", timeout=1),
    ]
    gc.collect()
    gc.disable()  # what a cycle keeps alive must not be what closes the descriptor
    try:
        before = len(os.listdir("/proc/self/fd"))
        caught = []
        for i in range(50):
            with pytest.raises(NetworkAccessForbidden) as info:
                attempts[i % len(attempts)]()
            caught.append(info)  # keeps every traceback (and any socket it holds) alive
        after = len(os.listdir("/proc/self/fd"))
    finally:
        gc.enable()
    assert after == before, f"{after - before} descriptors left open by 50 refusals"


def test_the_refusal_keeps_host_port_and_library_through_pickling(active: None) -> None:
    guard.activate()
    with pytest.raises(NetworkAccessForbidden) as info:
        socket.socket().connect(("127.0.0.1", 53))
    again = pickle.loads(pickle.dumps(info.value))
    assert (again.host, again.port, again.library) == ("127.0.0.1", 53, info.value.library)
    assert again.library.startswith("test_guard_integrity") and str(again) == str(info.value)


def test_proxy_variables_are_cleared_and_put_back(active: None, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("https_proxy", "HTTPS_PROXY", "Http_Proxy", "ALL_PROXY", "grpc_proxy", "no_proxy", "NO_GRPC_PROXY")
    for name in names:
        monkeypatch.setenv(name, "http://127.0.0.1:3128")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": "http://127.0.0.1:3128"}))
    urllib.request.install_opener(opener)  # what urlopen() caches with the proxies of its first call
    guard.activate()
    assert set(guard.cleared_proxies()) == set(names)
    assert not [k for k in os.environ if k.lower().endswith("_proxy")]
    assert urllib.request._opener is None  # type: ignore[attr-defined]
    assert guard.integrity_problems() == []
    os.environ["HTTPS_PROXY"] = "http://127.0.0.1:3128"
    assert guard.integrity_problems() == ["proxy variable HTTPS_PROXY is set again"]
    guard.deactivate()
    assert all(os.environ[name] == "http://127.0.0.1:3128" for name in names)
    assert guard.cleared_proxies() == ()


def test_c_network_stacks(tmp_path: Path) -> None:
    script = tmp_path / "stacks.py"
    script.write_text(
        "import json, uvloop\n"
        "from model_manager import guard\n"
        "guard.activate()\n"
        "out = {'unguarded': guard.unguarded_stacks(), 'problems': guard.integrity_problems()}\n"
        "try:\n    import pycurl\nexcept ImportError as exc:\n"
        "    out['pycurl'] = [type(exc).__name__, exc.code, exc.name,\n"
        "                     isinstance(exc, guard.record.NetworkAccessForbidden)]\n"
        "import aiohttp.resolver\n"
        "out['aiohttp'] = [aiohttp.resolver.aiodns is None, aiohttp.resolver.DefaultResolver.__name__]\n"
        "out['refused'] = sorted({a.module for a in guard.refused_imports()})\n"
        "out['refusals'] = guard.refusal_count()\n"
        "print(json.dumps(out))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MM_NETWORK_GUARD", "MM_GUARD"))}
    out = json.loads(subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                                    check=True, cwd=Path(__file__).parents[2]).stdout)
    assert out["unguarded"] == ["uvloop (uvloop: libuv's event loop connects, sends and resolves names in C)"]
    assert out["problems"] == [f"{out['unguarded'][0]} is loaded: a network stack in C the guard cannot see"]
    assert out["pycurl"] == ["NetworkStackRefused", "network_access_forbidden", "pycurl", True]
    assert out["aiohttp"] == [True, "ThreadedResolver"]  # aiohttp probed for aiodns and fell back
    assert out["refused"] == ["aiodns", "pycurl"] and out["refusals"] == 0  # not counted as network refusals


def test_sockets_open_before_activation_are_read_from_proc() -> None:
    assert opensockets._address("0100007F:1F90") == ("127.0.0.1", 8080)
    assert opensockets._address("00000000000000000000000001000000:0050") == ("::1", 80)
    assert opensockets._address("0000000000000000FFFF00000100007F:0050") == ("127.0.0.1", 80)
    assert opensockets._address("010200C0:0050") == ("192.0.2.1", 80)
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client.connect(server.getsockname())
        assert opensockets.scan() == []  # loopback is never a problem


@pytest.mark.parametrize(("owner", "name", "problem"), [
    (guard, "check_endpoint", "model_manager.guard.check_endpoint was replaced"),
    (checks, "check_endpoint", "model_manager.guard.checks.check_endpoint was replaced"),
    (checks, "endpoint_allowed", "model_manager.guard.checks.endpoint_allowed was replaced"),
    (checks, "DNS_PORTS", "model_manager.guard.checks.DNS_PORTS was replaced"),
    (record, "refuse", "model_manager.guard.record.refuse was replaced"),
    (argv, "scan_argv", "model_manager.guard.argv.scan_argv was replaced"),
    (addresses, "port_or_none", "model_manager.guard.addresses.port_or_none was replaced"),
])
def test_a_replaced_hot_path_function_is_reported_and_repaired(active: None, owner: Any, name: str,
                                                               problem: str) -> None:
    guard.activate()
    original = getattr(owner, name)
    setattr(owner, name, lambda *a, **k: True)
    try:
        assert problem in guard.integrity_problems()
        if name == "check_endpoint":  # the red team's tampering: nothing calls it through the attribute
            with pytest.raises(NetworkAccessForbidden):
                socket.socket().connect(("127.0.0.1", 53))
    finally:
        guard.activate()  # repairs
    assert getattr(owner, name) is original and guard.integrity_problems() == []


def test_switches_hooks_and_entry_points_replaced_are_reported(active: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import _posixsubprocess
    guard.activate()
    state.STATE.on = False  # the private switch: the audit hook and the wrappers stop checking
    assert guard.integrity_problems() == ["the guard's switch was turned off behind its back"]
    guard.activate()
    table = next(c.cell_contents for c in audit.HOOK.__closure__ or () if isinstance(c.cell_contents, dict))
    table["socket.connect"] = lambda args: None
    assert "the audit hook's event handlers were replaced" in guard.integrity_problems()
    guard.activate()
    monkeypatch.setattr(sys, "audit", lambda *a: None)
    assert "sys.audit was replaced (subprocess.Popen's audit event no longer fires)" in guard.integrity_problems()
    guard.activate()
    assert sys.audit.__self__ is sys  # type: ignore[attr-defined]
    fork_exec = _posixsubprocess.fork_exec
    _posixsubprocess.fork_exec = state.STATE.saved[(_posixsubprocess, "fork_exec")]
    assert "_posixsubprocess.fork_exec was replaced" in guard.integrity_problems()
    guard.activate()
    assert _posixsubprocess.fork_exec is not fork_exec or guard.integrity_problems() == []
    sys.meta_path.remove(imports.FINDER)
    assert "the guard's import hook was removed from sys.meta_path" in guard.integrity_problems()
    guard.activate()
    assert guard.integrity_problems() == []
    guard.deactivate()
    assert guard.integrity_problems() == ["the guard is off"]
