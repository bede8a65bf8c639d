"""`make demo`'s main job runs end to end on the bundled example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_demo_runs_and_audits(tmp_path: Path) -> None:
    env = dict(os.environ, MM_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("MM_MODELS_ROOT", None)
    result = subprocess.run([sys.executable, str(REPO / "examples" / "demo.py")], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "summary: OK" in result.stdout
    assert "example code linted (exit 0), licence inventory checked (exit 0)" in result.stdout
    run_dir = REPO / result.stdout.rsplit("written to ", 1)[1].strip()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert set(manifest["run"]["model_signatures"]) == {"core_clip", "core_optical_flow", "core_audio", "core_text"}
    assert len(list(run_dir.glob("*.npz"))) == 4
    # real inference in-process: ONNX Runtime sessions on the CPU, the torch role's safetensors weights
    assert result.stdout.count("run() on CPUExecutionProvider") == 3
    assert "load_state_dict() -> encoder.weight float32 [4, 4]" in result.stdout
    assert "preloaded tier 0" in result.stdout and "core_optical_flow/flow" in result.stdout
    health = [line for line in result.stdout.splitlines() if "(inprocess/" in line or "(triton/" in line]
    assert len(health) == 6 and all(line.endswith(": ok") for line in health), health
    import numpy as np

    with np.load(run_dir / "core_optical_flow.npz") as npz:
        assert npz["flow"].shape == (4, 1, 16, 16) and npz["flow"].dtype == np.float32


def test_example_profile_pins_the_bundled_files() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "model_manager.cli", "verify", "--profile", str(REPO / "examples" / "profile.yaml")],
        env=dict(os.environ, MM_MODELS_ROOT=str(REPO / "examples" / "models")), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
