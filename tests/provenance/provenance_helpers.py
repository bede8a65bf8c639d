"""Helpers the provenance tests share (fixtures are in conftest.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from model_manager.errors import ModelManagerError


def codes(problems: list[ModelManagerError]) -> list[str]:
    return sorted(p.code for p in problems)


def edit_manifest(run_dir: Path, change: Any) -> None:
    path = run_dir / "manifest.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def record_as_is(run_dir: Path, name: str, component: str) -> None:
    """Record ``name`` with its current bytes, as a writer with a bug (or a careful forger) would."""
    data = (run_dir / name).read_bytes()
    entry = {"component": component, "sha256": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}
    edit_manifest(run_dir, lambda doc: doc["outputs"].__setitem__(name, entry))
