"""Every attack on the guard, for real, inside a private network namespace with only loopback.

One child process (tests/guard_attacks.py) runs all cases and reports JSON; each test
below checks one case. Targets are documentation-reserved addresses and example.com.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
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
NO_DNS = ["urllib_name", "requests_name", "httpx_name", "dns_getaddrinfo", "dns_gethostbyname",
          "connect_by_name", "geventhttpclient_name", "mapped_name_other_port", "pinned_name_other_port"]


@pytest.fixture(scope="module")
def attacks() -> dict[str, Any]:
    env = dict(os.environ, MM_IN_PRIVATE_NETNS="1", PYTHONDONTWRITEBYTECODE="1")
    proc = run_in_netns([sys.executable, str(HERE / "guard_attacks.py")], env=env, timeout=180,
                        hosts={"triton": "127.0.0.1", "tritonremote": "192.0.2.50"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("MM-RESULTS ")]
    assert lines, f"attack child failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("MM-RESULTS "):])


def test_namespace_has_only_loopback() -> None:
    proc = run_in_netns([sys.executable, "-c", "import socket; print(socket.if_nameindex())"])
    assert proc.stdout.strip() == "[(1, 'lo')]"


def test_no_fallback_to_the_real_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(NetnsUnavailable):
        run_in_netns(["/bin/true"])


@pytest.mark.parametrize("name", REFUSED)
def test_refused_with_the_guard_code_in_under_a_second(attacks: dict[str, Any], name: str) -> None:
    result = attacks[name]
    assert result["outcome"] == "refused", result
    assert result["code"] == "network_access_forbidden"
    assert result["seconds"] < 1.0, result


@pytest.mark.parametrize("name", NO_DNS)
def test_no_dns_query_leaves_for_a_refused_name(attacks: dict[str, Any], name: str) -> None:
    assert attacks[name]["dns"] == [], attacks[name]


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
    for name in ("saved_reference", "c_level_method", "geventhttpclient_ip"):
        assert attacks[name]["outcome"] == "refused"
    assert "python layer back" in attacks["reload_socket"]["error"]


def test_huggingface_offline_switch_refuses_without_any_socket(attacks: dict[str, Any]) -> None:
    result = attacks["hf_offline_switch"]
    assert result["outcome"] == "allowed" and result["value"].startswith("offline:"), result
    assert result["seconds"] < 1.0


def test_spawned_children_need_the_startup_hook(attacks: dict[str, Any]) -> None:
    # Without the hook a spawned interpreter is unguarded (here the namespace stops it).
    assert "Network is unreachable" in attacks["spawned_child_plain"]["value"]
    assert "triton:" in attacks["spawned_child_startup_hook"]["error"]  # the allow-list travelled too


def test_what_stays_allowed(attacks: dict[str, Any]) -> None:
    assert attacks["tritonclient_http_mapped_name"]["value"] is True
    assert attacks["grpc_loopback_allowed"]["outcome"] == "allowed"
    assert attacks["harmless_subprocess"]["value"] == "ok"
    for name in ("pinned_pair_allowed", "pinned_ip_allowed"):
        assert attacks[name]["value"].startswith("guard allowed"), attacks[name]
    assert attacks["pinned_pair_allowed"]["dns"] == [["socket.getaddrinfo", "tritonremote"]]
