"""All of the guard's mutable state, in one object: the switch, the allow-list, the record.

Every other guard module holds functions and constants only. ``STATE.on`` is what the hot
paths read; ``STATE.activated`` is what ``activate``/``deactivate`` last did. The two always
agree unless something flipped one behind the guard's back, which ``integrity_problems()``
reports.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from model_manager.guard.addresses import Network
    from model_manager.guard.opensockets import OpenSocket
    from model_manager.guard.record import BlockedAttempt, RefusedImport


class GuardState:
    __slots__ = (
        "activated", "blocked", "cells", "context", "entries", "hook_installed", "import_busy",
        "import_callbacks", "installed", "watched", "kernel_ports", "localhost",
        "names", "networks", "addrs", "next", "on", "pins", "proxies", "refusals", "refused_imports",
        "resolving", "saved", "saved_env", "saved_flags", "sealed_verified", "sealed_writes", "unguarded_sockets",
        "wrapper_plan", "env_names",
    )

    def __init__(self) -> None:
        self.on = False          # read by the audit hook and every wrapper
        self.activated = False   # what is_active() answers
        self.hook_installed = False
        # the allow-list
        self.entries: dict[tuple[str, int | None], str] = {}     # parsed entry -> entry as given
        self.names: set[tuple[str, int | None]] = set()          # hostnames: resolved once, that pair only
        self.addrs: set[tuple[str, int | None]] = set()          # IP literals and pinned resolutions
        self.networks: list[tuple[Network, int | None]] = []     # CIDR entries (port None: every port)
        self.pins: dict[tuple[str, int], list[Any]] = {}         # (name, port) -> getaddrinfo result
        self.localhost: list[Any] | None = None                  # getaddrinfo('localhost'), once
        self.resolving: set[str] = set()                         # names being pinned right now
        # the record
        self.blocked: list[BlockedAttempt] = []
        self.refusals = 0        # monotonic: clearing the record does not hide a refusal
        self.refused_imports: list[RefusedImport] = []
        self.context: str | None = None
        # what activation changed, to be put back by deactivate()
        self.saved: dict[tuple[Any, str], Any] = {}              # (owner, attr) -> original (None: absent)
        self.next: dict[str, Any] = {}                           # socket attr -> implementation wrapped
        self.installed: dict[tuple[Any, str], Any] = {}          # (owner, attr) -> wrapper put there
        self.cells: dict[tuple[Any, str], tuple[Any, ...]] = {}  # (owner, attr) -> its closure when put
        # the same as flat lists, compared in C after every test (None: rebuild from installed/cells)
        self.wrapper_plan: tuple[tuple[Any, ...], ...] | None = None
        # attributes assigned or deleted on a sealed module, and that count when they last compared intact
        self.sealed_writes = 0
        self.sealed_verified = -1
        # the post-import hook
        self.watched: set[str] = set()
        self.import_callbacks: list[Callable[[str], None]] = []
        self.import_busy = threading.local()                     # the finder is asking the others
        self.saved_env: dict[str, str | None] = {}
        self.saved_flags: dict[tuple[str, str], object] = {}
        self.proxies: dict[str, str] = {}                        # proxy variable -> value cleared
        self.env_names: tuple[object, ...] = ()                  # os.environ's names when last read without one
        self.unguarded_sockets: list[OpenSocket] = []
        self.kernel_ports: tuple[int, ...] = ()


STATE = GuardState()
LOCK = threading.RLock()
