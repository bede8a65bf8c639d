"""What the plugin remembers: one ``RunState`` in ``config.stash``, one ``ItemState`` in each
``item.stash``. Nothing lives in module globals, so two configs in one process (pytester's
in-process runs) keep apart; only the guard itself is process-wide.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pytest

from model_manager import guard
from model_manager.errors import ModelManagerError, NetworkAccessForbidden

UNGUARDED = "mm_network_unguarded"      # user_properties key: the test ran without the guard (reason)
SWITCHED = "mm_guard_switched_off"      # user_properties key: the test switched it off, unpermitted
WORKER_OUTSIDE = "mm_outside_refusals"  # xdist workeroutput key: a worker's refusals outside tests


if TYPE_CHECKING:  # for annotations only: defining a Protocol class at import costs too
    from typing import Protocol

    from pytest_mm._forks import ChildRefusal, ForkChannel
    from pytest_mm._watch import GuardWatch

    class Refusal(Protocol):
        """What a refusal line needs: a ``guard.BlockedAttempt`` or a ``ChildRefusal``."""

        @property
        def op(self) -> str: ...
        @property
        def host(self) -> str: ...
        @property
        def port(self) -> int | None: ...
        @property
        def library(self) -> str: ...
        @property
        def layer(self) -> str: ...


class ItemState:
    # Plain classes, not dataclasses: the plugin is imported by every run, and a dataclass costs
    # about a millisecond to define.
    __slots__ = ("carried", "carried_cleared", "children", "children_seen", "expects", "marked", "permits",
                 "run", "seen", "stack", "start", "violations")

    def __init__(self, start: int, run: RunState | None = None) -> None:
        self.start = start                                      # guard.refusal_count() when the test began
        self.run = run                                          # the run's state (set by the test's protocol)
        self.seen = 0                                           # of its refusals: already visible or expected
        self.stack: contextlib.ExitStack | None = None          # what its markers entered (allowing, suspended)
        self.marked = False                                     # @pytest.mark.mm_allow_network(reason=...)
        self.permits = 0                                        # open ``with mm_allow_network(reason=...)`` blocks
        self.expects = False                                    # it requested the mm_expect_refusal fixture
        # tuples, grown by copying: nearly every test keeps them empty, and one lives as long as its item
        self.violations: tuple[str, ...] = ()                   # "guard.suspended()" ...
        self.children: tuple[ChildRefusal, ...] = ()            # refusals in its forked children
        self.children_seen = 0
        self.carried: tuple[Any, ...] = ()  # unexpected refusals made before an expect block
        self.carried_cleared = 0            # ... and how many of them the record had lost

    @property
    def permitted(self) -> bool:
        return self.marked or self.permits > 0


class RunState:
    __slots__ = ("__weakref__", "channel", "current", "initial_problems", "known_problems", "last_test",
                 "loaded_before", "mark", "outside", "run_allow", "running", "switched", "undo", "unguarded", "watch")

    def __init__(self, run_allow: list[str], loaded_before: list[str], watch: GuardWatch,
                 channel: ForkChannel | None) -> None:
        self.run_allow = run_allow                   # --mm-allow-hosts and the mm_allow_hosts ini option
        self.loaded_before = loaded_before           # plugins registered before pytest_mm (unguarded import)
        self.watch = watch
        self.channel = channel                       # opened at the run's first fork (plugin._before_fork)
        self.running = True                          # until pytest_unconfigure
        self.undo: list[Callable[[], None]] = []
        self.current: pytest.Item | None = None      # the test whose protocol is running
        self.mark = 0                                # refusal_count() up to which refusals outside tests are charged
        self.last_test: str | None = None
        # integrity_problems() that no later test is blamed for: those at the start (a C network
        # stack imported before the guard cannot be unloaded) and those already reported once
        self.initial_problems: list[str] = []
        self.known_problems: set[str] = set()
        self.outside: list[str] = []                 # refusals/switch-offs outside tests: fail the run
        self.unguarded: dict[str, list[str]] = {}    # node id -> reasons
        self.switched: dict[str, str] = {}           # node id -> what it called


STATE = pytest.StashKey[RunState]()
ITEM = pytest.StashKey[ItemState]()


def item_state(item: pytest.Item) -> ItemState:
    rec = item.stash.get(ITEM, None)
    if rec is None:
        rec = item.stash[ITEM] = ItemState(start=guard.refusal_count())
    return rec


def new_count(item: pytest.Item) -> int:
    """Refusals in this process since the test began (the count never goes down)."""
    return guard.refusal_count() - item_state(item).start


def last_attempts(count: int) -> tuple[guard.BlockedAttempt, ...]:
    return guard.blocked_attempts()[-count:] if count > 0 else ()


def acknowledge_refusals(item: pytest.Item) -> None:
    """Mark this test's refusals so far (its forked children's too) as expected."""
    rec = item_state(item)
    rec.seen = new_count(item)
    rec.children_seen = len(rec.children)


def carry_unexpected(item: pytest.Item, rec: ItemState | None = None) -> None:
    """Set this test's unacknowledged refusals aside (still to be reported), then acknowledge:
    an ``mm_expect_refusal`` block after them must not excuse them. ``rec``: the test's state, if at hand."""
    if rec is None:
        rec = item_state(item)
    count = guard.refusal_count() - rec.start
    unseen = count - rec.seen
    if unseen <= 0 and rec.children_seen == len(rec.children):
        return  # nothing new (the common case, after every test): acknowledging would change nothing
    attempts = last_attempts(count)[-unseen:] if unseen > 0 else ()
    rec.carried += (*attempts, *rec.children[rec.children_seen:])
    rec.carried_cleared += max(0, unseen - len(attempts))
    acknowledge_refusals(item)


