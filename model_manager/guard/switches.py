"""What the guard sets in the environment: offline switches on, proxy variables off.

Offline switches (policy.OFFLINE_ENV) make the Hugging Face libraries refuse before they open a
socket; libraries imported before the guard cached them, so their module flags are set too.
Proxy variables (every ``*_proxy``, any case: ``https_proxy``, ``HTTP_PROXY``, ``ALL_PROXY``,
``grpc_proxy``, ``no_proxy`` ...) are removed: with one set, gRPC's C core dials the proxy even
for an allowed target, and a forward proxy on loopback would fetch any host for any HTTP
client. ``deactivate()`` puts both back as they were.
"""

from __future__ import annotations

import os
import sys

from model_manager.guard.state import STATE
from model_manager.policy import OFFLINE_ENV, OFFLINE_MODULE_FLAGS

_MISSING = object()
FLAG_MODULES = frozenset(m for m, _, _ in OFFLINE_MODULE_FLAGS)


def is_proxy_variable(name: str) -> bool:
    return name.lower().endswith("_proxy")


def apply() -> None:
    """Offline environment on, proxy variables cleared, flags of imported libraries set."""
    for key, value in OFFLINE_ENV.items():
        STATE.saved_env.setdefault(key, os.environ.get(key))
        os.environ[key] = value
    for name in [n for n in os.environ if is_proxy_variable(n)]:
        STATE.proxies.setdefault(name, os.environ[name])
        del os.environ[name]
    for module in sorted(FLAG_MODULES & set(sys.modules)):
        apply_flags(module)
    _drop_cached_urllib_proxies()


def apply_flags(module_name: str) -> None:
    module = sys.modules.get(module_name)
    for name, attr, value in OFFLINE_MODULE_FLAGS:
        if name == module_name and module is not None and hasattr(module, attr):
            STATE.saved_flags.setdefault((name, attr), getattr(module, attr, _MISSING))
            setattr(module, attr, value)


def _drop_cached_urllib_proxies() -> None:
    # urlopen() builds its default opener once, with the proxies of that moment
    request = sys.modules.get("urllib.request")
    opener = getattr(request, "_opener", None)
    if request is not None and opener is not None and any(
            isinstance(h, request.ProxyHandler) and h.proxies for h in getattr(opener, "handlers", ())):
        request.install_opener(None)


def restore() -> None:
    for key, old in STATE.saved_env.items():
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old
    for name, value in STATE.proxies.items():
        os.environ.setdefault(name, value)
    for (name, attr), flag in STATE.saved_flags.items():
        module = sys.modules.get(name)
        if module is not None and flag is not _MISSING:
            setattr(module, attr, flag)
    STATE.saved_env.clear()
    STATE.saved_flags.clear()
    STATE.proxies.clear()


def proxies_set() -> list[str]:
    """Proxy variables set again while the guard is on."""
    # os.environ decodes every key it yields; its bytes mapping does not (this runs after every test)
    raw = getattr(os.environ, "_data", None)
    if isinstance(raw, dict):
        names = tuple(raw)
        if names == STATE.env_names:  # as when last read without a proxy variable (mostly the same objects)
            return []
        try:
            if b"_proxy\0" not in (b"\0".join(names) + b"\0").lower():
                STATE.env_names = names
                return []
        except TypeError:  # not the bytes mapping of CPython on POSIX
            pass
    return sorted(name for name in os.environ if is_proxy_variable(name))
