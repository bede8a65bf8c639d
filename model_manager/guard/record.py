"""The refusal: one ``BlockedAttempt`` in the record and one ``NetworkAccessForbidden`` raised.

A socket that is refused is closed first, so a refusal never leaves a descriptor behind
(clients like ``socket.create_connection`` only close on ``OSError``, and the refusal is not one).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import FrozenInstanceError
from typing import Any, NoReturn

from model_manager.errors import NetworkAccessForbidden, shown
from model_manager.guard.state import LOCK, STATE
from model_manager.policy import CATALOGUE

#: packages named as "the calling library" in refusals (outermost one on the stack wins)
KNOWN_LIBRARIES: frozenset[str] = frozenset(
    m for entry in CATALOGUE for m in entry.modules if m not in ("os", "subprocess")
) | {"tritonclient", "geventhttpclient", "grpc", "httpcore", "anyio", "smtplib", "xmlrpc",
     "pip", "botocore", "boto3", "fsspec", "gcsfs", "s3fs", "dns", "gevent"}

_SKIP_MODULES = frozenset({"socket", "_socket", "ssl", "selectors", "model_manager", "importlib._bootstrap"})
_PLUMBING = frozenset({"threading", "concurrent", "runpy", "importlib", "contextlib", "functools",
                       "_pytest", "pytest", "pluggy", "xdist", "execnet", "unittest", "asyncio"})


class _Record:
    """A frozen record compared, hashed, shown and pickled by its fields (``__slots__``): what
    ``@dataclass(frozen=True, slots=True)`` makes, written out because defining a dataclass costs
    about 1.5 ms and every ``pytest -p pytest_mm`` run imports these two."""

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(self.__slots__, self._fields(), strict=True))
        return f"{type(self).__qualname__}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), self._fields()


_set = object.__setattr__


class BlockedAttempt(_Record):
    __match_args__ = ("op", "host", "port", "library", "chain", "layer", "context", "pid", "when")
    __slots__ = __match_args__
    op: str              # connect, sendto, getaddrinfo, grpc channel, starting download program ...
    host: str            # host, address, or the program name
    port: int | None
    library: str         # the module that asked, e.g. "requests.api"
    chain: str           # top-level packages on the stack, innermost first
    layer: str           # "python", "audit", "grpc", "subprocess", "import"
    context: str | None  # the pytest node id, when the plugin runs
    pid: int
    when: float

    def __init__(self, op: str, host: str, port: int | None, library: str, chain: str, layer: str,
                 context: str | None, pid: int, when: float) -> None:
        for name, value in zip(self.__slots__, (op, host, port, library, chain, layer, context, pid, when),
                               strict=True):
            _set(self, name, value)


class RefusedImport(_Record):
    """An import of a C network stack refused (not a network refusal: the importer may fall back)."""

    __match_args__ = ("module", "why", "library", "chain", "context", "pid", "when")
    __slots__ = __match_args__
    module: str
    why: str
    library: str         # the module that imported it
    chain: str
    context: str | None
    pid: int
    when: float

    def __init__(self, module: str, why: str, library: str, chain: str, context: str | None, pid: int,
                 when: float) -> None:
        for name, value in zip(self.__slots__, (module, why, library, chain, context, pid, when), strict=True):
            _set(self, name, value)


def shown_host(host: str) -> str:
    """A host or program name as a message shows it: itself when short and printable."""
    return host if len(host) <= 200 and host.isprintable() else shown(host)


def refuse(op: str, host: str, port: int | None, layer: str, sock: Any = None, *, target: bool = True) -> NoReturn:
    """Record the refusal, close ``sock`` (if any), raise ``NetworkAccessForbidden``.
    ``target=False``: ``host`` is no destination (a socket family, a program) and the message
    does not say "to" it."""
    if sock is not None:
        try:
            sock.close()
        except Exception:
            pass
    library, chain = calling_library(sys._getframe(1))
    attempt = BlockedAttempt(op, host, port, library, chain, layer, STATE.context, os.getpid(), time.time())
    with LOCK:
        STATE.blocked.append(attempt)
        STATE.refusals += 1
    raise NetworkAccessForbidden(message(op, host, port, library, chain, target=target),
                                 host=host, port=port, library=library)


def message(op: str, host: str, port: int | None, library: str, chain: str, *, target: bool = True) -> str:
    name = shown_host(host)
    where = "" if not target else f" to {name}:{port}" if port is not None else f" to {name}"
    test = f" in test {STATE.context}" if STATE.context else ""
    allowed = ", ".join(sorted(STATE.entries.values())) or "none"
    return (f"{op}{where} refused{test}: called from {library} (stack: {chain}); "
            f"allowed: loopback, unix sockets, mapped Triton endpoints ({allowed})")


def record_import(module: str, why: str) -> RefusedImport:
    """A refused import, kept apart from the network refusals (a library that probes for an
    optional C speed-up and falls back has not tried to reach the network): no BlockedAttempt."""
    library, chain = calling_library(sys._getframe(1))
    refused = RefusedImport(module, why, library, chain, STATE.context, os.getpid(), time.time())
    with LOCK:
        STATE.refused_imports.append(refused)
    return refused


def calling_library(frame: Any) -> tuple[str, str]:
    """The library behind a refused call (outermost known one, else first non-plumbing module) and the chain."""
    chain: list[str] = []
    outer_known: str | None = None
    first_other: str | None = None
    while frame is not None:
        name = str(frame.f_globals.get("__name__", "?"))
        top = name.partition(".")[0]
        if top not in _SKIP_MODULES and name not in _SKIP_MODULES:
            if not chain or chain[-1] != top:
                chain.append(top)
            if top in KNOWN_LIBRARIES:
                outer_known = name
            elif first_other is None and top not in _PLUMBING:
                first_other = name
        frame = frame.f_back
    library = outer_known or first_other or (chain[0] if chain else "<unknown>")
    return library, " <- ".join(chain[:8])


def find_refusal(exc: BaseException | None) -> NetworkAccessForbidden | None:
    """The guard's refusal behind ``exc``: itself, or in its cause/context chain or exception group."""
    todo, seen = [exc], set()
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        if isinstance(current, NetworkAccessForbidden):
            return current
        seen.add(id(current))
        todo += [current.__cause__, current.__context__, *getattr(current, "exceptions", ())]
    return None