def describe(refusal: Refusal) -> str:
    where = f"{refusal.host}:{refusal.port}" if refusal.port is not None else refusal.host
    return f"{refusal.op} to {where} from {refusal.library} [{refusal.layer}]"


def refusal_in(exc: BaseException | None) -> NetworkAccessForbidden | None:
    """The guard's refusal behind ``exc``: its cause/context chain, exception groups, and what
    doctest wraps an example's exception in (``UnexpectedException.exc_info``, pytest's
    ``MultipleDoctestFailures.failures``)."""
    todo: list[object] = [exc]
    seen: set[int] = set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NetworkAccessForbidden):
            return current
        if not isinstance(current, BaseException):
            continue
        todo += [current.__cause__, current.__context__, *getattr(current, "exceptions", ())]
        info = getattr(current, "exc_info", None)
        if isinstance(info, tuple) and len(info) == 3:
            todo.append(info[1])
        failures = getattr(current, "failures", None)
        if isinstance(failures, (list, tuple)):
            todo += failures
    return None


def without_refusals(exc: BaseException) -> BaseException | None:
    """``exc`` less the guard's refusals: None if nothing else is left, ``exc`` itself if it holds none."""
    if isinstance(exc, BaseExceptionGroup):
        _, rest = exc.split(lambda e: not isinstance(e, BaseExceptionGroup) and refusal_in(e) is not None)
        return rest
    return None if refusal_in(exc) is not None else exc


def allow_entries(values: Iterable[Any], source: str) -> list[str]:
    """Entries from the command line, the ini file or a marker, checked by the guard's parser.

    Comma-separated text and lists are flattened. A bare IP address means that host on every
    port and is passed on as a one-address network (``192.0.2.7/32``, ``2001:db8::7/128``).
    """
    entries: list[str] = []
    for value in values:
        parts = value.split(",") if isinstance(value, str) else list(value)
        for part in parts:
            text = part.strip() if isinstance(part, str) else part
            if text == "":
                continue
            entry = _bare_ip_as_network(text) if isinstance(text, str) else text
            try:
                guard.parse_allow(entry)
            except ModelManagerError as exc:
                raise pytest.UsageError(f"{source}: {exc}") from exc
            entries.append(entry)
    return entries


def _bare_ip_as_network(text: str) -> str:
    try:
        ip = ipaddress.ip_address(text.removeprefix("[").removesuffix("]"))
    except ValueError:
        return text
    return f"{ip.compressed}/{ip.max_prefixlen}"


def phase(state: RunState) -> str:
    return "before the first test" if state.last_test is None else f"after {state.last_test}"


def take_children(state: RunState, item: pytest.Item | None) -> None:
    """Sort the forked children's new records: this test's, or outside any test."""
    if state.channel is None:
        return
    for child in state.channel.drain():
        if item is not None and child.context == item.nodeid:
            item_state(item).children += (child,)
        else:
            of = f"of {child.context}, after that test ended" if child.context else phase(state)
            state.outside.append(f"in a forked child (pid {child.pid}) {of}: a refusal: {describe(child)}")
