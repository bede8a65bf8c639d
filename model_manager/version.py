"""The one version of model-manager (and mm-lint, pytest_mm): the installed package's metadata."""

from __future__ import annotations

from functools import cache


@cache
def version() -> str:
    """``pyproject.toml``'s version as installed; ``0+unknown`` when run from a checkout never installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("model-manager")
    except PackageNotFoundError:
        return "0+unknown"
