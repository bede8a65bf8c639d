"""gRPC: its C core resolves and connects where no Python layer sees it, so the target string and
the channel's proxy option are checked before the core gets them.

The check sits on ``Channel.__init__`` of ``grpc._channel`` and ``grpc.aio._channel`` (class
level): factories taken before activation (``from grpc import insecure_channel``) and direct
``Channel(...)`` calls go through it too. ``cygrpc.Channel`` used directly is not covered.
The guard loads this module with gRPC's first channel module and it seals itself then.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from model_manager.guard import GRPC_MODULES, integrity
from model_manager.guard.addresses import port_or_none
from model_manager.guard.checks import check_endpoint
from model_manager.guard.patches import ours, put
from model_manager.guard.record import refuse
from model_manager.guard.state import STATE

#: schemes whose target never names a host on the network
LOCAL_SCHEMES = ("unix:", "unix-abstract:")
#: schemes the guard cannot judge: vsock reaches the hypervisor host, xDS and c2p ask a control plane
REFUSED_SCHEMES = ("vsock:", "xds:", "google-c2p:", "c2p:")
MODULES = GRPC_MODULES


def grpc_endpoints(target: str) -> list[tuple[str, int | None]]:
    """The (host, port) pairs a gRPC target string makes the C core reach (unix: none)."""
    t = str(target).strip()
    if t.startswith(LOCAL_SCHEMES):
        return []
    pairs: list[tuple[str, int | None]] = []
    if t.startswith("dns:"):
        t = t[4:]
        if t.startswith("//"):
            authority, _, t = t[2:].partition("/")
            if authority:  # a DNS server named in the target: the C resolver queries it
                pairs.append(_host_port(authority, 53))
        pairs.append(_host_port(t, 443))
    elif t.startswith(("ipv4:", "ipv6:")):
        pairs.extend(_host_port(a, 443) for a in t[5:].split(",") if a)
    else:
        pairs.append(_host_port(t, 443))
    return pairs


def _host_port(hostport: str, default: int) -> tuple[str, int | None]:
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        return host, port_or_none(rest[1:]) if rest.startswith(":") else default
    if hostport.count(":") > 1:
        return hostport, default  # bare IPv6 address
    host, sep, port = hostport.partition(":")
    return host, port_or_none(port) if sep else default


def check_grpc_target(target: object) -> None:
    """Refuse a channel target that reaches anything but loopback or the allow-list."""
    if not STATE.on:
        return
    text = target.decode("utf-8", "replace") if isinstance(target, (bytes, bytearray)) else str(target)
    scheme = text.strip().lower()
    if scheme.startswith(REFUSED_SCHEMES):
        refuse(f"grpc channel (a {scheme.partition(':')[0]}: target)", text, None, "grpc")
    for host, port in grpc_endpoints(text):
        check_endpoint(host, port, "grpc channel", "grpc")


def check_grpc_options(options: object) -> None:
    """A channel whose ``grpc.http_proxy`` option names a proxy outside the allow-list."""
    if not STATE.on or not options:
        return
    settings: dict[str, Any] = {}
    try:
        for key, value in options:  # type: ignore[attr-defined]
            settings[str(key)] = value
    except (TypeError, ValueError):
        return  # gRPC itself refuses malformed options
    if settings.get("grpc.enable_http_proxy", 1) in (0, False) or not settings.get("grpc.http_proxy"):
        return
    proxy = str(settings["grpc.http_proxy"]).rpartition("://")[2]
    proxy = proxy.partition("/")[0].rpartition("@")[2]
    host, port = _host_port(proxy, 80)
    check_endpoint(host, port, "grpc channel through the proxy in its grpc.http_proxy option", "grpc")


def _channel_init(original: Any) -> Callable[..., Any]:
    check_target, check_options = check_grpc_target, check_grpc_options

    def __init__(self: Any, target: Any, options: Any = (), *args: Any, **kwargs: Any) -> None:
        check_target(target)
        check_options(options)
        original(self, target, options, *args, **kwargs)

    return __init__


def install() -> None:
    """Wrap ``Channel.__init__`` in the gRPC modules already imported (the post-import hook
    calls this again for one imported later)."""
    for name in MODULES:
        module = sys.modules.get(name)
        channel = getattr(module, "Channel", None)
        if isinstance(channel, type) and "__init__" in channel.__dict__ and not ours(channel, "__init__"):
            put(channel, "__init__", _channel_init(channel.__dict__["__init__"]))


integrity.seal_module(sys.modules[__name__])  # loaded on first use: sealed now, as the others at import
