"""``pytest -p pytest_mm`` end to end: real pytest runs in subprocesses.

Runs that reach for non-loopback targets happen inside a private network namespace
(tests/netns.py); the others touch only loopback or nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers.netns import run_in_netns

ROOT = Path(__file__).resolve().parents[2]

SCENARIOS = '''
import socket, urllib.request
import pytest
from model_manager import guard

@pytest.fixture(scope="session")
def session_state():
    return guard.is_active()

def test_session_fixture_guarded(session_state):
    assert session_state is True

def test_reaches_network():
    urllib.request.urlopen("http://192.0.2.1/", timeout=2)

def test_swallowed_refusal():
    try:
        urllib.request.urlopen("http://198.51.100.1/", timeout=2)
    except Exception:
        pass

def test_expected_refusal(mm_expect_refusal):
    with mm_expect_refusal() as refused:
        socket.getaddrinfo("example.com", 80)
    assert refused[0].host == "example.com"

@pytest.mark.mm_allow_hosts("192.0.2.50:8000")
def test_marker_allows_pair():
    with pytest.raises(OSError):  # the guard lets it through; the namespace has no route
        socket.create_connection(("192.0.2.50", 8000), timeout=1)

def test_marker_does_not_leak(mm_expect_refusal):
    with mm_expect_refusal():
        socket.create_connection(("192.0.2.50", 8000), timeout=1)

def test_cli_allow_hosts():
    with pytest.raises(OSError):
        socket.create_connection(("203.0.113.60", 9000), timeout=1)

@pytest.mark.mm_allow_network(reason="exercises a fake remote on purpose")
def test_unguarded():
    assert not guard.is_active()

def test_switches_guard_off():
    guard.deactivate()

def test_guard_back_after_switch_off():
    assert guard.is_active()
    assert "203.0.113.60:9000" in guard.allowed()

def test_clearing_the_record_hides_nothing():
    try:
        socket.getaddrinfo("example.com", 80)
    except Exception:
        pass
    guard.clear_blocked_attempts()

def test_replaces_connect():
    socket.socket.connect = socket.socket.__mro__[1].connect

def test_loopback_and_unix_allowed(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    socket.create_connection(server.getsockname(), timeout=1).close()
    path = str(tmp_path / "s")
    unix = socket.socket(socket.AF_UNIX); unix.bind(path); unix.listen()
    client = socket.socket(socket.AF_UNIX); client.connect(path); client.close()
'''


def _junit(path: Path) -> dict[str, tuple[str, str]]:
    """test name -> (outcome, text), where a teardown error wins over a pass."""
    results: dict[str, tuple[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        outcome, text = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, text = child.tag, (child.get("message") or "") + (child.text or "")
        if results.get(name, ("passed",))[0] == "passed":
            results[name] = (outcome, text)
    return results


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    return env


@pytest.fixture(scope="module")
def scenario_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, tuple[str, str]], str]:
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "test_scenarios.py").write_text(SCENARIOS)
    xml = folder / "out.xml"
    proc = run_in_netns([sys.executable, "-m", "pytest", "-p", "pytest_mm", "-p", "no:cacheprovider",
                         "--mm-allow-hosts", "203.0.113.60:9000", f"--junitxml={xml}",
                         "-o", "junit_family=xunit1", "-rA", str(folder / "test_scenarios.py")],
                        env=_env(), cwd=folder, timeout=120)
    assert xml.exists(), proc.stdout + proc.stderr
    return _junit(xml), proc.stdout


def test_guard_is_on_for_session_fixtures(scenario_run) -> None:
    assert scenario_run[0]["test_session_fixture_guarded"][0] == "passed"


def test_network_use_fails_naming_test_host_and_library(scenario_run) -> None:
    outcome, text = scenario_run[0]["test_reaches_network"]
    assert outcome == "failure"
    assert "network_access_forbidden" in text and "192.0.2.1:80" in text
    assert "test_scenarios.py::test_reaches_network" in text and "urllib.request" in text


def test_swallowed_refusal_fails_at_teardown(scenario_run) -> None:
    outcome, text = scenario_run[0]["test_swallowed_refusal"]
    assert outcome == "error" and "swallowed" in text and "198.51.100.1:80" in text


def test_expected_refusal_fixture_passes(scenario_run) -> None:
    assert scenario_run[0]["test_expected_refusal"][0] == "passed"


def test_allow_hosts_marker_and_option(scenario_run) -> None:
    results = scenario_run[0]
    assert results["test_marker_allows_pair"][0] == "passed"
    assert results["test_marker_does_not_leak"][0] == "passed"
    assert results["test_cli_allow_hosts"][0] == "passed"


def test_only_the_marker_switches_the_guard_off_and_is_listed(scenario_run) -> None:
    results, stdout = scenario_run
    assert results["test_unguarded"][0] == "passed"
    assert "tests that ran WITHOUT the guard" in stdout
    assert "test_scenarios.py::test_unguarded: exercises a fake remote on purpose" in stdout
    outcome, text = results["test_switches_guard_off"]
    assert outcome == "error" and "switched the guard off" in text
    assert results["test_guard_back_after_switch_off"][0] == "passed"
    outcome, text = results["test_replaces_connect"]
    assert outcome == "error" and "socket.connect was replaced" in text


def test_clearing_the_record_does_not_hide_a_refusal(scenario_run) -> None:
    outcome, text = scenario_run[0]["test_clearing_the_record_hides_nothing"]
    assert outcome == "error" and "1 more refusal(s) were cleared" in text


def test_loopback_and_unix_sockets_stay_allowed(scenario_run) -> None:
    assert scenario_run[0]["test_loopback_and_unix_allowed"][0] == "passed"


XDIST = '''
import socket, urllib.request, pytest
from model_manager import guard

@pytest.fixture(scope="module")
def module_state():
    return guard.is_active()

@pytest.mark.parametrize("n", range(4))
def test_worker_guarded(n, module_state, mm_expect_refusal):
    assert module_state and guard.is_active()
    with mm_expect_refusal():
        socket.getaddrinfo("example.com", 443)

def test_worker_swallowed():
    try:
        urllib.request.urlopen("http://192.0.2.3/", timeout=2)
    except Exception:
        pass

@pytest.mark.mm_allow_network(reason="listed from a worker")
def test_worker_unguarded():
    assert not guard.is_active()
'''


def test_every_xdist_worker_is_guarded(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(XDIST)
    proc = run_in_netns([sys.executable, "-m", "pytest", "-p", "pytest_mm", "-p", "no:cacheprovider",
                         "-n", "2", "-q", str(tmp_path / "test_x.py")], env=_env(), cwd=tmp_path,
                        timeout=120)
    out = proc.stdout
    assert "6 passed, 1 error" in out, out + proc.stderr
    assert "ERROR at teardown of test_worker_swallowed" in out
    assert "192.0.2.3:80" in out
    assert "test_x.py::test_worker_unguarded: listed from a worker" in out
    assert "[gw0]" in out or "[gw1]" in out


def _run_pytest(folder: Path, *args: str, extra_path: str = "") -> subprocess.CompletedProcess[str]:
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, str(ROOT)) if p)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, cwd=folder, env=env, timeout=60)


def test_plugin_by_p_and_entry_point_registers_once(tmp_path: Path) -> None:
    dist = tmp_path / "site" / "model_manager_fake-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: model-manager-fake\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\npytest_mm = pytest_mm\n")
    (tmp_path / "test_one.py").write_text(textwrap.dedent('''
        from model_manager import guard
        def test_one(pytestconfig):
            plugins = [p for p in pytestconfig.pluginmanager.get_plugins()
                       if getattr(p, "__name__", "") == "pytest_mm"]
            assert len(plugins) == 1 and guard.is_active()
    '''))
    for args in (["-p", "pytest_mm"], []):
        proc = _run_pytest(tmp_path, *args, "test_one.py", extra_path=str(tmp_path / "site"))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "mm network guard: on" in proc.stdout


def test_malformed_allow_hosts_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    proc = _run_pytest(tmp_path, "-p", "pytest_mm", "--mm-allow-hosts", "triton", "test_one.py")
    assert proc.returncode == 4
    assert "invalid_model_spec" in proc.stderr and "no port" in proc.stderr


def test_marker_without_reason_is_refused(tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text(textwrap.dedent('''
        import pytest
        @pytest.mark.mm_allow_network
        def test_one():
            pass
    '''))
    proc = _run_pytest(tmp_path, "-p", "pytest_mm", "test_one.py")
    assert proc.returncode != 0 and "mm_allow_network needs a reason" in proc.stdout + proc.stderr
