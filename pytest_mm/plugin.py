"""The hooks of ``pytest -p pytest_mm``; the user guide is the package docstring and docs/pytest-mm.md."""

from __future__ import annotations

import contextlib
import functools
import os
import weakref
from collections.abc import Generator
from types import ModuleType
from typing import Any

import pytest

from pytest_mm._unrewritten import past_rewriter

with past_rewriter():  # the guard holds no test asserts: loaded as a plain import, at a third of the cost
    from model_manager import guard
    from model_manager.errors import ModelManagerError
    from pytest_mm._state import (
        ITEM,
        STATE,
        SWITCHED,
        UNGUARDED,
        WORKER_OUTSIDE,
        ItemState,
        RunState,
        acknowledge_refusals,
        allow_entries,
        carry_unexpected,
        describe,
        item_state,
        last_attempts,
        phase,
        refusal_in,
        take_children,
    )
    from pytest_mm._watch import GuardWatch
    from pytest_mm.network import mm_allow_network, mm_expect_refusal

__all__ = ["mm_allow_network", "mm_expect_refusal"]  # fixtures: pytest finds them on this module

_BUILTIN = frozenset({"_pytest", "pytest", "pluggy"})
#: fixture families other than the network's: module -> its fixtures. A family is registered
#: when a collected test asks for one of its fixtures (or --fixtures is shown), so a run that
#: uses none never imports it (the fake Triton server needs numpy).
FAMILIES = (("pytest_mm.triton", frozenset({"fake_triton", "fake_triton_mapping"})),
            ("pytest_mm.onnx", frozenset({"fake_onnx_model", "fake_onnx_manager"})))
_PERMIT = "use @pytest.mark.mm_allow_network(reason=...) or `with mm_allow_network(reason=...):`"


# ---------------------------------------------------------------- start: the guard goes on at registration
def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup("mm", "model_manager network guard")
    group.addoption("--mm-allow-hosts", action="append", default=[], metavar="ENTRY[,ENTRY]",
                    help="what the network guard also allows for the whole run, besides loopback and "
                         "unix sockets: host:port, an IP address, or a network (192.0.2.0/24, "
                         "192.0.2.0/24:8000, [2001:db8::/32]:443); repeatable, comma-separated")
    parser.addini("mm_allow_hosts", type="linelist", default=[],
                  help="pytest_mm: entries the network guard allows for the whole run (as --mm-allow-hosts)")
    # pytest_addoption is replayed the moment this plugin is registered: the earliest point at
    # which a plugin runs, so every plugin, conftest and test module loaded later is guarded.
    config = pluginmanager.get_plugin("pytestconfig")
    if isinstance(config, pytest.Config) and STATE not in config.stash:
        _start(config, pluginmanager)


def _start(config: pytest.Config, pluginmanager: pytest.PytestPluginManager) -> None:
    state = RunState(run_allow=[], loaded_before=_loaded_before(pluginmanager),
                     watch=GuardWatch(functools.partial(_on_switch, config)), channel=None)
    config.stash[STATE] = state
    _activate([], "pytest_mm")
    state.mark = guard.refusal_count()
    state.initial_problems = guard.integrity_problems()
    state.known_problems = set(state.initial_problems)
    state.watch.install()
    state.undo.append(state.watch.uninstall)
    if hasattr(os, "register_at_fork"):  # a run that never forks never opens the channel (nor reads it)
        os.register_at_fork(before=functools.partial(_before_fork, weakref.ref(state)))


def _before_fork(ref: weakref.ReferenceType[RunState]) -> None:
    """The run's first fork opens the channel its forked children send their refusals back on."""
    state = ref()
    if state is None or state.channel is not None or not state.running:
        return
    from pytest_mm._forks import ForkChannel

    state.channel = ForkChannel.open()
    if state.channel is not None:
        state.undo += [state.channel.close, state.channel.install()]


