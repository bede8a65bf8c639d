"""Who switches the guard off: ``guard.suspended``, ``guard.allowing`` and ``guard.deactivate``
are wrapped for the whole run, and every call made outside the plugin is reported.

Why wrappers, installed once before any conftest or test module is imported, and not a
check of the guard's state after each test: ``with guard.suspended():`` and ``with
guard.allowing(...):`` put everything back when the block ends, so the state after the test
looks untouched. Installed that early, ``from model_manager.guard import suspended`` in a
test module gets the wrapper too; the bindings inside the guard's own modules are replaced as
well. What wrappers cannot see (the guard's switch flipped directly, socket methods replaced,
references saved before pytest_mm loaded) the state check at teardown still catches
(``guard.integrity_problems()``).
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Iterator
from types import ModuleType, TracebackType
from typing import Any

from model_manager import guard

WATCHED = ("suspended", "allowing", "deactivate")
_ORIGINAL = "_pytest_mm_original"


class GuardWatch:
    def __init__(self, on_call: Callable[[str], None]) -> None:
        self._on_call = on_call
        self._local = threading.local()
        self._undo: list[tuple[ModuleType, str, Any]] = []

    def install(self) -> None:
        modules = [m for name, m in list(sys.modules.items()) if isinstance(m, ModuleType)
                   and (name == guard.__name__ or name.startswith(guard.__name__ + "."))]
        for name in WATCHED:
            current = getattr(guard, name)
            original = getattr(current, _ORIGINAL, current)  # a nested run shadows the outer one
            wrapper = self._wrap(name, original)
            for module in modules:
                bound = module.__dict__.get(name)
                if bound is not None and (bound is current or bound is original):
                    self._undo.append((module, name, bound))
                    setattr(module, name, wrapper)

    def uninstall(self) -> None:
        while self._undo:
            module, name, bound = self._undo.pop()
            setattr(module, name, bound)

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Calls inside are the plugin's own (or nested in a watched call): not reported."""
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield
        finally:
            self._local.depth -= 1

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        watch = self

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not getattr(watch._local, "depth", 0):
                watch._on_call(name)
            with watch.quiet():
                result = original(*args, **kwargs)
            # suspended() and allowing() do their work when the block is entered and left
            if hasattr(result, "__enter__") and hasattr(result, "__exit__"):
                return _Quiet(watch, result)
            return result

        setattr(wrapper, _ORIGINAL, original)
        return wrapper


class _Quiet:
    """A watched context manager whose enter and exit count as part of the reported call."""

    def __init__(self, watch: GuardWatch, inner: Any) -> None:
        self._watch = watch
        self._inner = inner

    def __enter__(self) -> Any:
        with self._watch.quiet():
            return self._inner.__enter__()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> bool | None:
        with self._watch.quiet():
            return bool(self._inner.__exit__(kind, value, tb))
