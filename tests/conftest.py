"""Shared fixtures: a real models root with tiny files, a valid mapping, a run context.

The data behind them lives in ``tests/helpers`` (on ``sys.path`` through pytest's ``pythonpath``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.mappings import FLOW_BYTES, RUN_CONTEXT, make_mapping


@pytest.fixture
def mapping() -> dict[str, Any]:
    return make_mapping()


@pytest.fixture
def run_context() -> dict[str, str]:
    return dict(RUN_CONTEXT)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the user's real digest cache."""
    cache = tmp_path_factory.mktemp("mm-cache")
    monkeypatch.setenv("MM_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def models_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "models"
    (root / "optical_flow").mkdir(parents=True)
    (root / "optical_flow" / "raft_small.onnx").write_bytes(FLOW_BYTES)
    monkeypatch.setenv("MM_MODELS_ROOT", str(root))
    return root
