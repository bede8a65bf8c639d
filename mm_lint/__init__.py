"""mm_lint: find model downloads and network calls before they ship.

Importing this package is cheap: the catalogue rules, the parser work and
libcst (only for ``--fix``/``--diff``) load on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
