"""Pinned, offline, provable models for the video pipeline.

Importing this package is cheap: pydantic, PyYAML and numpy load only when the
name that needs them is first used (PEP 562).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from model_manager.errors import ModelManagerError

__all__ = ["ModelManager", "ModelManagerError", "ResolvedModelSpec", "RunContext", "__version__", "errors"]

_LAZY = {
    "ModelManager": "model_manager.manager",
    "ResolvedModelSpec": "model_manager.mapping.schema",
    "RunContext": "model_manager.mapping.schema",
}

if TYPE_CHECKING:
    from model_manager.manager import ModelManager
    from model_manager.mapping.schema import ResolvedModelSpec, RunContext


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from model_manager.version import version

        return version()
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'model_manager' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
