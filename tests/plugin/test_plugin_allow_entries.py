"""Allow entries as pytest-socket users expect them: a bare IP address, host:port, or a network
(CIDR, with or without a port), from the command line, the ini file and the marker.

Needs ``guard.parse_allow`` to accept networks. The run is in a private network namespace:
an allowed address fails with OSError (no route), a refused one with the guard's refusal.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_runs import InnerRun, run_pytest

ENTRIES = '''
import socket
import pytest

def unreachable(host, port):  # allowed by the guard; the namespace has no route
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=1)

def test_ini_network_with_port():
    unreachable("198.51.100.7", 8000)

def test_ini_network_other_port_refused(mm_expect_refusal):
    with mm_expect_refusal():
        socket.create_connection(("198.51.100.7", 8001), timeout=1)

def test_ini_bare_ip_every_port():
    unreachable("192.0.2.99", 1234)
    unreachable("192.0.2.99", 80)

def test_cli_network():
    unreachable("203.0.113.200", 9)

def test_cli_v6_network_with_port():
    unreachable("2001:db8::5", 443)

@pytest.mark.mm_allow_hosts("192.0.2.0/25", ["198.51.100.200:80"])
def test_marker_network_and_list():
    unreachable("192.0.2.5", 81)
    unreachable("198.51.100.200", 80)

def test_marker_does_not_leak(mm_expect_refusal):
    with mm_expect_refusal():
        socket.create_connection(("192.0.2.5", 81), timeout=1)
'''

INI = "[pytest]\nmm_allow_hosts =\n    198.51.100.0/24:8000\n    192.0.2.99\n"


@pytest.fixture(scope="module")
def entries_run(tmp_path_factory: pytest.TempPathFactory) -> InnerRun:
    folder: Path = tmp_path_factory.mktemp("entries")
    (folder / "test_entries.py").write_text(ENTRIES)
    (folder / "pytest.ini").write_text(INI)
    return run_pytest(folder, "-p", "pytest_mm", "--mm-allow-hosts", "203.0.113.0/24,[2001:db8::/32]:443",
                      "test_entries.py", netns=True)


def test_networks_and_bare_addresses_are_allowed_everywhere(entries_run: InnerRun) -> None:
    assert entries_run.proc.returncode == 0, entries_run.out
    assert "7 passed" in entries_run.proc.stdout


def test_the_header_shows_the_entries(entries_run: InnerRun) -> None:
    header = next(line for line in entries_run.proc.stdout.splitlines() if line.startswith("mm network guard: on"))
    for entry in ("203.0.113.0/24", "[2001:db8::/32]:443", "198.51.100.0/24:8000", "192.0.2.99/32"):
        assert entry in header, header


@pytest.mark.parametrize(("option", "message"), [
    ("triton", "no port"), ("192.0.2.0/33", "192.0.2.0/33"), ("example.com/24", "example.com/24")])
def test_malformed_entries_are_usage_errors(tmp_path: Path, option: str, message: str) -> None:
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    run = run_pytest(tmp_path, "-p", "pytest_mm", "--mm-allow-hosts", option, "test_one.py")
    assert run.proc.returncode == 4, run.out
    assert "--mm-allow-hosts" in run.proc.stderr and "invalid_model_spec" in run.proc.stderr
    assert message in run.proc.stderr
