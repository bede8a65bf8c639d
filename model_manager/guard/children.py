"""Child processes: refuse starting one that reaches the network, judged by ``argv.py``.

The audit events (``subprocess.Popen``, ``os.exec``, ``os.posix_spawn``, ``os.system``) see
most starts. Two entry points are wrapped as well, so a start is refused in this process even
when the event never fires: ``_posixsubprocess.fork_exec`` (also bound as
``subprocess._fork_exec``; replacing ``sys.audit`` silences the ``subprocess.Popen`` event,
and code may call ``fork_exec`` directly) and ``os.spawnv*`` (on POSIX they fork, then exec
in the child: without the wrapper the refusal would happen only in the child).

The reader (``argv``, with ``shellwords``) is imported when the first start is judged: a process
that starts none never loads it. It seals itself when loaded (``integrity.seal_module``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from model_manager.guard.addresses import text
from model_manager.guard.patches import ours, put
from model_manager.guard.record import refuse
from model_manager.guard.state import STATE

if TYPE_CHECKING:
    from model_manager.guard.argv import Finding

EVENTS: tuple[str, ...] = ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system")
_SPAWNS = ("spawnv", "spawnve", "spawnvp", "spawnvpe")


def _word(value: object) -> str:
    if isinstance(value, (bytes, bytearray, os.PathLike)):
        return os.fsdecode(value)  # type: ignore[arg-type]
    return text(value)


def _words(argv: object) -> list[str]:
    if argv is None:
        return []
    if isinstance(argv, (str, bytes, bytearray, os.PathLike)):
        return [_word(argv)]
    return [_word(a) for a in argv]  # type: ignore[attr-defined]


def scan_event(event: str, args: Sequence[Any]) -> Finding | None:
    """What an audited process event would start that reaches the network, or None."""
    from model_manager.guard.argv import scan_argv, scan_shell

    if event == "os.system":
        return scan_shell(_word(args[0]))
    if event == "os.spawn":  # Windows: (mode, path, args, env)
        executable, argv = args[1], args[2]
    else:                    # (executable or path, args, ...)
        executable, argv = args[0], args[1]
    return scan_argv(_words(argv), _word(executable) if executable is not None else None)


def refuse_child(finding: Finding, where: str) -> None:
    if finding.why:
        op = f"starting {finding.program!r}: {finding.why} ({where})"
    else:
        op = f"starting download program {finding.program!r} ({where})"
    refuse(op, finding.program, None, "subprocess", target=False)


def on_event(event: str) -> Callable[[tuple[Any, ...]], None]:
    def check(args: tuple[Any, ...]) -> None:
        finding = scan_event(event, args)
        if finding is not None:
            refuse_child(finding, event)
    return check


def _fork_exec_wrapper(original: Any) -> Callable[..., Any]:
    state = STATE

    def fork_exec(*args: Any, **kwargs: Any) -> Any:
        if state.on and args:
            from model_manager.guard.argv import scan_argv

            executables = args[1] if len(args) > 1 and args[1] else [None]
            finding = scan_argv(_words(args[0]), _word(executables[0]) if executables[0] is not None else None)
            if finding is not None:
                refuse_child(finding, "fork_exec")
        return original(*args, **kwargs)

    return fork_exec


def _spawn_wrapper(name: str, original: Any) -> Callable[..., Any]:
    state = STATE

    def spawn(mode: int, file: Any, args: Any, *rest: Any) -> Any:
        if state.on:
            from model_manager.guard.argv import scan_argv

            finding = scan_argv(_words(args), _word(file))
            if finding is not None:
                refuse_child(finding, f"os.{name}")
        return original(mode, file, args, *rest)

    return spawn


def install() -> None:
    """Wrap the entry points that exist (again, after a reload or a replacement)."""
    targets: list[tuple[Any, str, Callable[[str, Any], Any]]] = []
    posixsubprocess = sys.modules.get("_posixsubprocess")
    if posixsubprocess is None:
        try:
            import _posixsubprocess as posixsubprocess
        except ImportError:
            posixsubprocess = None
    if posixsubprocess is not None:
        targets.append((posixsubprocess, "fork_exec", lambda _, f: _fork_exec_wrapper(f)))
    subprocess = sys.modules.get("subprocess")
    if subprocess is not None and getattr(subprocess, "_fork_exec", None) is not None:
        targets.append((subprocess, "_fork_exec", lambda _, f: _fork_exec_wrapper(f)))
    targets += [(os, name, _spawn_wrapper) for name in _SPAWNS if name in os.__dict__]
    for owner, attr, make in targets:
        if not ours(owner, attr):
            put(owner, attr, make(attr, owner.__dict__[attr]))
