"""Helpers of the network guard that hold no guard state: allow-list parsing, the offline
switches, the post-import hook, download-program detection, gRPC targets, the startup hook.

Standard library only (plus the pure-data ``policy``). ``guard.py`` is the entry point.
"""

from __future__ import annotations

import argparse
import functools
import importlib.abc
import ipaddress
import os
import re
import shlex
import sys
import sysconfig
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from model_manager.errors import InvalidModelSpec, NetworkAccessForbidden
from model_manager.policy import (
    CATALOGUE,
    DOWNLOAD_PROGRAMS,
    GIT_NETWORK_SUBCOMMANDS,
    OFFLINE_ENV,
    OFFLINE_MODULE_FLAGS,
)

#: packages named as "the calling library" in refusals (outermost one on the stack wins)
KNOWN_LIBRARIES: frozenset[str] = frozenset(
    m for entry in CATALOGUE for m in entry.modules if m not in ("os", "subprocess")
) | {"tritonclient", "geventhttpclient", "grpc", "httpcore", "anyio", "smtplib", "xmlrpc",
     "pip", "botocore", "boto3", "fsspec", "gcsfs", "s3fs", "dns", "gevent"}

PROCESS_EVENTS: tuple[str, ...] = ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system")
PTH_NAME = "model_manager_network_guard.pth"
PTH_LINE = ("import os; os.environ.get('MM_NETWORK_GUARD') == '1' and "
            "__import__('model_manager.guard').guard.activate_from_env()\n")


@dataclass(frozen=True, slots=True)
class BlockedAttempt:
    op: str              # connect, sendto, getaddrinfo, grpc channel, starting download program ...
    host: str            # host, address, or the program name
    port: int | None
    library: str         # the module that asked, e.g. "requests.api"
    chain: str           # top-level packages on the stack, innermost first
    layer: str           # "python", "audit", "grpc", "subprocess"
    context: str | None  # the pytest node id, when the plugin runs
    pid: int
    when: float


# ---------------------------------------------------------------- addresses
def ip_or_none(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    ip = ip_or_none(host)
    if ip is None:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def port_or_none(port: object) -> int | None:
    if isinstance(port, int):
        return port
    if isinstance(port, (str, bytes)) and port.isdigit():
        return int(port)
    return None


def text(host: object) -> str:
    return host.decode("ascii", "replace") if isinstance(host, (bytes, bytearray)) else str(host)


def parse_allow(entry: object) -> tuple[str, int]:
    """``"host:port"`` (also ``[v6]:port`` or ``http://host:port``) -> (host, port), else error."""
    def bad(why: str) -> NoReturn:
        raise InvalidModelSpec(
            f"network allow-list entry {entry!r}: {why}", field="allow",
            hint="write host:port, e.g. 'localhost:8000', 'triton:8000' or '[::1]:8001'")

    if not isinstance(entry, str):
        bad(f"expected a 'host:port' string, got {type(entry).__name__}")
    body = entry.strip()
    if body != entry or not body:
        bad("empty or surrounded by whitespace")
    for scheme in ("http://", "https://", "grpc://"):
        if body.lower().startswith(scheme):
            body = body[len(scheme):].rstrip("/")
    if any(c in body for c in "/@?#* \t,"):
        bad("only host:port is allowed (no path, user, wildcard, space or list)")
    if body.startswith("["):
        host, sep, port_text = body[1:].partition("]:")
        if not sep or ip_or_none(host) is None:
            bad("an IPv6 address is written in brackets with a port: '[::1]:8001'")
    else:
        host, sep, port_text = body.rpartition(":")
        if not sep:
            bad("no port: write host:port")
        if ":" in host:
            bad("an IPv6 address needs brackets: '[::1]:8001'")
    if not host:
        bad("no host")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        bad(f"port {port_text!r} is not a number from 1 to 65535")
    ip = ip_or_none(host)
    if ip is not None:
        if ip.is_unspecified or ip.is_multicast:
            bad("an unspecified or multicast address names no server")
        return ip.compressed, int(port_text)
    if not all(part and len(part) < 64 and part.replace("-", "").replace("_", "").isalnum()
               for part in host.split(".")):
        bad(f"{host!r} is not a valid hostname")
    return host.lower(), int(port_text)


def grpc_endpoints(target: str) -> list[tuple[str, int | None]]:
    """The (host, port) pairs a gRPC target string makes the C core reach (unix: none)."""
    t = str(target).strip()
    if t.startswith(("unix:", "unix-abstract:", "vsock:")):
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


# ---------------------------------------------------------------- child processes
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "fish", "busybox"})
_WRAPPERS = frozenset({"env", "sudo", "nohup", "exec", "command", "nice", "stdbuf", "xargs", "time",
                       "timeout", "setsid", "chronic", "unbuffer"})
