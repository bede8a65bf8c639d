"""``pytest -p pytest_mm``: the network guard is on for the whole test run.

It is switched on before conftest files load (so session fixtures and xdist workers
are covered) and stays on. A test that reaches the network fails with its name, the
host and the library; a refusal that a library swallowed fails the test at teardown.
Only ``@pytest.mark.mm_allow_network(reason=...)`` switches the guard off for a test,
and the terminal summary lists every such test. See docs/network-guard.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from model_manager import guard
from model_manager.errors import ModelManagerError, NetworkAccessForbidden

_UNGUARDED = "mm_network_unguarded"
_START = pytest.StashKey[int]()        # guard.refusal_count() when the test began
_SEEN = pytest.StashKey[int]()         # refusals already visible as a failure, or expected
_STACK = pytest.StashKey[contextlib.ExitStack]()
_RUN_ALLOW = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mm", "model_manager network guard")
    group.addoption("--mm-allow-hosts", action="append", default=[], metavar="HOST:PORT[,HOST:PORT]",
                    help="host:port pairs the network guard allows for the whole run, besides "
                         "loopback and unix sockets (repeatable, comma-separated)")


def _hosts(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _activate(entries: list[str]) -> None:
    try:
        guard.activate(entries)
    except ModelManagerError as exc:
        raise pytest.UsageError(f"--mm-allow-hosts: {exc}") from exc


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # Before any conftest is imported: import-time downloads in conftests are caught too.
    _activate(_hosts(getattr(early_config.known_args_namespace, "mm_allow_hosts", None)))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mm_allow_hosts(*host_port): let this test also reach these "
                                       "host:port pairs (besides loopback and unix sockets)")
    config.addinivalue_line("markers", "mm_allow_network(reason): switch the network guard off for this "
                                       "test; the terminal summary lists it with the reason")
    config.stash[_RUN_ALLOW] = _hosts(config.getoption("mm_allow_hosts"))
    _activate(config.stash[_RUN_ALLOW])


def pytest_report_header(config: pytest.Config) -> str:
    allowed = ", ".join(guard.allowed()) or "no other host"
    return f"mm network guard: on (loopback, unix sockets, {allowed})"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    guard.set_context(item.nodeid)
    item.stash[_START] = guard.refusal_count()
    item.stash[_SEEN] = 0
    item.stash[_STACK] = contextlib.ExitStack()
    try:
        return (yield)
    finally:
        item.stash[_STACK].close()
        guard.set_context(None)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    stack = item.stash[_STACK]
    for marker in item.iter_markers("mm_allow_hosts"):
        stack.enter_context(guard.allowing(marker.args))
    allow = item.get_closest_marker("mm_allow_network")
    if allow is not None:
        reason = allow.kwargs.get("reason") or (allow.args[0] if allow.args else "")
        if not isinstance(reason, str) or not reason.strip():
            raise pytest.UsageError(f"{item.nodeid}: mm_allow_network needs a reason=")
        item.user_properties.append((_UNGUARDED, reason))
        stack.enter_context(guard.suspended())


def _new_count(item: pytest.Item) -> int:
    return guard.refusal_count() - item.stash.get(_START, guard.refusal_count())


def _new_attempts(item: pytest.Item) -> tuple[guard.BlockedAttempt, ...]:
    count = _new_count(item)
    return guard.blocked_attempts()[-count:] if count else ()


def acknowledge_refusals(item: pytest.Item) -> None:
    """Mark this test's refusals so far as expected (the guard's own tests use it)."""
    item.stash[_SEEN] = _new_count(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if _START not in item.stash:
        return report
    if call.when != "teardown":
        if call.excinfo is not None and guard.find_refusal(call.excinfo.value) is not None:
            acknowledge_refusals(item)  # the refusal already failed this test visibly
        return report
    unguarded = item.get_closest_marker("mm_allow_network") is not None
    problems = [] if unguarded else guard.integrity_problems()
    unseen_count = _new_count(item) - item.stash[_SEEN]
    unseen = _new_attempts(item)[-unseen_count:] if unseen_count > 0 else ()
    if problems:
        _activate(item.config.stash[_RUN_ALLOW])  # put it back for the next tests
    if unseen_count > 0 or problems:
        lines = [f"network guard: {item.nodeid}"]
        lines += [f"  a refusal was swallowed (the test went on): {a.op} to {a.host}:{a.port} "
                  f"from {a.library} [{a.layer}]" for a in unseen]
        if unseen_count > len(unseen):
            lines.append(f"  {unseen_count - len(unseen)} more refusal(s) were cleared from the record")
        lines += [f"  the test switched the guard off: {p} (use @pytest.mark.mm_allow_network(reason=...))"
                  for p in problems]
        report.outcome = "failed"
        report.longrepr = "\n".join(lines)
    return report


_unguarded_tests: dict[str, str] = {}  # node id -> reason; filled from reports (xdist workers too)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == _UNGUARDED:
            _unguarded_tests.setdefault(report.nodeid, str(value))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _unguarded_tests:
        terminalreporter.section("mm network guard: tests that ran WITHOUT the guard")
        for nodeid, reason in sorted(_unguarded_tests.items()):
            terminalreporter.line(f"{nodeid}: {reason}")


@pytest.fixture
def mm_expect_refusal(request: pytest.FixtureRequest) -> Callable[[], contextlib.AbstractContextManager[list[Any]]]:
    """``with mm_expect_refusal() as refused: ...``: the block must be refused by the guard at
    least once (raised or swallowed); those refusals then do not fail the test."""
    item = request.node

    @contextlib.contextmanager
    def expect() -> Iterator[list[Any]]:
        before = _new_count(item)
        refused: list[Any] = []
        try:
            yield refused
        except NetworkAccessForbidden:
            pass
        count = _new_count(item) - before
        refused.extend(guard.blocked_attempts()[-count:] if count else ())
        if not count:
            pytest.fail("expected the network guard to refuse something in this block; nothing was refused")
        acknowledge_refusals(item)

    return expect
