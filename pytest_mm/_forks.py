"""The channel that brings refusals made in forked children back to the test process.

A forked child (``os.fork``, ``multiprocessing`` with the fork start method) inherits the
guard, but its record of refusals lives in its own memory. The test process opens one
unlinked, append-only file per run, just before its first fork (the plugin registers
``os.register_at_fork``: a run that never forks never opens it); every child inherits the
descriptor. The hook is on
``guard.BlockedAttempt.__init__`` (the guard builds exactly one per refusal, and one per
refused import, which is left out): in a process other than the test process it appends one
JSON line (the test's node id, op, host, port, library, layer, pid). The test process reads
new lines with ``pread`` when a test ends, so a test that forks nothing pays one ``fstat``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

from model_manager import guard

_ORIGINAL = "_pytest_mm_original"
_FIELD_LIMIT = 300  # keeps a record well under PIPE_BUF: one write() per record


class ChildRefusal:  # a plain class: a NamedTuple costs more to define, on every run
    __slots__ = ("context", "host", "layer", "library", "op", "pid", "port")

    def __init__(self, context: str | None, op: str, host: str, port: int | None, library: str, layer: str,
                 pid: int) -> None:
        self.context = context  # the node id of the test that was running when the child forked
        self.op = op
        self.host = host
        self.port = port
        self.library = library
        self.layer = layer
        self.pid = pid


class ForkChannel:
    def __init__(self) -> None:
        import fcntl

        fd, path = tempfile.mkstemp(prefix="pytest-mm-forks-")
        os.unlink(path)  # nothing left on disk; children write through the inherited descriptor
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
        stat = os.fstat(fd)
        self.fd = fd
        self._identity = (stat.st_dev, stat.st_ino)
        self._owner = os.getpid()
        self._offset = 0

    @classmethod
    def open(cls) -> ForkChannel | None:
        if not hasattr(os, "fork"):
            return None
        try:
            return cls()
        except (OSError, ImportError):
            return None

    def install(self) -> Callable[[], None]:
        """Hook ``BlockedAttempt.__init__``; returns the undo."""
        cls: Any = guard.BlockedAttempt
        current = cls.__init__
        original = getattr(current, _ORIGINAL, current)  # a nested run shadows the outer one
        channel = self

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            # A refused import is recorded apart by the guard and is no network refusal.
            if os.getpid() != channel._owner and getattr(self, "layer", None) != "import":
                channel._send(self)

        setattr(__init__, _ORIGINAL, original)
        cls.__init__ = __init__
        return lambda: setattr(cls, "__init__", current)

    def _send(self, attempt: Any) -> None:
        record = {name: _bounded(getattr(attempt, name, None))
                  for name in ("context", "op", "host", "port", "library", "layer")}
        record["pid"] = os.getpid()
        line = json.dumps(record).encode() + b"\n"
        with contextlib.suppress(OSError):
            stat = os.fstat(self.fd)
            # A child that closed its descriptors may have reused the number for another file.
            if (stat.st_dev, stat.st_ino) == self._identity:
                os.write(self.fd, line)

    def drain(self) -> list[ChildRefusal]:
        """Records written since the last drain (complete lines only)."""
        try:
            size = os.fstat(self.fd).st_size
            if size <= self._offset:
                return []
            data = os.pread(self.fd, size - self._offset, self._offset)
        except OSError:
            return []
        end = data.rfind(b"\n") + 1
        self._offset += end
        return [_parse(line) for line in data[:end].splitlines() if line]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _bounded(value: object) -> object:
    if isinstance(value, str) and len(value) > _FIELD_LIMIT:
        return value[:_FIELD_LIMIT] + "..."
    return value if value is None or isinstance(value, (str, int)) else str(value)[:_FIELD_LIMIT]


def _parse(line: bytes) -> ChildRefusal:
    try:
        r = json.loads(line)
        port = r.get("port")
        return ChildRefusal(r.get("context"), str(r.get("op")), str(r.get("host")),
                            port if isinstance(port, int) else None, str(r.get("library")),
                            str(r.get("layer")), int(r.get("pid") or 0))
    except (ValueError, TypeError, AttributeError):
        return ChildRefusal(None, "refusal", "(unreadable record)", None, "?", "?", 0)
