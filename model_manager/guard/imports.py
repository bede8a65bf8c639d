"""The post-import hook: a meta-path finder, first on ``sys.meta_path`` while the guard is on.

It refuses the C network stacks (``stacks.py``) before any of their code loads, and runs a
callback right after a watched module executes (``socket`` reloaded, ``subprocess``, the gRPC
channel modules, libraries whose offline flags the guard sets).
"""

from __future__ import annotations

import functools
import importlib.abc
import sys
import types
from collections.abc import Callable
from typing import Any

from model_manager.guard import stacks
from model_manager.guard.state import STATE


def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
    if STATE.on:
        module = stacks.refused_module(name)
        if module is not None:
            stacks.refuse_import(name, module)
    busy = STATE.import_busy
    if name not in STATE.watched or getattr(busy, "on", False):
        return None
    busy.on = True
    try:
        spec = next((s for f in sys.meta_path if f is not FINDER and hasattr(f, "find_spec")
                     for s in [f.find_spec(name, path, target)] if s is not None), None)
    finally:
        busy.on = False
    loader = getattr(spec, "loader", None)
    if spec is None or not isinstance(loader, importlib.abc.Loader) or isinstance(loader, type):
        return spec
    original = loader.exec_module

    @functools.wraps(original)
    def exec_module(module: types.ModuleType) -> None:
        original(module)
        for callback in list(STATE.import_callbacks):
            callback(name)

    loader.exec_module = exec_module  # type: ignore[method-assign]
    return spec


FINDER = types.SimpleNamespace(find_spec=find_spec)  # a meta-path finder needs only find_spec


def install(watched: set[str] | frozenset[str], callback: Callable[[str], None]) -> None:
    """Put the finder first; run ``callback(name)`` after each of ``watched`` (re)loads."""
    STATE.watched.update(watched)
    if callback not in STATE.import_callbacks:
        STATE.import_callbacks.append(callback)
    if not sys.meta_path or sys.meta_path[0] is not FINDER:
        if FINDER in sys.meta_path:
            sys.meta_path.remove(FINDER)
        sys.meta_path.insert(0, FINDER)


def uninstall() -> None:
    STATE.import_callbacks.clear()
    STATE.watched.clear()
    if FINDER in sys.meta_path:
        sys.meta_path.remove(FINDER)


def problems() -> list[str]:
    if FINDER not in sys.meta_path:
        return ["the guard's import hook was removed from sys.meta_path"]
    return [] if FINDER.find_spec is find_spec else ["the guard's import hook was replaced"]
