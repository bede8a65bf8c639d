"""A recorded run: manifest.json plus one output per component, written through the public API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_manager import ModelManager
from model_manager.provenance import save_output, write_manifest


@pytest.fixture
def mm(models_root: object, mapping: dict[str, Any], run_context: dict[str, str]) -> ModelManager:
    return ModelManager(run_context, mapping)


@pytest.fixture
def run_dir(tmp_path: Path, mm: ModelManager) -> Path:
    out = tmp_path / "run"
    write_manifest(out, mm.run_record())
    for component in mm.components:
        save_output(out, f"{component}.npz", mm.npz_meta_for(component), features=np.ones((2, 3), np.float32))
    return out
