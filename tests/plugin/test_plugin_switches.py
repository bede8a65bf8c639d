"""Only ``mm_allow_network`` (marker or fixture) may switch the guard off: ``guard.suspended()``,
``allowing()`` and ``deactivate()`` anywhere else fail the test (or the run, outside tests)
and are listed in the terminal summary. Nothing here leaves loopback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_runs import InnerRun, run_pytest

SWITCHES = '''
import pytest
from model_manager import guard
from model_manager.guard import deactivate as deactivate_imported_at_collection

def test_fixture_families_stay_unloaded():  # no test here asks for fake_triton
    import sys
    assert "pytest_mm.triton" not in sys.modules and "numpy" not in sys.modules

def test_uses_suspended():
    with guard.suspended():
        assert not guard.is_active()

def test_uses_allowing():
    with guard.allowing(["192.0.2.77:80"]):
        pass

def test_uses_deactivate_imported_early():
    deactivate_imported_at_collection()

def test_guard_is_whole_again():
    assert guard.is_active() and guard.integrity_problems() == []

@pytest.mark.mm_allow_network(reason="the marker permits it")
def test_marker_permits():
    with guard.suspended(), guard.allowing(["192.0.2.78:80"]):
        guard.deactivate()

def test_fixture_permits(mm_allow_network):
    with mm_allow_network(reason="the fixture permits it"):
        assert not guard.is_active()
        guard.deactivate()
        guard.activate(["192.0.2.79:80"])
    assert guard.is_active() and "192.0.2.79:80" not in guard.allowed()

def test_the_permit_ends_with_the_block(mm_allow_network):
    with mm_allow_network(reason="a short block"):
        pass
    with guard.suspended():
        pass

def test_fixture_needs_a_reason(mm_allow_network):
    with mm_allow_network(reason=" "):
        pass

@pytest.fixture
def unguarded(mm_allow_network):
    with mm_allow_network(reason="a fixture switches it off"):
        yield

def test_through_a_fixture(unguarded):
    assert not guard.is_active()
    guard.deactivate()

def test_guard_back_after_the_fixture():
    assert guard.is_active() and guard.integrity_problems() == []

@pytest.mark.mm_allow_network(reason="loads a C network stack")
def test_loads_a_c_network_stack():
    import uvloop

def test_not_blamed_for_the_c_network_stack():
    assert any("uvloop" in p for p in guard.integrity_problems())
'''

CONFTEST = '''
from model_manager import guard

def pytest_collection_finish(session):
    with guard.suspended():
        pass
'''


@pytest.fixture(scope="module")
def switches_run(tmp_path_factory: pytest.TempPathFactory) -> InnerRun:
    folder: Path = tmp_path_factory.mktemp("switches")
    (folder / "test_switches.py").write_text(SWITCHES)
    (folder / "conftest.py").write_text(CONFTEST)
    return run_pytest(folder, "-p", "pytest_mm", "test_switches.py")


@pytest.mark.parametrize(("name", "call"), [("test_uses_suspended", "guard.suspended()"),
                                            ("test_uses_allowing", "guard.allowing()"),
                                            ("test_uses_deactivate_imported_early", "guard.deactivate()"),
                                            ("test_the_permit_ends_with_the_block", "guard.suspended()")])
def test_switching_the_guard_off_unpermitted_fails(switches_run: InnerRun, name: str, call: str) -> None:
    assert switches_run.outcome(name) == "error", switches_run.out
    text = switches_run.text(name)
    assert f"switched the guard off with {call}" in text and "mm_allow_network(reason=" in text
    # suspended() calls deactivate() and the guard is off afterwards: still one thing reported
    others = {"guard.suspended()", "guard.allowing()", "guard.deactivate()", "the guard is off"} - {call}
    assert not [other for other in others if other in text], text
    assert f"test_switches.py::{name}: {call}" in switches_run.section("switched the guard off without")


def test_the_guard_is_put_back_after_an_unpermitted_switch(switches_run: InnerRun) -> None:
    assert switches_run.outcome("test_guard_is_whole_again") == "passed"
    assert switches_run.outcome("test_guard_back_after_the_fixture") == "passed"


def test_marker_and_fixture_permit_and_are_listed(switches_run: InnerRun) -> None:
    for name in ("test_marker_permits", "test_fixture_permits", "test_through_a_fixture",
                 "test_loads_a_c_network_stack", "test_not_blamed_for_the_c_network_stack"):
        assert switches_run.outcome(name) == "passed", (name, switches_run.text(name))
    listed = switches_run.section("tests that ran WITHOUT the guard")
    assert "test_switches.py::test_marker_permits: the marker permits it" in listed
    assert "test_switches.py::test_fixture_permits: the fixture permits it" in listed
    assert "test_switches.py::test_through_a_fixture: a fixture switches it off" in listed
    # what outlives an unguarded test is listed with it, and no later test is blamed for it
    assert "test_switches.py::test_loads_a_c_network_stack: loads a C network stack; left behind: uvloop" in listed


def test_the_fixture_needs_a_reason(switches_run: InnerRun) -> None:
    assert switches_run.outcome("test_fixture_needs_a_reason") == "failure"
    assert "mm_allow_network(reason=...) needs a reason" in switches_run.text("test_fixture_needs_a_reason")


def test_a_switch_outside_any_test_fails_the_run(switches_run: InnerRun) -> None:
    outside = switches_run.section("mm network guard: outside any test")
    assert "before the first test: guard.suspended() was called" in outside
    assert switches_run.proc.returncode == 1


def test_fixture_families_no_test_asks_for_are_not_imported(switches_run: InnerRun) -> None:
    assert switches_run.outcome("test_fixture_families_stay_unloaded") == "passed"
