"""Pinned, offline, provable models for the video pipeline.

Importing this package is cheap: pydantic, PyYAML and numpy load only when the
name that needs them is first used (PEP 562).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import ModelManagerError

__all__ = ["ModelManager", "ModelManagerError", "ResolvedModelSpec", "RunContext", "errors"]
__version__ = "0.1.0"

_LAZY = {
    "ModelManager": "model_manager.manager",
    "ResolvedModelSpec": "model_manager.schema",
    "RunContext": "model_manager.schema",
}

if TYPE_CHECKING:
    from .manager import ModelManager
    from .schema import ResolvedModelSpec, RunContext


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'model_manager' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
