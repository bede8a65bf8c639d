"""The runtime network guard: nothing leaves this machine but traffic to the mapped Triton endpoints.

``activate(allow=...)`` is process-wide and idempotent (allow-lists add up). Layers: offline
switches and cleared proxy variables (``switches``), checks on socket creation, connect,
``sendto``/``sendmsg`` and name resolution (``sockets``, Python level), a permanent audit hook
behind them (``audit``), child processes (``children`` + ``argv``), gRPC targets
(``grpc_targets``), C network stacks refused at import (``stacks``), and on request the kernel
(``kernel``, irreversible). Standard library only; docs/network-guard.md says what each layer
guarantees and what it does not.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator

from model_manager.errors import InvalidModelSpec, KernelGuardUnavailable
from model_manager.guard import (
    audit,
    checks,
    children,
    imports,
    integrity,
    opensockets,
    patches,
    sockets,
    stacks,
    switches,
)
from model_manager.guard.addresses import ip_or_none, network_or_none, parse_allow
from model_manager.guard.checks import check_endpoint, check_resolve
from model_manager.guard.record import BlockedAttempt, RefusedImport, find_refusal
from model_manager.guard.state import LOCK, STATE

__all__ = ["BlockedAttempt", "RefusedImport", "activate", "activate_from_env", "allowed", "allowing",
           "blocked_attempts", "check_endpoint", "check_grpc_target", "check_resolve", "clear_blocked_attempts",
           "cleared_proxies", "deactivate", "find_refusal", "integrity_problems", "is_active", "kernel_ports",
           "parse_allow", "refusal_count", "refused_imports", "set_context", "suspended", "unguarded_sockets",
           "unguarded_stacks"]

ENV_SWITCH = "MM_NETWORK_GUARD"          # "1": a spawned child with the startup hook activates
ENV_ALLOW = "MM_NETWORK_GUARD_ALLOW"     # comma-separated allow-list for that child
ENV_KERNEL = "MM_GUARD_KERNEL"           # "1": every activation also applies kernel mode
ENV_KERNEL_PORTS = "MM_GUARD_KERNEL_PORTS"  # comma-separated extra TCP ports kernel mode allows

#: gRPC's channel modules (grpc_targets.MODULES): grpc_targets is loaded with the first of them
GRPC_MODULES = ("grpc._channel", "grpc.aio._channel")
_WATCHED = frozenset({"socket", "subprocess", *GRPC_MODULES, *switches.FLAG_MODULES})


# ---------------------------------------------------------------- switching on and off
def activate(allow: Iterable[str] = (), *, kernel: bool = False, kernel_ports: Iterable[int] = ()) -> None:
    """Turn the guard on for the whole process (idempotent; ``allow`` adds entries: ``host:port``,
    ``[v6]:port`` or a network ``192.0.2.0/24[:port]``, ``[2001:db8::/32]:port``).

    ``kernel=True`` (or ``MM_GUARD_KERNEL=1`` in the environment) also applies kernel mode,
    irreversibly, allowing TCP connects only to the allow-list's ports, ``kernel_ports`` and
    ``MM_GUARD_KERNEL_PORTS``. If kernel mode cannot be applied, ``KernelGuardUnavailable`` is
    raised with the default mode on.
    """
    want_kernel = kernel or os.environ.get(ENV_KERNEL) == "1"
    extra = _ports(kernel_ports, "kernel_ports") + _env_ports() if want_kernel else []
    _activate(allow)
    if want_kernel:
        _apply_kernel(extra)


def _activate(allow: Iterable[str]) -> None:
    entries = [allow] if isinstance(allow, str) else list(allow)
    parsed = {parse_allow(entry): entry for entry in entries}  # all or nothing: parse first
    with LOCK:
        was_on = STATE.activated
        for (host, port), entry in parsed.items():
            STATE.entries[(host, port)] = entry
            network = network_or_none(host)
            if network is not None:
                if (network, port) not in STATE.networks:
                    STATE.networks.append((network, port))
            elif ip_or_none(host) is not None:
                STATE.addrs.add((host, port))
            else:
                STATE.names.add((host, port))
        integrity.repair()
        if not STATE.hook_installed:
            sys.addaudithook(audit.HOOK)  # permanent by design: it cannot be removed
            STATE.hook_installed = True
        switches.apply()
        imports.install(_WATCHED, _after_import)
        sockets.install()
        children.install()
        _install_grpc()
        os.environ[ENV_SWITCH] = "1"
        os.environ[ENV_ALLOW] = ",".join(sorted(STATE.entries.values()))
        if not was_on:
            STATE.unguarded_sockets = opensockets.scan()
        STATE.on = STATE.activated = True


def activate_from_env() -> None:
    """Startup hook entry: activate if ``MM_NETWORK_GUARD=1`` (allow-list from ``MM_NETWORK_GUARD_ALLOW``;
    kernel mode too with ``MM_GUARD_KERNEL=1``)."""
    if os.environ.get(ENV_SWITCH) == "1":
        activate([e for e in os.environ.get(ENV_ALLOW, "").split(",") if e])


def deactivate() -> None:
    """Switch the guard off and forget the allow-list (tests and tools only; ModelManager never does).
    Kernel mode, once applied, stays: it is irreversible."""
    with LOCK:
        STATE.on = STATE.activated = False
        patches.restore_all()
        switches.restore()
        imports.uninstall()
        STATE.entries.clear()
        STATE.names.clear()
        STATE.addrs.clear()
        STATE.networks.clear()
        STATE.pins.clear()
        STATE.localhost = None
        STATE.unguarded_sockets = []
        os.environ.pop(ENV_SWITCH, None)
        os.environ.pop(ENV_ALLOW, None)


@contextlib.contextmanager
def allowing(entries: Iterable[str]) -> Iterator[None]:
    """Add allow entries for the ``with`` block, then restore the previous allow-list (kernel mode,
    if on, is not widened: it allows only the ports it was applied with)."""
    entries = [entries] if isinstance(entries, str) else list(entries)
    parsed = [parse_allow(e) for e in entries]
    with LOCK:
        before = (dict(STATE.entries), set(STATE.names), set(STATE.addrs), list(STATE.networks))
    _activate(entries)
    try:
        yield
    finally:
        with LOCK:
            STATE.entries.clear()
            STATE.entries.update(before[0])
            STATE.names.clear()
            STATE.names.update(before[1])
            STATE.addrs.clear()
            STATE.addrs.update(before[2])
            STATE.networks[:] = before[3]
            for host, port in parsed:
                if port is not None:
                    STATE.pins.pop((host, port), None)
            os.environ[ENV_ALLOW] = ",".join(sorted(STATE.entries.values()))


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """Guard off for the ``with`` block (pytest's ``mm_allow_network`` marker), then back on."""
    entries = list(STATE.entries.values())
    was_on = STATE.activated
    deactivate()
    try:
        yield
    finally:
        if was_on:
            _activate(entries)


def _after_import(name: str) -> None:
    if name in switches.FLAG_MODULES and STATE.saved_env:
        switches.apply_flags(name)
    if name == "socket":
        sockets.install()
    elif name == "subprocess":
        children.install()
    elif name in GRPC_MODULES:
        _install_grpc()


def _install_grpc() -> None:
    if any(name in sys.modules for name in GRPC_MODULES):  # a process without gRPC never loads grpc_targets
        from model_manager.guard import grpc_targets

        grpc_targets.install()


def check_grpc_target(target: object) -> None:
    """Refuse a gRPC target (``host:port``, ``dns:///``, ``ipv4:`` ...) that reaches what is not allowed."""
    from model_manager.guard.grpc_targets import check_grpc_target as check

    check(target)


# ---------------------------------------------------------------- kernel mode
def _ports(values: Iterable[object], field: str) -> list[int]:
    ports = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise InvalidModelSpec(f"{field}: {value!r} is not a TCP port from 1 to 65535", field=field)
        ports.append(value)
    return ports


def _env_ports() -> list[int]:
    raw = [p.strip() for p in os.environ.get(ENV_KERNEL_PORTS, "").split(",") if p.strip()]
    if not all(p.isascii() and p.isdigit() for p in raw):
        raise InvalidModelSpec(f"{ENV_KERNEL_PORTS}={os.environ[ENV_KERNEL_PORTS]!r}: write TCP ports "
                               "separated by commas, e.g. 8000,8001", field=ENV_KERNEL_PORTS)
    return _ports((int(p) for p in raw), ENV_KERNEL_PORTS)


def _apply_kernel(extra: list[int]) -> None:
    with LOCK:
        # once applied, kernel mode is asked for the same ports again (a no-op), never fewer:
        # narrowing it by a later, shorter allow-list would cut connections that worked
        ports = sorted({port for _, port in STATE.entries if port is not None} | set(extra) | set(STATE.kernel_ports))
        for name, port in sorted(STATE.names, key=str):
            if port is not None:  # resolve now: kernel mode refuses UDP, so DNS afterwards
                with contextlib.suppress(OSError):
                    checks.pinned(name, port)
        with contextlib.suppress(OSError):
            checks.localhost()
    try:
        from model_manager.guard import kernel as kernel_mode
    except ImportError as exc:
        raise KernelGuardUnavailable(f"kernel mode is not part of this installation ({exc})") from None
    kernel_mode.apply_kernel_mode(ports)
    STATE.kernel_ports = tuple(ports)
    os.environ[ENV_KERNEL] = "1"
    os.environ[ENV_KERNEL_PORTS] = ",".join(map(str, ports))


def kernel_ports() -> tuple[int, ...]:
    """The TCP ports kernel mode allows in this process (empty: kernel mode was not applied here)."""
    return STATE.kernel_ports


# ---------------------------------------------------------------- what the guard knows
def is_active() -> bool:
    return STATE.activated


def allowed() -> tuple[str, ...]:
    """The allow-list entries as given, sorted."""
    return tuple(sorted(STATE.entries.values()))


def blocked_attempts() -> tuple[BlockedAttempt, ...]:
    """Every refusal so far in this process, including ones a library caught and swallowed."""
    with LOCK:
        return tuple(STATE.blocked)


def refusal_count() -> int:
    """How many refusals this process has made (never goes down, even after clearing)."""
    return STATE.refusals


def clear_blocked_attempts() -> None:
    with LOCK:
        STATE.blocked.clear()


def refused_imports() -> tuple[RefusedImport, ...]:
    """C network stacks whose import was refused (not counted as refusals: the importer may fall back)."""
    with LOCK:
        return tuple(STATE.refused_imports)


def set_context(name: str | None) -> None:
    """Label later refusals (the pytest plugin passes the test's node id)."""
    STATE.context = name


def cleared_proxies() -> tuple[str, ...]:
    """The proxy variables activation removed from the environment (restored by ``deactivate``)."""
    return tuple(sorted(STATE.proxies))


def unguarded_stacks() -> tuple[str, ...]:
    """C network stacks loaded in this process: imported before the guard, or while it was off."""
    return stacks.unguarded()


def unguarded_sockets() -> tuple[str, ...]:
    """Sockets to neither loopback nor the allow-list (and raw/packet sockets) that were open when
    the guard came on and still are: their traffic is never checked."""
    if not STATE.unguarded_sockets:
        return ()
    return tuple(s.describe() for s in STATE.unguarded_sockets if s.still_open())


def integrity_problems(*, quick: bool = False) -> list[str]:
    """What has been switched off or replaced behind the guard's back, or escapes it (empty when intact).

    ``quick=True`` (pytest_mm, after every test) leaves out what only code reaching into the guard
    can change: the attributes of the guard's modules are compared only if one was assigned or
    deleted since they last compared intact (a write straight into a module's ``__dict__`` is not
    counted), and what the wrappers and the audit hook close over is not compared. The next full
    check sees those."""
    if not STATE.activated:
        return ["the guard is off"]
    if STATE.on and not STATE.unguarded_sockets and not patches.replaced(quick) and not integrity.problems(quick) \
            and not stacks.unguarded() and not switches.proxies_set():
        return []  # intact: the common case, checked after every test by pytest_mm
    out = [] if STATE.on else ["the guard's switch was turned off behind its back"]
    out += patches.replaced(quick) + integrity.problems(quick)
    out += list(unguarded_sockets())
    out += [f"{s} is loaded: a network stack in C the guard cannot see" for s in stacks.unguarded()]
    out += [f"proxy variable {n} is set again" for n in switches.proxies_set()]
    return out


integrity.seal(sys.modules[__name__], ("check_endpoint", "check_resolve", "check_grpc_target"))
