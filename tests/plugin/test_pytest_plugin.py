"""``pytest -p pytest_mm`` end to end: real pytest runs in subprocesses.

Runs that reach for non-loopback targets happen inside a private network namespace
(tests/helpers/netns.py); the others touch only loopback or nothing.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from plugin_runs import run_pytest

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

def test_ini_allow_hosts():
    with pytest.raises(OSError):
        socket.create_connection(("198.51.100.60", 9100), timeout=1)

@pytest.mark.mm_allow_hosts(["192.0.2.51:8000", "192.0.2.52:8000"])
def test_marker_takes_a_list():
    for host in ("192.0.2.51", "192.0.2.52"):
        with pytest.raises(OSError):
            socket.create_connection((host, 8000), timeout=1)

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


@pytest.fixture(scope="module")
def scenario_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, tuple[str, str]], str]:
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "test_scenarios.py").write_text(SCENARIOS)
    (folder / "pytest.ini").write_text("[pytest]\nmm_allow_hosts =\n    198.51.100.60:9100\n")
    run = run_pytest(folder, "-p", "pytest_mm", "--mm-allow-hosts", "203.0.113.60:9000", "test_scenarios.py",
                     netns=True)
    assert run.results, run.out
    return run.results, run.proc.stdout


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
    for name in ("test_marker_allows_pair", "test_marker_does_not_leak", "test_cli_allow_hosts",
                 "test_ini_allow_hosts", "test_marker_takes_a_list"):
        assert results[name][0] == "passed", (name, results[name][1])


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

try:  # every worker imports this module while collecting: outside any test
    urllib.request.urlopen("http://192.0.2.4/", timeout=2)
except Exception:
    pass

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
    run = run_pytest(tmp_path, "-p", "pytest_mm", "-p", "xdist.plugin", "-n", "2", "test_x.py", netns=True)
    out = run.proc.stdout
    assert "6 passed, 1 error" in out, run.out
    assert "ERROR at teardown of test_worker_swallowed" in out
    assert "192.0.2.3:80" in out
    assert "test_x.py::test_worker_unguarded: listed from a worker" in out
    assert "[gw0]" in out or "[gw1]" in out
    outside = run.section("mm network guard: outside any test")
    assert "[gw0] before the first test: a refusal was swallowed: connect to 192.0.2.4:80" in outside
    assert "[gw1] before the first test" in outside and run.proc.returncode == 1


def test_plugin_by_p_and_entry_point_registers_once(tmp_path: Path) -> None:
    dist = tmp_path / "site" / "model_manager_fake-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: model-manager-fake\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\npytest_mm = pytest_mm.plugin\n")
    (tmp_path / "test_one.py").write_text(textwrap.dedent('''
        from model_manager import guard
        def test_one(pytestconfig):
            plugins = [p for p in pytestconfig.pluginmanager.get_plugins()
                       if getattr(p, "__name__", "") == "pytest_mm.plugin"]  # the one module with hooks
            assert len(plugins) == 1 and guard.is_active()
    '''))
    for args in (["-p", "pytest_mm"], []):
        run = run_pytest(tmp_path, *args, "test_one.py", extra_path=str(tmp_path / "site"), autoload=True)
        assert run.proc.returncode == 0, run.out
        assert "mm network guard: on" in run.proc.stdout


def test_bad_markers_fail_their_test(tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text(textwrap.dedent('''
        import pytest
        @pytest.mark.mm_allow_network
        def test_no_reason():
            pass
        @pytest.mark.mm_allow_hosts("triton")
        def test_bad_entry():
            pass
        def test_fine():
            pass
    '''))
    run = run_pytest(tmp_path, "-p", "pytest_mm", "test_one.py")
    assert run.proc.returncode == 1, run.out
    assert run.outcome("test_no_reason") == "error" and "mm_allow_network needs a reason" in run.text("test_no_reason")
    assert run.outcome("test_bad_entry") == "error"
    assert "@pytest.mark.mm_allow_hosts" in run.text("test_bad_entry") and "no port" in run.text("test_bad_entry")
    assert run.outcome("test_fine") == "passed"
