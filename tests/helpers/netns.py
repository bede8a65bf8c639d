"""Run a command inside a private network namespace that has only loopback.

Every test that aims at a non-loopback address or a public name goes through here.
``unshare --net`` makes the namespace, the child brings ``lo`` up and checks that
``lo`` is the only interface and that there is no route off it before it runs
anything; if any step fails the caller gets ``NetnsUnavailable`` (the test fails),
never a run on the real network. Optional ``hosts`` entries are bind-mounted over
/etc/hosts in a private mount namespace, so names resolve without any DNS.

To make an escape observable rather than merely failing, ``addresses`` (e.g. the documentation
addresses ``192.0.2.1/32``, ``2001:db8::1/128``) are added to ``lo`` inside the namespace, so a
listener there counts what arrives; ``nameserver`` bind-mounts a resolv.conf that points every
DNS query at that address (a listener there sees each query that leaves).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

_INSIDE_FAILED = 97


class NetnsUnavailable(RuntimeError):
    """The private namespace could not be made or was not private: nothing was run."""


def run_in_netns(argv: Sequence[str], *, hosts: Mapping[str, str] | None = None,
                 timeout: float = 120, env: Mapping[str, str] | None = None,
                 cwd: str | os.PathLike[str] | None = None, addresses: Sequence[str] = (),
                 nameserver: str | None = None) -> subprocess.CompletedProcess[str]:
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("ip") is None:
        raise NetnsUnavailable("`unshare` or `ip` is missing: cannot make a private network namespace")
    with tempfile.TemporaryDirectory(prefix="mm-netns-") as tmp:
        inner = [sys.executable, str(Path(__file__).resolve()), "--inside"]
        if hosts:
            hosts_file = Path(tmp, "hosts")
            lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"]
            lines += [f"{ip} {name}" for name, ip in hosts.items()]
            hosts_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
            inner += ["--hosts", str(hosts_file)]
        if nameserver:
            resolv = Path(tmp, "resolv.conf")
            resolv.write_text(f"nameserver {nameserver}\noptions timeout:1 attempts:1\n", encoding="utf-8")
            inner += ["--resolv", str(resolv)]
        for address in addresses:
            inner += ["--addr", address]
        flags = ["--net", "--mount"] if hosts or nameserver else ["--net"]
        proc = subprocess.run([unshare, *flags, "--", *inner, "--", *argv], capture_output=True,
                              text=True, timeout=timeout, env=dict(env) if env is not None else None,
                              cwd=cwd)
    if proc.returncode == _INSIDE_FAILED or "unshare:" in proc.stderr[:200]:
        raise NetnsUnavailable(f"private network namespace not available (rc {proc.returncode}): "
                               f"{proc.stderr.strip()[-2000:]}")
    return proc


def _inside(args: list[str]) -> None:
    hosts = resolv = None
    addresses: list[str] = []
    while args[:1] in (["--hosts"], ["--resolv"], ["--addr"]):
        if args[0] == "--hosts":
            hosts = args[1]
        elif args[0] == "--resolv":
            resolv = args[1]
        else:
            addresses.append(args[1])
        args = args[2:]
    assert args[:1] == ["--"], args
    argv = args[1:]
    try:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
        names = sorted(name for _, name in socket.if_nameindex())
        if names != ["lo"]:
            raise RuntimeError(f"interfaces in the namespace are {names}, expected only ['lo']")
        for family in ("-4", "-6"):
            routes = subprocess.run(["ip", family, "route", "show", "table", "main"], check=True,
                                    capture_output=True, text=True).stdout.strip()
            if routes and any("dev lo" not in line for line in routes.splitlines()):
                raise RuntimeError(f"a route leaves loopback: {routes!r}")
        for address in addresses:
            v6 = ["-6"] if ":" in address else []
            subprocess.run(["ip", *v6, "addr", "add", address, "dev", "lo", *(["nodad"] if v6 else [])],
                           check=True, capture_output=True)
        if hosts:
            subprocess.run(["mount", "--bind", hosts, "/etc/hosts"], check=True, capture_output=True)
        if resolv:
            subprocess.run(["mount", "--bind", resolv, "/etc/resolv.conf"], check=True, capture_output=True)
    except Exception as exc:
        print(f"netns setup failed: {exc}", file=sys.stderr)
        sys.exit(_INSIDE_FAILED)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inside"]:
        _inside(sys.argv[2:])
    else:
        print(run_in_netns(sys.argv[1:]).stdout, end="")
