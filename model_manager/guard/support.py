"""Former home of the guard's helpers, kept so older imports and the documented command keep working:

    python -m model_manager.guard.support --install-startup-hook [--site-dir DIR]

New code imports from the modules named below.
"""

from __future__ import annotations

import sys
from typing import Any

from model_manager.guard.addresses import ip_or_none, is_loopback, parse_allow, port_or_none, text
from model_manager.guard.children import scan_event
from model_manager.guard.grpc_targets import grpc_endpoints
from model_manager.guard.record import BlockedAttempt, calling_library, find_refusal
from model_manager.guard.startup import PTH_LINE, PTH_NAME, install_startup_hook
from model_manager.guard.startup import main as _main

__all__ = ["PTH_LINE", "PTH_NAME", "BlockedAttempt", "calling_library", "download_program", "find_refusal",
           "grpc_endpoints", "install_startup_hook", "ip_or_none", "is_loopback", "main", "parse_allow",
           "port_or_none", "text"]


def download_program(event: str, args: tuple[Any, ...]) -> str | None:
    """The program an audited process event would start that reaches the network, or None."""
    finding = scan_event(event, args)
    return finding.program if finding is not None else None


def main(argv: list[str] | None = None) -> int:
    return _main(argv, prog="python -m model_manager.guard.support")


if __name__ == "__main__":
    sys.exit(main())