def _loaded_before(pluginmanager: pytest.PytestPluginManager) -> list[str]:
    """Plugins registered before this one, pytest's own left out (they were imported unguarded)."""
    names = []
    for name, plugin in pluginmanager.list_name_plugin():
        if plugin is None:
            continue
        if getattr(plugin, "pytest_addoption", None) is pytest_addoption:
            break
        module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
        if str(module).partition(".")[0] not in _BUILTIN:
            names.append(name)
    return names


def _activate(entries: list[str], source: str) -> None:
    try:
        guard.activate(entries)
    except ModelManagerError as exc:
        raise pytest.UsageError(f"{source}: {exc}") from exc


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    state = early_config.stash.get(STATE, None)
    if state is None:
        return
    cli = getattr(early_config.known_args_namespace, "mm_allow_hosts", None) or []
    state.run_allow = (allow_entries(cli, "--mm-allow-hosts")
                       + allow_entries(early_config.getini("mm_allow_hosts"), "mm_allow_hosts (ini option)"))
    _activate(state.run_allow, "--mm-allow-hosts / mm_allow_hosts")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mm_allow_hosts(*entries): let this test also reach these entries "
                                       "(host:port, IP address, network), besides loopback and unix sockets")
    config.addinivalue_line("markers", "mm_allow_network(reason): switch the network guard off for this "
                                       "test; the terminal summary lists it with the reason")
    state = config.stash.get(STATE, None)
    if state is not None:
        _activate(state.run_allow, "--mm-allow-hosts / mm_allow_hosts")
        hooks = _RunHooks(state)
        config.pluginmanager.register(hooks, "pytest_mm-run")
        state.undo.append(functools.partial(config.pluginmanager.unregister, hooks))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    everything = bool(config.getoption("showfixtures", False) or config.getoption("show_fixtures_per_test", False))
    wanted: set[str] = set() if everything else {name for item in items for name in getattr(item, "fixturenames", ())}
    for module, fixtures in FAMILIES:
        if (everything or fixtures & wanted) and not config.pluginmanager.has_plugin(module):
            config.pluginmanager.import_plugin(module)  # fixtures not found at collection are looked up at setup


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.running = False
    while state is not None and state.undo:
        state.undo.pop()()


def pytest_report_header(config: pytest.Config) -> list[str]:
    allowed = ", ".join(guard.allowed()) or "no other host"
    lines = [f"mm network guard: on (loopback, unix sockets, {allowed}); it stays on for the whole run"]
    state = config.stash.get(STATE, None)
    if state is not None and state.loaded_before:
        lines.append("mm network guard: loaded before pytest_mm, NOT guarded while they loaded: "
                     f"{', '.join(state.loaded_before)} (load pytest_mm first: -p pytest_mm at the front)")
    if state is not None and state.initial_problems:
        lines.append(f"mm network guard: escaping it from the start: {'; '.join(state.initial_problems)}")
    return lines


# ---------------------------------------------------------------- each test
@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    state = item.config.stash.get(STATE, None)
    if state is None:
        return (yield)
    count = guard.refusal_count()
    if count != state.mark:  # the forked children's records: read at this test's teardown
        _charge_outside(state, children=False)
    if state.last_test is None:  # conftests, plugins' hooks and collection have run
        state.outside += [f"before the first test: the guard was switched off: {p}" for p in _new_problems(state)]
    rec = item.stash[ITEM] = ItemState(start=count, run=state)
    state.current = item
    guard.set_context(item.nodeid)
    try:
        return (yield)
    finally:
        if rec.stack is not None:
            _close_markers(state, rec)
        guard.set_context(None)
        state.current = None
        state.last_test = item.nodeid
        del item.stash[ITEM]  # not needed past the test: 500 tests keep 500 fewer objects for the collector


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    hosts, allow = [], None
    node: pytest.Item | pytest.Collector | None = item
    while node is not None:  # what item.iter_markers() walks, closest first: both markers in one pass
        for marker in node.own_markers:
            if marker.name == "mm_allow_hosts":
                hosts.append(marker)
            elif marker.name == "mm_allow_network" and allow is None:
                allow = marker
        node = node.parent
    if not hosts and allow is None:
        return
    state = item.config.stash.get(STATE, None)
    if state is None:
        return
    rec = item_state(item)
    rec.stack = contextlib.ExitStack()
    with state.watch.quiet():
        for marker in hosts:
            try:
                entries = allow_entries(marker.args, f"{item.nodeid}: @pytest.mark.mm_allow_hosts")
            except pytest.UsageError as exc:
                pytest.fail(str(exc), pytrace=False)
            rec.stack.enter_context(guard.allowing(entries))
        if allow is not None:
            reason = allow.kwargs.get("reason") or (allow.args[0] if allow.args else "")
            if not isinstance(reason, str) or not reason.strip():
                pytest.fail(f"{item.nodeid}: mm_allow_network needs a reason=", pytrace=False)
            rec.marked = True
            item.user_properties.append((UNGUARDED, reason))
            rec.stack.enter_context(guard.suspended())


