"""Network stacks written in C (policy.NETWORK_STACKS): no Python layer sees their traffic.

Once the guard is on, importing one is refused with ``NetworkStackRefused``, an ``ImportError``
that is also a ``NetworkAccessForbidden`` (code ``network_access_forbidden``): a library that
probes for one as an optional speed-up (aiohttp for aiodns) falls back to its guarded path.
One imported before the guard cannot be unloaded: ``unguarded()`` names it and
``integrity_problems()`` reports it. Refused imports are kept apart from the network refusals
(``guard.refused_imports()``): a library that probed and fell back has reached nothing.
"""

from __future__ import annotations

import sys

from model_manager.errors import NetworkAccessForbidden
from model_manager.guard.record import message, record_import
from model_manager.policy import NETWORK_STACKS, NetworkStack

BY_MODULE: dict[str, NetworkStack] = {module: stack for stack in NETWORK_STACKS for module in stack.modules}
_TOP_LEVEL = frozenset(module.partition(".")[0] for module in BY_MODULE)  # asked for every import: one probe


class NetworkStackRefused(NetworkAccessForbidden, ImportError):
    """Importing a C network stack while the guard is on (an ImportError, so probes fall back)."""


def refused_module(fullname: str) -> str | None:
    """The catalogued module that ``fullname`` is, or is a submodule of."""
    if fullname.partition(".")[0] not in _TOP_LEVEL:
        return None
    if fullname in BY_MODULE:
        return fullname
    for module in BY_MODULE:
        if fullname.startswith(module + "."):
            return module
    return None


def refuse_import(fullname: str, module: str) -> None:
    stack = BY_MODULE[module]
    op = f"importing {fullname} ({stack.library}: {stack.why} Instead: {stack.instead})"
    attempt = record_import(fullname, op)
    exc = NetworkStackRefused(message(op, fullname, None, attempt.library, attempt.chain, target=False),
                              host=fullname, port=None, library=attempt.library,
                              hint="the guard cannot see this library's traffic; see docs/network-guard.md")
    exc.name = fullname
    raise exc


def unguarded() -> tuple[str, ...]:
    """Catalogued C network stacks loaded in this process (imported before the guard, or while it was off)."""
    if BY_MODULE.keys().isdisjoint(sys.modules.keys()):  # a set-like argument: only BY_MODULE is walked
        return ()
    found = sorted(module for module in BY_MODULE if module in sys.modules)
    return tuple(f"{module} ({BY_MODULE[module].library}: {BY_MODULE[module].why[:-1]})" for module in found)
