"""The audit-hook half of the network guard: what the Python-level wrappers cannot see.

gevent sockets, saved references to the original socket methods, ``_socket`` used
directly, a reloaded ``socket`` module, and download programs started as children all
raise audit events. ``guard.py`` owns the state and the hook itself (its hot path is
inlined there); the handlers here get the guard module and use its checks.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from model_manager.guard import support as _support

Handler = Callable[[tuple[Any, ...]], None]


def handlers(g: types.ModuleType) -> dict[str, Handler]:
    """Audit event name -> handler, bound to the guard module ``g``."""
    text, port = _support.text, _support.port_or_none

    def on_connect(args: tuple[Any, ...]) -> None:
        address = args[1]
        if address.__class__ is not tuple or address[0] not in g._LOOPBACK_FAST or address[1] in g._DNS_PORTS:
            g._check_address(address, "connect", "audit")

    def on_send(args: tuple[Any, ...]) -> None:
        if args[1] is not None:
            g._check_address(args[1], "sendto", "audit")

    def on_getaddrinfo(args: tuple[Any, ...]) -> None:
        host = args[0]
        if host is None or host in g._LOOPBACK_FAST or getattr(g._tls, "resolving", False):
            return
        g.check_resolve(host, args[1], "getaddrinfo", "audit")
        p = port(args[1])
        if p is not None and (text(host).lower().rstrip("."), p) in g._allowed_names:
            g._pinned(text(host), p)  # gevent resolves by itself: pin the addresses it will connect to

    def on_byname(args: tuple[Any, ...]) -> None:
        if not getattr(g._tls, "resolving", False):
            g.check_resolve(args[0], None, "gethostbyname", "audit")

    def on_byaddr(args: tuple[Any, ...]) -> None:
        if not _support.is_loopback(text(args[0])) and text(args[0]) != "localhost":
            g._refuse("gethostbyaddr (reverse DNS)", text(args[0]), None, "audit")

    def on_process(event: str) -> Handler:
        def check(args: tuple[Any, ...]) -> None:
            program = _support.download_program(event, args)
            if program is not None:
                g._refuse(f"starting download program {program!r} ({event})", program, None, "subprocess")
        return check

    return {
        "socket.connect": on_connect,
        "socket.sendto": on_send,
        "socket.sendmsg": on_send,
        "socket.getaddrinfo": on_getaddrinfo,
        "socket.gethostbyname": on_byname,
        "socket.gethostbyaddr": on_byaddr,
        "socket.getnameinfo": lambda a: on_byaddr((a[0][0],)) if isinstance(a[0], tuple) else None,
        **{event: on_process(event) for event in _support.PROCESS_EVENTS},
    }