def _close_markers(state: RunState, rec: ItemState) -> None:
    if rec.stack is not None:
        stack, rec.stack = rec.stack, None
        with state.watch.quiet():
            stack.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    if call.when != "teardown":
        report = yield
        if call.excinfo is not None and refusal_in(call.excinfo.value) is not None:
            state = item.config.stash.get(STATE, None)
            if state is not None and item.stash.get(ITEM, None) is not None:
                take_children(state, item)
                acknowledge_refusals(item)  # the refusal already failed this test visibly: once is enough
        return report
    rec = item.stash.get(ITEM, None)
    state = None if rec is None else rec.run or item.config.stash.get(STATE, None)
    if state is None or rec is None:
        return (yield)
    if rec.stack is not None:  # the fixtures are torn down: what the markers entered ends here
        _close_markers(state, rec)
    report = yield
    if state.channel is not None:
        take_children(state, item)
    count = guard.refusal_count()
    if count - rec.start == rec.seen and rec.children_seen == len(rec.children) and not rec.carried \
            and not rec.carried_cleared and not rec.violations and not guard.integrity_problems(quick=True):
        state.mark = count
        return report  # nothing unseen was refused, nothing switched off, nothing broken: the common case
    lines = _problems(state, item, rec, report)
    state.mark = guard.refusal_count()
    if rec.violations:
        report.user_properties.append((SWITCHED, ", ".join(rec.violations)))
    if lines:
        text = "\n".join([f"network guard: {item.nodeid}", *lines])
        report.longrepr = f"{report.longrepr}\n\n{text}" if report.failed and report.longrepr else text
        report.outcome = "failed"
    return report


def _problems(state: RunState, item: pytest.Item, rec: ItemState, report: pytest.TestReport) -> list[str]:
    carry_unexpected(item, rec)
    problems = _new_problems(state, quick=True)
    if not (problems or rec.carried or rec.carried_cleared or rec.violations):
        return []
    from pytest_mm._forks import ChildRefusal  # loaded only once a test has something to report

    lines = [f"  a refusal in a forked child (pid {r.pid}) did not reach the test: {describe(r)}"
             if isinstance(r, ChildRefusal) else f"  a refusal was swallowed (the test went on): {describe(r)}"
             for r in rec.carried]
    if rec.carried_cleared:
        lines.append(f"  {rec.carried_cleared} more refusal(s) were cleared from the record")
    if lines:
        lines.append("  this test uses mm_expect_refusal: the refusal(s) above happened outside its "
                     "`with mm_expect_refusal():` block" if rec.expects else
                     "  if the test expects it, put the call in `with mm_expect_refusal():` (fixture "
                     "mm_expect_refusal); catching NetworkAccessForbidden or pytest.raises does not count")
    lines += [f"  the test switched the guard off with {call} ({_PERMIT})" for call in rec.violations]
    if rec.permitted:  # it may run unguarded; what outlives it is listed with it
        report.user_properties += [(UNGUARDED, f"left behind: {p}") for p in problems if p in state.known_problems]
        return lines
    if "guard.deactivate()" in rec.violations:
        problems = [p for p in problems if p != "the guard is off"]
    return lines + [f"  the test switched the guard off: {p} ({_PERMIT})" for p in problems]