_SEGMENT = re.compile(r"\$\(|[;&|\n()`]")


def download_program(event: str, args: tuple[Any, ...]) -> str | None:
    """The download program an audited process event would start, or None."""
    if event == "os.system":
        return _scan_shell(text(args[0]))
    argv: Any = args[2] if event == "os.spawn" else args[1]
    if isinstance(argv, (str, bytes, os.PathLike)) or argv is None:
        argv = [argv if argv is not None else args[0]]
    words = [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else str(a) for a in argv]
    return _scan_argv(words)


def _scan_argv(words: list[str]) -> str | None:
    while words and (words[0] in _WRAPPERS or os.path.basename(words[0]) in _WRAPPERS
                     or ("=" in words[0] and not words[0].startswith("-"))):
        words = words[1:]
        while words and (words[0].startswith("-") or words[0][:1].isdigit()):
            words = words[1:]
    if not words:
        return None
    prog = os.path.basename(words[0])
    if prog in _SHELLS and "-c" in words[1:]:
        i = words.index("-c", 1)
        return _scan_shell(words[i + 1]) if i + 1 < len(words) else None
    if prog in DOWNLOAD_PROGRAMS:
        return prog
    if prog == "git":
        rest = iter(words[1:])
        for word in rest:
            if word in ("-C", "-c", "--git-dir", "--work-tree", "--namespace"):
                next(rest, None)
            elif not word.startswith("-"):
                return f"git {word}" if word in GIT_NETWORK_SUBCOMMANDS else None
        return None
    if prog.startswith("python") and "-m" in words and words.index("-m") + 1 < len(words):
        module = words[words.index("-m") + 1]
        return module if module in DOWNLOAD_PROGRAMS else None
    return None


def _scan_shell(command: str) -> str | None:
    for segment in _SEGMENT.split(command):
        try:
            words = shlex.split(segment)
        except ValueError:
            words = segment.split()
        found = _scan_argv(words)
        if found:
            return found
    return None


# ---------------------------------------------------------------- offline switches
_saved_env: dict[str, str | None] = {}
_saved_flags: dict[tuple[str, str], object] = {}
_MISSING = object()


def apply_offline_switches() -> None:
    """Set the offline environment (read at import) and the flags of already-imported libraries."""
    for key, value in OFFLINE_ENV.items():
        _saved_env.setdefault(key, os.environ.get(key))
        os.environ[key] = value
    for module in {m for m, _, _ in OFFLINE_MODULE_FLAGS}:
        if module in sys.modules:
            _apply_flags(module)


def _apply_flags(module_name: str) -> None:
    module = sys.modules.get(module_name)
    for name, attr, value in OFFLINE_MODULE_FLAGS:
        if name == module_name and module is not None and hasattr(module, attr):
            _saved_flags.setdefault((name, attr), getattr(module, attr, _MISSING))
            setattr(module, attr, value)


def restore_offline_switches() -> None:
    for key, old in _saved_env.items():
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old
    for (name, attr), flag in _saved_flags.items():
        module = sys.modules.get(name)
        if module is not None and flag is not _MISSING:
            setattr(module, attr, flag)
    _saved_env.clear()
    _saved_flags.clear()


# ---------------------------------------------------------------- post-import hook
_WATCHED = frozenset({"socket", "grpc", "grpc.aio"} | {m for m, _, _ in OFFLINE_MODULE_FLAGS})
_callback: list[Callable[[str], None]] = []
_busy = threading.local()


