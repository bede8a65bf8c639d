"""The audit hook (``sys.addaudithook``): what the Python layer cannot see.

gevent sockets, saved references to the original socket methods, ``_socket`` used directly, a
reloaded ``socket`` module, socket creation of any family, and child processes all raise audit
events. The hook is permanent (Python cannot remove one) and runs for every audited event of
the process (``open()``, imports, ``sys._getframe`` ...), so its first statement rejects every
event but the dozen it handles with one set probe; a loopback ``connect`` by literal address is
decided inline, without a further call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from model_manager.guard import checks, children
from model_manager.guard.addresses import DNS_PORTS, LOOPBACK_FAST, name_key, port_or_none, text
from model_manager.guard.state import STATE

Handler = Callable[[tuple[Any, ...]], None]


def handlers() -> dict[str, Handler]:
    """Audit event name -> handler (closures over the checks as they are now)."""
    check_address, check_family, check_resolve = checks.check_address, checks.check_family, checks.check_resolve
    check_reverse, pinned, on_process = checks.check_reverse, checks.pinned, children.on_event
    fast, names = LOOPBACK_FAST, STATE.names

    def on_new(args: tuple[Any, ...]) -> None:
        check_family(args[1], args[2], "audit")

    def on_connect(args: tuple[Any, ...]) -> None:
        check_address(args[0], args[1], "connect", "audit")

    def on_sendto(args: tuple[Any, ...]) -> None:
        if args[1] is not None:
            check_address(args[0], args[1], "sendto", "audit")

    def on_sendmsg(args: tuple[Any, ...]) -> None:
        if args[1] is not None:
            check_address(args[0], args[1], "sendmsg", "audit")

    def on_getaddrinfo(args: tuple[Any, ...]) -> None:
        host = args[0]
        if host is None or (host.__class__ is str and host in fast):
            return
        check_resolve(host, args[1], "getaddrinfo", "audit")
        key, port = name_key(text(host)), port_or_none(args[1])
        if port is not None and (key, port) in names:
            pinned(key, port)  # gevent resolves by itself: pin the addresses it will connect to

    def on_byname(args: tuple[Any, ...]) -> None:
        check_resolve(args[0], None, "gethostbyname", "audit")

    def on_byaddr(args: tuple[Any, ...]) -> None:
        check_reverse(args[0], None, "gethostbyaddr (reverse DNS)", "audit")

    def on_nameinfo(args: tuple[Any, ...]) -> None:
        sockaddr = args[0]
        if isinstance(sockaddr, tuple) and sockaddr:
            check_reverse(sockaddr[0], sockaddr[1] if len(sockaddr) > 1 else None,
                          "getnameinfo (reverse DNS)", "audit")

    return {
        "socket.__new__": on_new,
        "socket.connect": on_connect,
        "socket.sendto": on_sendto,
        "socket.sendmsg": on_sendmsg,
        "socket.getaddrinfo": on_getaddrinfo,
        "socket.gethostbyname": on_byname,
        "socket.gethostbyaddr": on_byaddr,
        "socket.getnameinfo": on_nameinfo,
        **{event: on_process(event) for event in children.EVENTS},
    }


def make_hook(table: dict[str, Handler]) -> Callable[[str, tuple[Any, ...]], None]:
    events = frozenset(table)
    state, fast, dns = STATE, LOOPBACK_FAST, DNS_PORTS

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in events and state.on:
            if event == "socket.connect":
                address = args[1]
                if address.__class__ is tuple and address[0] in fast and address[1] not in dns \
                        and address[0].__class__ is str and address[1].__class__ is int:
                    return
            table[event](args)

    return hook


HANDLERS: dict[str, Handler] = handlers()
HOOK: Callable[[str, tuple[Any, ...]], None] = make_hook(dict(HANDLERS))
