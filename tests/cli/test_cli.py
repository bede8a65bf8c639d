"""The ``model-manager`` command: JSON out, one line per problem, exit 0/1/2."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from model_manager import ModelManager
from model_manager.cli import main
from model_manager.provenance import save_npz, write_manifest


@pytest.fixture
def profile(tmp_path: Path, mapping: dict[str, Any], models_root: Path) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(mapping))
    return path


def test_resolve_all(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", "--profile", str(profile)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(s["component_name"], s["role"]) for s in out] == [
        ("core_clip", "image_encoder"), ("core_clip", "text_encoder"), ("core_optical_flow", "flow")]


def test_resolve_one(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", "--profile", str(profile), "--component", "core_clip", "--role", "image_encoder"]) == 0
    spec = json.loads(capsys.readouterr().out)
    assert spec["triton"]["model_name"] == "clip_image" and spec["device"] == "cuda:0"


def test_resolve_unknown_role(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", "--profile", str(profile), "--component", "core_clip", "--role", "nope"]) == 1
    assert capsys.readouterr().err.startswith("model_mapping_missing:")


def test_digest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.bin").write_bytes(b"abc")
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "f").write_bytes(b"f")
    assert main(["digest", str(tmp_path / "a.bin"), str(tmp_path / "repo")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"sha256:{hashlib.sha256(b'abc').hexdigest()}  {tmp_path / 'a.bin'}"
    listing = f"{hashlib.sha256(b'f').hexdigest()}  f\n".encode()
    assert lines[1].split()[0] == "sha256:" + hashlib.sha256(listing).hexdigest()


def test_digest_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["digest", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err.startswith("model_artifact_missing")


def test_signature(profile: Path, capsys: pytest.CaptureFixture[str], mapping: dict[str, Any],
                   run_context: dict[str, str]) -> None:
    assert main(["signature", "--profile", str(profile), "--component", "core_clip"]) == 0
    assert capsys.readouterr().out.strip() == ModelManager(run_context, mapping).model_signature_for("core_clip")
    assert main(["signature", "--profile", str(profile), "--component", "nope"]) == 1


def test_verify_ok(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--profile", str(profile)]) == 0
    assert "3 entries, 0 problem(s)" in capsys.readouterr().err


def test_verify_reports_every_problem(tmp_path: Path, mapping: dict[str, Any], models_root: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    flow = mapping["components"]["core_optical_flow"]["flow"]
    second = dict(flow, weights_digest="sha256:" + "0" * 64)
    mapping["components"]["core_optical_flow"]["flow2"] = second
    mapping["components"]["core_optical_flow"]["flow3"] = dict(flow, artifacts={"onnx_path": "missing.onnx"})
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(mapping))
    assert main(["verify", "--profile", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["weights_digest_mismatch", "model_artifact_missing"]
    assert "core_optical_flow/flow2" in lines[0] and "core_optical_flow/flow3" in lines[1]


def test_verify_bad_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yaml").write_text("schema_version: 1\ncomponents: {a: {b: {runtime: x}}}\n")
    assert main(["verify", "--profile", str(tmp_path / "p.yaml")]) == 1
    assert capsys.readouterr().err.startswith("invalid_model_spec: a/b")


def test_audit(tmp_path: Path, mapping: dict[str, Any], models_root: Path, run_context: dict[str, str],
               capsys: pytest.CaptureFixture[str]) -> None:
    mm = ModelManager(run_context, mapping)
    write_manifest(tmp_path / "run", mm)
    save_npz(tmp_path / "run" / "a.npz", mm.npz_meta_for("core_clip"), x=np.zeros(1))
    assert main(["audit", str(tmp_path / "run")]) == 0
    mapping["components"]["core_clip"]["image_encoder"]["precision"] = "fp32"
    save_npz(tmp_path / "run" / "b.npz", ModelManager(run_context, mapping).npz_meta_for("core_clip"), x=np.zeros(1))
    assert main(["audit", str(tmp_path / "run")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("model_signature_mismatch: core_clip")


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["resolve"], ["signature", "--profile", "p"],
                                  ["resolve", "--profile", "p", "--role", "r"]])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_console_script_is_installed(profile: Path) -> None:
    exe = Path(sys.executable).parent / "model-manager"
    result = subprocess.run([str(exe), "verify", "--profile", str(profile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