def _after_import(name: str) -> None:
    if _saved_env:  # switches are on: a library imported now gets its offline flags too
        _apply_flags(name)
    for callback in _callback:
        callback(name)


def _find_spec(name: str, path: Any = None, target: Any = None) -> Any:
    if name not in _WATCHED or getattr(_busy, "on", False):
        return None
    _busy.on = True
    try:
        spec = next((s for f in sys.meta_path if f is not _FINDER and hasattr(f, "find_spec")
                     for s in [f.find_spec(name, path, target)] if s is not None), None)
    finally:
        _busy.on = False
    loader = getattr(spec, "loader", None)
    if spec is None or not isinstance(loader, importlib.abc.Loader) or isinstance(loader, type):
        return spec
    original = loader.exec_module

    @functools.wraps(original)
    def exec_module(module: types.ModuleType) -> None:
        original(module)
        _after_import(name)

    loader.exec_module = exec_module  # type: ignore[method-assign]
    return spec


_FINDER = types.SimpleNamespace(find_spec=_find_spec)  # a meta-path finder needs only find_spec


def install_import_hook(callback: Callable[[str], None]) -> None:
    """Run ``callback(module_name)`` after each watched module (re)loads; now for loaded ones."""
    if callback not in _callback:
        _callback.append(callback)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    for name in sorted(_WATCHED & set(sys.modules)):
        _after_import(name)


def uninstall_import_hook() -> None:
    _callback.clear()
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def patch_grpc(module: types.ModuleType, check: Callable[[str], None]) -> None:
    """Wrap the channel factories: gRPC's C core resolves and connects where no hook sees it."""
    for attr in ("insecure_channel", "secure_channel"):
        original = getattr(module, attr, None)
        if original is None or getattr(original, "__mm_guard__", False):
            continue

        def channel(target: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            check(str(target))
            return __original(target, *args, **kwargs)

        functools.update_wrapper(channel, original)
        channel.__mm_guard__ = True  # type: ignore[attr-defined]
        setattr(module, attr, channel)


# ---------------------------------------------------------------- spawned children
def install_startup_hook(site_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write a .pth file so every Python started with MM_NETWORK_GUARD=1 activates the guard."""
    folder = Path(site_dir) if site_dir is not None else Path(sysconfig.get_paths()["purelib"])
    path = folder / PTH_NAME
    path.write_text(PTH_LINE, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_manager.guard.support",
                                     description="Carry the network guard to spawned Python children.")
    parser.add_argument("--install-startup-hook", action="store_true",
                        help=f"write {PTH_NAME} into --site-dir (default: this environment's site-packages)")
    parser.add_argument("--site-dir", default=None)
    args = parser.parse_args(argv)
    if not args.install_startup_hook:
        parser.print_help()
        return 2
    print(install_startup_hook(args.site_dir))
    return 0


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


_SKIP_MODULES = frozenset({"socket", "_socket", "ssl", "selectors", "model_manager"})
_PLUMBING = frozenset({"threading", "concurrent", "runpy", "importlib", "contextlib", "functools",
                       "_pytest", "pytest", "pluggy", "xdist", "execnet", "unittest", "asyncio"})


def calling_library(frame: Any) -> tuple[str, str]:
    """The library behind a refused call (outermost known one, else first non-plumbing module) and the chain."""
    chain: list[str] = []
    outer_known: str | None = None
    first_other: str | None = None
    while frame is not None:
        name = str(frame.f_globals.get("__name__", "?"))
        top = name.partition(".")[0]
        if top not in _SKIP_MODULES:
            if not chain or chain[-1] != top:
                chain.append(top)
            if top in KNOWN_LIBRARIES:
                outer_known = name
            elif first_other is None and top not in _PLUMBING:
                first_other = name
        frame = frame.f_back
    library = outer_known or first_other or (chain[0] if chain else "<unknown>")
    return library, " <- ".join(chain[:8])


if __name__ == "__main__":
    sys.exit(main())

