"""``activate(kernel=True)`` and ``MM_GUARD_KERNEL=1`` apply kernel mode (model_manager/guard/kernel.py)
with the allow-list's TCP ports, ``kernel_ports`` and ``MM_GUARD_KERNEL_PORTS``.

Kernel mode is irreversible: it is applied only in fresh child processes inside a private
network namespace. Skipped only while kernel.py is not in the tree.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path
from typing import Any

from helpers.netns import run_in_netns

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, os, socket, sys
from model_manager import guard
from model_manager.errors import InvalidModelSpec, KernelGuardUnavailable
from model_manager.guard import kernel
out = {}
def attempt(call):
    try:
        call()
        return "ok"
    except (InvalidModelSpec, KernelGuardUnavailable) as exc:
        return exc.code
if sys.argv[1] == "api":
    os.environ["MM_GUARD_KERNEL_PORTS"] = "18003,x"
    out["bad_env"] = attempt(lambda: guard.activate(["127.0.0.1:18001"], kernel=True))
    out["bad_port"] = attempt(lambda: guard.activate(kernel=True, kernel_ports=[0]))
    out["kernel_before"] = kernel.kernel_mode_active()
    os.environ["MM_GUARD_KERNEL_PORTS"] = "18003"
    out["apply"] = attempt(lambda: guard.activate(["127.0.0.1:18001", "localhost:18002", "192.0.2.0/24"],
                                                  kernel=True, kernel_ports=[18004]))
else:  # the environment switch, as a spawned child with the startup hook sees it
    out["apply"] = attempt(guard.activate_from_env)
out["ports"] = list(guard.kernel_ports())
out["kernel"] = kernel.kernel_mode_active()
out["env"] = [os.environ.get("MM_GUARD_KERNEL"), os.environ.get("MM_GUARD_KERNEL_PORTS")]
def connect(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port))
out["listed"], out["unlisted"] = connect(18001), connect(18005)
print(json.dumps(out))
"""


def _child(mode: str, **env: str) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MM_NETWORK_GUARD", "MM_GUARD"))}
    proc = run_in_netns([sys.executable, "-c", CHILD, mode], env={**base, **env}, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_activate_kernel_true_applies_kernel_mode_with_the_allow_lists_ports() -> None:
    out = _child("api")
    assert out["bad_env"] == "invalid_model_spec" and out["bad_port"] == "invalid_model_spec"
    assert out["kernel_before"] is False  # a malformed port list applied nothing
    assert out["apply"] == "ok" and out["kernel"] is True
    assert out["ports"] == [18001, 18002, 18003, 18004]  # a network without a port adds none
    assert out["env"] == ["1", "18001,18002,18003,18004"]
    assert out["listed"] == errno.ECONNREFUSED  # allowed by the kernel; nothing listens
    assert out["unlisted"] == errno.EACCES      # refused by the kernel itself


def test_mm_guard_kernel_applies_kernel_mode_to_every_activation() -> None:
    out = _child("env", MM_NETWORK_GUARD="1", MM_NETWORK_GUARD_ALLOW="127.0.0.1:18001",
                 MM_GUARD_KERNEL="1", MM_GUARD_KERNEL_PORTS="18006")
    assert out["apply"] == "ok" and out["kernel"] is True and out["ports"] == [18001, 18006]
    assert (out["listed"], out["unlisted"]) == (errno.ECONNREFUSED, errno.EACCES)
