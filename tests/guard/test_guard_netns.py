"""Every attack on the guard, for real, inside a private network namespace with only loopback.

One child process (tests/guard/guard_attacks.py, cases also in guard_ways_out.py) runs all cases
and reports JSON. The documentation addresses are put on ``lo`` there and a witness process
(guard_witness.py) listens on them, answers DNS and runs a forward proxy on loopback, so an
escape is counted, not merely an error: a case passes only if the guard refused it AND nothing
arrived.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from attack_kit import ADDRESSES, HOSTS, NAMESERVER, PROXY_ENV
from helpers.netns import NetnsUnavailable, run_in_netns

HERE = Path(__file__).resolve().parent

REFUSED = [
    # stdlib, third-party clients, Hugging Face with its offline switch forced off
    "urllib_ip", "urllib_name", "http_client_ip", "asyncio_ip", "asyncio_name",
    "requests_ip", "requests_name", "httpx_ip", "httpx_name", "httpx_async_ip", "urllib3_ip",
    "aiohttp_ip", "geventhttpclient_ip", "geventhttpclient_name", "tritonclient_http_ip",
    "hf_hub_download_socket_layer", "snapshot_download_socket_layer",
    # raw sockets and DNS
    "ipv6_connect", "ipv6_mapped_v4", "connect_ex_ip", "udp_sendto", "udp_sendto_flags", "udp_connect",
    "udp_sendmsg", "dns_to_loopback_stub", "dns_getaddrinfo", "dns_gethostbyname", "dns_gethostbyname_ex",
    "dns_reverse", "dns_getnameinfo", "connect_by_name",
    # bypasses
    "saved_reference", "c_level_method", "reload_socket", "forked_child",
    "curl_subprocess", "wget_shell", "os_system_curl", "git_clone", "spawned_child_startup_hook",
    "grpc_ip", "grpc_dns_authority", "grpc_aio_name", "tritonclient_grpc_ip",
    "swallowed_refusal", "pinned_ip_other_port", "pinned_name_other_port", "mapped_name_other_port",
]
#: the red team's ways out (guard_ways_out.py), by class
WAYS_OUT = {
    "1 address and port types": ["namedtuple_address", "namedtuple_c_level", "namedtuple_sendto",
                                 "numpy_port_to_dns", "str_subclass_host", "int_subclass_port"],
    "2 proxies": ["proxy_forward_on_loopback", "grpc_proxy_option"],
    "3 network stacks in C": ["uvloop_connect", "uvloop_dns", "aiodns_query", "aiohttp_name", "pycurl_fetch"],
    "4 socket families": ["af_packet_frame", "af_packet_c_level", "inet_raw_socket", "vsock_socket",
                          "vsock_c_level"],
    "5 names": ["localhost_points_elsewhere", "localhost_points_elsewhere_getaddrinfo",
                "localhost_points_elsewhere_grpc", "ipv6_rebinding"],
    "6 before activation": ["grpc_saved_factory", "grpc_channel_class"],
    "7 child processes": ["bash_lc", "sh_ec", "dev_tcp_redirection", "variable_command_word", "find_exec",
                          "git_alias", "perl_one_liner", "python_one_liner", "node_one_liner", "pip_versioned",
                          "python_mpip", "busybox_wget", "sys_audit_replaced", "fork_exec_direct", "os_spawnlp",
                          "fork_then_exec"],
    "8 tampering": ["tamper_check_endpoint"],
}
NO_DNS = ["urllib_name", "requests_name", "httpx_name", "dns_getaddrinfo", "dns_gethostbyname",
          "connect_by_name", "geventhttpclient_name", "mapped_name_other_port", "pinned_name_other_port",
          "aiohttp_name", "uvloop_dns", "aiodns_query"]
#: cases whose traffic is allowed to arrive: allowed endpoints, and the documented limits
MAY_ARRIVE = {"pinned_pair_allowed", "pinned_ip_allowed", "cidr_allowed", "spawned_child_plain", "ctypes_connect"}
ALL_REFUSED = REFUSED + [name for names in WAYS_OUT.values() for name in names]


@pytest.fixture(scope="module")
def attacks() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(MM_IN_PRIVATE_NETNS="1", PYTHONDONTWRITEBYTECODE="1", **PROXY_ENV)
    env = {k: v for k, v in env.items() if not k.startswith(("MM_NETWORK_GUARD", "MM_GUARD"))}
    env["MM_IN_PRIVATE_NETNS"] = "1"
    proc = run_in_netns([sys.executable, str(HERE / "guard_attacks.py")], env=env, timeout=240,
                        hosts=HOSTS, addresses=ADDRESSES, nameserver=NAMESERVER)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("MM-RESULTS ")]
    assert lines, f"attack child failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("MM-RESULTS "):])  # type: ignore[no-any-return]


def test_namespace_has_only_loopback() -> None:
    proc = run_in_netns([sys.executable, "-c", "import socket; print(socket.if_nameindex())"])
    assert proc.stdout.strip() == "[(1, 'lo')]"


def test_no_fallback_to_the_real_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(NetnsUnavailable):
        run_in_netns(["/bin/true"])


def test_the_witness_sees_what_arrives(attacks: dict[str, Any]) -> None:
    # the connection opened before the guard, and the documented limits, did arrive
    assert attacks["_setup_arrived"] == {"tcp:203.0.113.5:8001": 1}
    assert attacks["spawned_child_plain"]["arrived"] == {"tcp:192.0.2.1:8080": 1}
    assert attacks["ctypes_connect"]["arrived"] == {"tcp:192.0.2.1:8080": 1}


@pytest.mark.parametrize("name", ALL_REFUSED)
def test_refused_and_nothing_arrived(attacks: dict[str, Any], name: str) -> None:
    result = attacks[name]
    assert result["outcome"] == "refused", result
    assert result["code"] == "network_access_forbidden"
    assert result["arrived"] == {}, result
    assert result["seconds"] < 1.5, result


def test_nothing_arrived_but_from_the_allowed_and_the_documented_limits(attacks: dict[str, Any]) -> None:
    leaks = {name: r["arrived"] for name, r in attacks.items()
             if not name.startswith("_") and r["arrived"] and name not in MAY_ARRIVE}
    assert leaks == {}


@pytest.mark.parametrize("name", NO_DNS)
def test_no_dns_query_leaves_for_a_refused_name(attacks: dict[str, Any], name: str) -> None:
    assert attacks[name]["dns"] == [], attacks[name]
    assert not any(k.endswith(":53") for k in attacks[name]["arrived"]), attacks[name]


def test_refusal_names_host_port_and_library(attacks: dict[str, Any]) -> None:
    assert "192.0.2.1:80" in attacks["requests_ip"]["error"]
    assert "requests.api" in attacks["requests_ip"]["error"]
    assert "httpx" in attacks["httpx_ip"]["error"]
    assert "huggingface_hub" in attacks["hf_hub_download_socket_layer"]["error"]
    assert "tritonclient.http" in attacks["tritonclient_http_ip"]["error"]
    assert "tritonclient.grpc" in attacks["tritonclient_grpc_ip"]["error"]
    blocked = attacks["_blocked"]
    assert any(layer == "audit" for *_, layer in blocked), "the audit backstop never fired"
    assert any(op.startswith("starting download program 'curl'") for op, *_ in blocked)


def test_backstop_catches_what_the_python_layer_cannot_see(attacks: dict[str, Any]) -> None:
    for name in ("saved_reference", "c_level_method", "geventhttpclient_ip", "namedtuple_c_level",
                 "af_packet_c_level", "vsock_c_level"):
        assert attacks[name]["outcome"] == "refused", name
    assert "python layer back" in attacks["reload_socket"]["error"]


def test_socket_families_are_refused_at_creation(attacks: dict[str, Any]) -> None:
    for name in ("af_packet_frame", "af_packet_c_level", "inet_raw_socket", "vsock_socket", "vsock_c_level"):
        assert "creating an AF_" in attacks[name]["error"], attacks[name]
    assert "AF_VSOCK" in attacks["vsock_socket"]["error"] and "AF_VSOCK" in attacks["vsock_c_level"]["error"]


def test_proxy_variables_are_cleared(attacks: dict[str, Any]) -> None:
    assert set(attacks["proxies_cleared"]["value"]) == set(PROXY_ENV), attacks["proxies_cleared"]
    # an allowed gRPC target no longer goes through the remote proxy the variables named
    assert attacks["grpc_proxy_variable"]["outcome"] == "allowed", attacks["grpc_proxy_variable"]
    assert attacks["grpc_proxy_variable"]["arrived"] == {}
    assert attacks["grpc_proxy_option_disabled"]["value"] == "made"
    assert "grpc.http_proxy" in attacks["grpc_proxy_option"]["error"]


def test_c_network_stacks_are_refused_at_import_and_aiohttp_falls_back(attacks: dict[str, Any]) -> None:
    for name in ("uvloop_connect", "uvloop_dns", "aiodns_query", "pycurl_fetch"):
        assert "NetworkStackRefused" in attacks[name]["error"], attacks[name]
    assert {"uvloop", "aiodns", "pycurl"} <= set(attacks["refused_imports_recorded"]["value"])
    assert attacks["aiohttp_loopback_with_aiodns_refused"]["value"] == "200 ThreadedResolver aiodns=False"


def test_names_are_judged_by_what_they_resolve_to(attacks: dict[str, Any]) -> None:
    for name in ("localhost_points_elsewhere", "localhost_points_elsewhere_getaddrinfo"):
        assert "localhost resolves to 192.0.2.1, not loopback only" in attacks[name]["error"], attacks[name]
    assert "no pinned AF_INET6 address" in attacks["ipv6_rebinding"]["error"]


def test_what_was_open_before_activation_is_a_problem(attacks: dict[str, Any]) -> None:
    value = attacks["preexisting_connection"]["value"]
    assert len(value["unguarded"]) == 1 and "203.0.113.5:8001" in value["unguarded"][0], value
    assert value["problems"] == value["unguarded"]


def test_child_processes_are_refused_in_this_process(attacks: dict[str, Any]) -> None:
    assert "(fork_exec)" in attacks["sys_audit_replaced"]["error"]
    assert "(fork_exec)" in attacks["fork_exec_direct"]["error"]
    assert "(os.spawnvp)" in attacks["os_spawnlp"]["error"]
    assert "variable" in attacks["variable_command_word"]["error"]
    assert "/dev/tcp" in attacks["dev_tcp_redirection"]["error"]


def test_tampering_with_a_check_changes_nothing_and_is_reported(attacks: dict[str, Any]) -> None:
    assert "model_manager.guard.check_endpoint was replaced" in attacks["tamper_check_endpoint"]["error"]


def test_huggingface_offline_switch_refuses_without_any_socket(attacks: dict[str, Any]) -> None:
    result = attacks["hf_offline_switch"]
    assert result["outcome"] == "allowed" and result["value"].startswith("offline:"), result
    assert result["seconds"] < 1.0


def test_spawned_children_need_the_startup_hook(attacks: dict[str, Any]) -> None:
    # Without the hook a spawned interpreter is unguarded (documented); with it, refused.
    assert attacks["spawned_child_plain"]["value"] == "sent"
    assert "triton:" in attacks["spawned_child_startup_hook"]["error"]  # the allow-list travelled too


def test_what_stays_allowed(attacks: dict[str, Any]) -> None:
    assert attacks["tritonclient_http_mapped_name"]["value"] is True
    assert attacks["grpc_loopback_allowed"]["outcome"] == "allowed"
    assert attacks["harmless_subprocess"]["value"] == "ok"
    for name in ("pinned_pair_allowed", "pinned_ip_allowed"):
        assert attacks[name]["value"] == "connected", attacks[name]
        assert attacks[name]["arrived"] == {"tcp:198.51.100.7:8000": 1}
    assert attacks["pinned_pair_allowed"]["dns"] == [["socket.getaddrinfo", "tritonremote"]]
    assert attacks["cidr_allowed"]["value"] == "connected connected refused", attacks["cidr_allowed"]
    assert attacks["cidr_allowed"]["arrived"] == {"tcp:198.51.100.7:8080": 1, "tcp:[2001:db8::1]:443": 1}
