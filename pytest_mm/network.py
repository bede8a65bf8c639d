"""Network fixtures of ``pytest -p pytest_mm``: ``mm_expect_refusal`` and ``mm_allow_network``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from model_manager import guard
from pytest_mm._state import (
    STATE,
    UNGUARDED,
    RunState,
    acknowledge_refusals,
    carry_unexpected,
    item_state,
    last_attempts,
    new_count,
    take_children,
    without_refusals,
)


def _run_state(request: pytest.FixtureRequest, fixture: str) -> RunState:
    state = request.config.stash.get(STATE, None)
    if state is None:
        pytest.fail(f"the {fixture} fixture needs the pytest_mm plugin to be active", pytrace=False)
    return state


@pytest.fixture
def mm_expect_refusal(request: pytest.FixtureRequest) -> Callable[[], contextlib.AbstractContextManager[list[Any]]]:
    """``with mm_expect_refusal() as refused: ...``: the block must be refused by the guard at
    least once, raised or swallowed, in this process or a forked child; those refusals then do
    not fail the test. A refusal raised out of the block is absorbed, also inside an
    ``ExceptionGroup`` (anyio task groups, httpx): the group's other exceptions propagate.
    ``refused`` lists what was refused (op, host, port, library, layer, pid)."""
    state = _run_state(request, "mm_expect_refusal")
    item = request.node
    rec = item_state(item)
    rec.expects = True

    @contextlib.contextmanager
    def expect() -> Iterator[list[Any]]:
        take_children(state, item)
        carry_unexpected(item)
        before, children_before = new_count(item), len(rec.children)
        refused: list[Any] = []
        raised: BaseException | None = None
        try:
            yield refused
        except BaseException as exc:
            raised = without_refusals(exc)  # None when it held refusals only
        take_children(state, item)
        count = new_count(item) - before
        refused.extend(last_attempts(count))
        refused.extend(rec.children[children_before:])
        acknowledge_refusals(item)
        if raised is not None:
            raise raised  # what is not a refusal goes on (a group keeps its other members)
        if not refused and not count:
            pytest.fail("expected the network guard to refuse something in this block; nothing was refused")

    return expect


@pytest.fixture
def mm_allow_network(request: pytest.FixtureRequest) -> Callable[..., contextlib.AbstractContextManager[None]]:
    """``with mm_allow_network(reason="..."): ...``: the guard is off inside the block (and the
    test may use ``guard.suspended()``, ``allowing()``, ``deactivate()`` there); the terminal
    summary lists the test with the reason. A reason is required. The guard is put back as it
    was when the block ends."""
    state = _run_state(request, "mm_allow_network")
    item = request.node

    def allow(*, reason: str) -> contextlib.AbstractContextManager[None]:
        if not isinstance(reason, str) or not reason.strip():
            pytest.fail(f"{item.nodeid}: mm_allow_network(reason=...) needs a reason", pytrace=False)
        item.user_properties.append((UNGUARDED, reason))
        return _unguarded(state, item)

    return allow


@contextlib.contextmanager
def _unguarded(state: RunState, item: pytest.Item) -> Iterator[None]:
    rec = item_state(item)
    was_on, entries = guard.is_active(), guard.allowed()
    rec.permits += 1  # before the call: the suspension is permitted, not reported
    try:
        with guard.suspended():
            yield
    finally:
        rec.permits -= 1
        if was_on and (not guard.is_active() or guard.allowed() != entries):
            with state.watch.quiet():
                guard.deactivate()
                guard.activate(entries)
