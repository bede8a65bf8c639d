"""Has anything been switched off or replaced behind the guard's back?

Every function on the hot paths is reached either through a closure (the audit hook, the
wrappers) or as a module attribute of a guard module. ``seal()`` records both once; a module
attribute replaced later (``checks.check_endpoint = lambda *a: None``), a closure cell changed,
the audit hook's table edited, ``sys.audit`` replaced or the import hook removed is a problem,
and ``repair()`` (run by every ``activate()``) puts the recorded objects back.

A sealed module's class becomes ``SealedModule``, which counts every attribute assigned or
deleted through it (``setattr``, ``monkeypatch``, ``checks.x = ...``). The quick check
(``problems(quick=True)``, pytest_mm's after every test) compares the attributes only when that
count moved since they last compared intact, and leaves the audit hook's cells and table out: a
write straight into a module's ``__dict__`` or into a closure is seen by the next full check. A
module the guard loads on first use (``argv``, ``grpc_targets``) seals itself when it is loaded.
"""

from __future__ import annotations

import operator
import sys
import types
from collections.abc import Callable
from itertools import repeat
from typing import Any

from model_manager.guard import (
    addresses,
    audit,
    checks,
    children,
    imports,
    opensockets,
    patches,
    record,
    sockets,
    stacks,
    switches,
)
from model_manager.guard.state import STATE

_MODULES: tuple[types.ModuleType, ...] = (addresses, audit, checks, children, imports, opensockets, patches,
                                          record, sockets, stacks, switches)
_SYS_AUDIT = sys.audit
_snapshot: dict[types.ModuleType, dict[str, Any]] = {}   # sealed once: the guard's own code, not state
#: the same, as (module dict, names, values) for a comparison that runs in C
_sealed: list[tuple[dict[str, Any], Callable[[dict[str, Any]], tuple[Any, ...]], tuple[Any, ...]]] = []
_hook_cells: tuple[Any, ...] = patches.cells(audit.HOOK)
_hook_table: dict[str, Any] = dict(audit.HANDLERS)
_hook_values: tuple[Any, ...] = tuple(_hook_table.values())
_hook_dict: dict[str, Any] = next((c for c in _hook_cells if isinstance(c, dict)), {})  # the table the hook reads


class SealedModule(types.ModuleType):
    """A sealed guard module: assigning or deleting an attribute is counted (``STATE.sealed_writes``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        STATE.sealed_writes += 1

    def __delattr__(self, name: str) -> None:
        super().__delattr__(name)
        STATE.sealed_writes += 1


def seal(package: types.ModuleType, public: tuple[str, ...]) -> None:
    """Record the hot paths' functions and constants (and ``public`` names of the package)."""
    for module in _MODULES:
        _snapshot[module] = {k: v for k, v in vars(module).items() if not k.startswith("__")}
    _snapshot[package] = {name: getattr(package, name) for name in public}
    _rebuild()


def seal_module(module: types.ModuleType) -> None:
    """Record a guard module loaded on first use (it calls this at the end of its body)."""
    _snapshot[module] = {k: v for k, v in vars(module).items() if not k.startswith("__")}
    _rebuild()


def _rebuild() -> None:
    _sealed[:] = [(vars(module), _getter(tuple(names)), tuple(names.values()))
                  for module, names in _snapshot.items() if names]
    for module in _snapshot:
        if type(module) is not SealedModule:
            module.__class__ = SealedModule


def _genuine_audit(function: object) -> bool:
    return getattr(function, "__self__", None) is sys and getattr(function, "__name__", "") == "audit" \
        and isinstance(function, types.BuiltinFunctionType)


_GENUINE_AUDIT = _SYS_AUDIT if _genuine_audit(_SYS_AUDIT) else None


def _getter(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    get = operator.itemgetter(*names)
    return (lambda d: (get(d),)) if len(names) == 1 else get


def _attributes_intact() -> bool:
    """Every sealed attribute is what was recorded, and every sealed module still counts writes."""
    writes = STATE.sealed_writes
    try:
        intact = all(all(map(operator.is_, get(d), values)) for d, get, values in _sealed) \
            and all(map(operator.is_, map(type, _snapshot), repeat(SealedModule)))
    except KeyError:  # an attribute was deleted
        return False
    if intact:
        STATE.sealed_verified = writes
    return intact


def _hook_intact() -> bool:
    closure = audit.HOOK.__closure__ or ()
    if len(closure) != len(_hook_cells):
        return False
    try:
        if not all(map(operator.is_, map(_contents, closure), _hook_cells)):
            return False
    except ValueError:  # an emptied cell
        return False
    table = _hook_dict
    return len(table) == len(_hook_values) and all(map(operator.is_, table.values(), _hook_values)) \
        and table.keys() == _hook_table.keys()


_contents = operator.attrgetter("cell_contents")


def problems(quick: bool = False) -> list[str]:
    """What is replaced; ``quick``: module attributes only after a counted write, the audit hook's
    cells and table not at all (reaching them takes ``__closure__``: the full check sees it)."""
    unwritten = quick and STATE.sealed_writes == STATE.sealed_verified  # resetting a module's class is a write too
    if (unwritten or _attributes_intact()) and (quick or _hook_intact()) \
            and (sys.audit is _GENUINE_AUDIT or _genuine_audit(sys.audit)):
        return imports.problems()  # the common case (pytest_mm asks after every test): no report built
    out = [f"{module.__name__}.{name} was replaced"
           for module, names in _snapshot.items() for name, value in names.items()
           if module.__dict__.get(name, _snapshot) is not value]
    now = patches.cells(audit.HOOK)
    if len(now) != len(_hook_cells) or any(a is not b for a, b in zip(now, _hook_cells, strict=False)):
        out.append("what the audit hook closes over was replaced")
    table = next((c for c in now if isinstance(c, dict)), {})
    if table.keys() != _hook_table.keys() or any(table[k] is not v for k, v in _hook_table.items()):
        out.append("the audit hook's event handlers were replaced")
    if not _genuine_audit(sys.audit):
        out.append("sys.audit was replaced (subprocess.Popen's audit event no longer fires)")
    return out + imports.problems()


def repair() -> None:
    for module, names in _snapshot.items():
        for name, value in names.items():
            if module.__dict__.get(name, _snapshot) is not value:
                setattr(module, name, value)
        if type(module) is not SealedModule:
            module.__class__ = SealedModule
    closure = audit.HOOK.__closure__ or ()
    for cell, value in zip(closure, _hook_cells, strict=False):
        if cell.cell_contents is not value:
            cell.cell_contents = value
    table = next((c for c in _hook_cells if isinstance(c, dict)), None)
    if table is not None:
        table.clear()
        table.update(_hook_table)
    if not _genuine_audit(sys.audit) and _genuine_audit(_SYS_AUDIT):
        sys.audit = _SYS_AUDIT
    imports.FINDER.find_spec = imports.find_spec
