"""Wrappers put on other modules' attributes, and how to take them off again.

Every layer that replaces an attribute (socket methods, gRPC channel constructors, the
child-process entry points) does it through ``put`` so ``deactivate`` restores them all in one
place and ``integrity_problems`` sees any that was replaced behind the guard's back.
"""

from __future__ import annotations

import contextlib
import operator
from typing import Any

from model_manager.guard.state import LOCK, STATE


def put(owner: Any, attr: str, wrapper: Any) -> None:
    with LOCK:
        STATE.saved.setdefault((owner, attr), owner.__dict__.get(attr))
        setattr(owner, attr, wrapper)
        STATE.installed[(owner, attr)] = wrapper
        STATE.cells[(owner, attr)] = cells(wrapper)
        STATE.wrapper_plan = None


def cells(function: Any) -> tuple[Any, ...]:
    """What a closure closes over (identity is what integrity compares)."""
    return tuple(cell.cell_contents for cell in getattr(function, "__closure__", None) or ())


def ours(owner: Any, attr: str) -> bool:
    """Whether the attribute is still the wrapper the guard put there."""
    wrapper = STATE.installed.get((owner, attr))
    return wrapper is not None and owner.__dict__.get(attr) is wrapper


def restore_all() -> None:
    with LOCK:
        for (owner, attr), original in STATE.saved.items():
            if original is None:
                with contextlib.suppress(AttributeError, TypeError):
                    delattr(owner, attr)
            else:
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(owner, attr, original)
        STATE.saved.clear()
        STATE.installed.clear()
        STATE.cells.clear()
        STATE.next.clear()
        STATE.wrapper_plan = None


def qualified(owner: Any, attr: str) -> str:
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}.{attr}"
    return f"{getattr(owner, '__name__', owner)}.{attr}"


def _intact(quick: bool = False) -> bool:
    """Every wrapper in place and closing over what it did, compared without building a report (the
    common case, which pytest_mm checks after every test). ``quick``: in place only."""
    plan = STATE.wrapper_plan
    if plan is None:
        items = list(STATE.installed.items())
        pairs = [(cell, value) for key, wrapper in items
                 for cell, value in zip(getattr(wrapper, "__closure__", None) or (), STATE.cells[key], strict=False)]
        owners: dict[Any, list[tuple[str, Any]]] = {}
        for (owner, attr), wrapper in items:
            owners.setdefault(owner, []).append((attr, wrapper))
        # per owner: its namespace, one itemgetter over it, and what that must return (the quick comparison)
        groups = tuple((owner.__dict__, operator.itemgetter(*(a for a, _ in there)),
                        tuple(w for _, w in there) if len(there) > 1 else there[0][1])
                       for owner, there in owners.items())
        plan = STATE.wrapper_plan = (tuple(owner.__dict__ for (owner, _), _ in items),
                                     tuple(attr for (_, attr), _ in items), tuple(w for _, w in items),
                                     tuple(c for c, _ in pairs), tuple(v for _, v in pairs), groups)
    return _check(plan, quick)


def _check(plan: tuple[tuple[Any, ...], ...], quick: bool) -> bool:
    dicts, attrs, wrappers, cells_now, values, groups = plan
    try:
        if quick:  # == is identity for functions; the full comparison below uses `is` throughout
            for namespace, get, expected in groups:  # noqa: SIM110 (a loop: no generator on this path)
                if get(namespace) != expected:
                    return False
            return True
        return all(map(operator.is_, map(operator.getitem, dicts, attrs), wrappers)) and \
            all(map(operator.is_, map(_contents, cells_now), values))
    except (KeyError, ValueError):  # a wrapper deleted, an emptied cell
        return False


_contents = operator.attrgetter("cell_contents")


def replaced(quick: bool = False) -> list[str]:
    """Wrappers that are no longer where they were put (``quick``: what they close over is not compared)."""
    plan = STATE.wrapper_plan
    if plan is not None and _check(plan, quick):  # the common case: reading needs no lock
        return []
    with LOCK:
        if _intact(quick):
            return []
        out = []
        for (owner, attr), wrapper in STATE.installed.items():
            if owner.__dict__.get(attr) is not wrapper:
                out.append(f"{qualified(owner, attr)} was replaced")
            elif not _same(cells(wrapper), STATE.cells[(owner, attr)]):
                out.append(f"what the wrapper {qualified(owner, attr)} calls was replaced")
        return sorted(out)


def _same(now: tuple[Any, ...], then: tuple[Any, ...]) -> bool:
    return len(now) == len(then) and all(map(operator.is_, now, then))
