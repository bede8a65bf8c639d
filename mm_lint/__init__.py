"""mm_lint: find model downloads and network calls before they ship.

Importing this package is cheap: the catalogue rules, the parser work and
libcst (only for ``--fix``/``--diff``) load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # one version for the project: the installed package's metadata
        from model_manager.version import version

        return version()
    raise AttributeError(f"module 'mm_lint' has no attribute {name!r}")
