"""Carry the guard to spawned Python children: a ``.pth`` line that activates it at startup.

Every Python started with ``MM_NETWORK_GUARD=1`` in its environment and this file in its
site-packages activates the guard (and kernel mode, with ``MM_GUARD_KERNEL=1``) before user
code runs. It cannot cover an interpreter started with ``-S`` or ``-I``, with an environment
that drops the variable, or from another installation: see docs/network-guard.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
from pathlib import Path

PTH_NAME = "model_manager_network_guard.pth"
PTH_LINE = ("import os; os.environ.get('MM_NETWORK_GUARD') == '1' and "
            "__import__('model_manager.guard').guard.activate_from_env()\n")


def install_startup_hook(site_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write a .pth file so every Python started with MM_NETWORK_GUARD=1 activates the guard."""
    folder = Path(site_dir) if site_dir is not None else Path(sysconfig.get_paths()["purelib"])
    path = folder / PTH_NAME
    path.write_text(PTH_LINE, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_manager.guard.startup",
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


if __name__ == "__main__":
    sys.exit(main())