def _new_problems(state: RunState, quick: bool = False) -> list[str]:
    """What is wrong with the guard that was not before; the guard is put back whole (the run's
    allow-list kept), and what cannot be undone is not reported again. ``quick``: after each test
    (``guard.integrity_problems(quick=True)``); before the first test and after the last, in full."""
    found = guard.integrity_problems(quick=quick)
    problems = [p for p in found if p not in state.known_problems] if found else []
    if problems:
        entries = sorted(set(guard.allowed()) | set(state.run_allow))
        with state.watch.quiet():
            guard.deactivate()
            guard.activate(entries)
        state.known_problems |= set(guard.integrity_problems())
    return problems


def _on_switch(config: pytest.Config, name: str) -> None:
    """A watched guard function was called from outside the plugin."""
    state = config.stash[STATE]
    call = f"guard.{name}()"
    if state.current is None:
        state.outside.append(f"{phase(state)}: {call} was called ({_PERMIT} inside a test)")
        return
    rec = item_state(state.current)
    if not rec.permitted and call not in rec.violations:
        rec.violations += (call,)


# ---------------------------------------------------------------- outside tests, forked children
def _charge_outside(state: RunState, skip_last: int = 0, children: bool = True) -> None:
    """Refusals since the last test (or the start) belong to no test: they fail the run. What
    forked children wrote is sorted by the test they name (``children=False``: left for later)."""
    total = guard.refusal_count() - state.mark
    if total > 0:
        attempts = list(last_attempts(total))
        del attempts[max(0, len(attempts) - skip_last):]
        total -= skip_last
        where = phase(state)
        state.outside += [f"{where}: a refusal was swallowed: {describe(a)}" for a in attempts]
        if total > len(attempts):
            state.outside.append(f"{where}: {total - len(attempts)} more refusal(s) were cleared from the record")
        state.mark = guard.refusal_count()
    if children:
        take_children(state, None)


def pytest_exception_interact(node: pytest.Item | pytest.Collector, call: pytest.CallInfo[Any],
                              report: Any) -> None:
    state = node.config.stash.get(STATE, None)
    if state is None or isinstance(node, pytest.Item) or call.excinfo is None:
        return
    if refusal_in(call.excinfo.value) is not None:  # collection failed on it: visible already
        _charge_outside(state, skip_last=1)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None:
        return
    _charge_outside(state)
    state.outside += [f"{phase(state)}: the guard was switched off: {p}" for p in _new_problems(state)]
    workeroutput = getattr(session.config, "workeroutput", None)
    if isinstance(workeroutput, dict):  # an xdist worker: the controller reports and fails the run
        workeroutput[WORKER_OUTSIDE] = list(state.outside)
    elif state.outside and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None:
        return
    sections = [("tests that ran WITHOUT the guard",
                 [f"{n}: {'; '.join(r)}" for n, r in sorted(state.unguarded.items())]),
                ("tests that switched the guard off without mm_allow_network",
                 [f"{n}: {what}" for n, what in sorted(state.switched.items())]),
                ("outside any test (this fails the run)", state.outside)]
    for title, lines in sections:
        if lines:
            terminalreporter.section(f"mm network guard: {title}")
            for line in lines:
                terminalreporter.line(line)


class _RunHooks:
    """Hooks whose arguments carry no config: registered per run, holding that run's state."""

    def __init__(self, state: RunState) -> None:
        self._state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == UNGUARDED:
                reasons = self._state.unguarded.setdefault(report.nodeid, [])
                if str(value) not in reasons:
                    reasons.append(str(value))
            elif key == SWITCHED:
                self._state.switched[report.nodeid] = str(value)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        worker = getattr(getattr(node, "gateway", None), "id", "worker")
        self._state.outside += [f"[{worker}] {line}" for line in output.get(WORKER_OUTSIDE, ())]
