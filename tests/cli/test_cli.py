"""The ``model-manager`` command on good input: text and JSON results, one line per problem."""

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
from model_manager.provenance import save_npz, save_output, write_manifest


@pytest.fixture
def profile(tmp_path: Path, mapping: dict[str, Any], models_root: Path) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(mapping))
    return path


def test_resolve_all(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", "--profile", str(profile), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)["specs"]
    assert [(s["component_name"], s["role"]) for s in out] == [
        ("core_clip", "image_encoder"), ("core_clip", "text_encoder"), ("core_optical_flow", "flow")]


def test_resolve_one(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", "--profile", str(profile), "--component", "core_clip", "--role", "image_encoder",
                 "--format", "json"]) == 0
    [spec] = json.loads(capsys.readouterr().out)["specs"]
    assert spec["triton"]["model_name"] == "clip_image" and spec["device"] == "cuda:0"
    assert main(["resolve", "--profile", str(profile), "--component", "core_clip", "--role", "image_encoder"]) == 0
    assert capsys.readouterr().out.startswith("core_clip/image_encoder: clip-vit-b32-image@2024-05-01 triton/onnx/fp16 "
                                              "on cuda:0 sha256:")


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
    assert capsys.readouterr().out.startswith("model_artifact_missing")


def test_signature(profile: Path, capsys: pytest.CaptureFixture[str], mapping: dict[str, Any],
                   run_context: dict[str, str]) -> None:
    assert main(["signature", "--profile", str(profile), "--component", "core_clip"]) == 0
    assert capsys.readouterr().out.strip() == ModelManager(run_context, mapping).model_signature_for("core_clip")
    assert main(["signature", "--profile", str(profile), "--component", "nope"]) == 1


def test_verify_ok(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--profile", str(profile)]) == 0
    assert capsys.readouterr().out == "verify: 3 entries, 0 problem(s): every artifact matches\n"


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
    assert [line.split(":")[0] for line in lines] == ["weights_digest_mismatch", "model_artifact_missing", "verify"]
    assert "core_optical_flow/flow2" in lines[0] and "core_optical_flow/flow3" in lines[1]


def test_verify_bad_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yaml").write_text("schema_version: 1\ncomponents: {a: {b: {runtime: x}}}\n")
    assert main(["verify", "--profile", str(tmp_path / "p.yaml")]) == 1
    assert capsys.readouterr().err.startswith("invalid_model_spec: a/b")


def test_audit(tmp_path: Path, mapping: dict[str, Any], models_root: Path, run_context: dict[str, str],
               capsys: pytest.CaptureFixture[str]) -> None:
    mm = ModelManager(run_context, mapping)
    run = tmp_path / "run"
    write_manifest(run, mm.run_record())
    save_output(run, "a.npz", mm.npz_meta_for("core_clip"), x=np.zeros(1))
    assert main(["audit", str(run)]) == 0
    assert capsys.readouterr().out == "audit: 1 output(s), 0 problem(s): every output matches the manifest\n"
    mapping["components"]["core_clip"]["image_encoder"]["precision"] = "fp32"
    save_npz(run / "b.npz", ModelManager(run_context, mapping).npz_meta_for("core_clip"), x=np.zeros(1))
    data = bytearray((run / "a.npz").read_bytes())
    data[-1] ^= 0xFF  # the zip comment length: the bytes differ, the archive still opens
    (run / "a.npz").write_bytes(bytes(data))
    assert main(["audit", str(run)]) == 1
    codes = [line.split(":")[0] for line in capsys.readouterr().out.splitlines()]
    assert codes[-1] == "audit" and set(codes[:-1]) == {"output_digest_mismatch", "output_unrecorded"}


def test_console_script_is_installed(profile: Path) -> None:
    exe = Path(sys.executable).parent / "model-manager"
    result = subprocess.run([str(exe), "verify", "--profile", str(profile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
