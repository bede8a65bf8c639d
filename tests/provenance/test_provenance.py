"""manifest.json and NPZ meta: written once, read back without pickle, audited against each other."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_manager import ModelManager
from model_manager.errors import ModelManagerError
from model_manager.provenance import audit_run_dir, read_npz_meta, save_npz, write_manifest


@pytest.fixture
def mm(models_root: object, mapping: dict[str, Any], run_context: dict[str, str]) -> ModelManager:
    return ModelManager(run_context, mapping)


@pytest.fixture
def run_dir(tmp_path: Path, mm: ModelManager) -> Path:
    out = tmp_path / "run"
    write_manifest(out, mm)
    for component in mm.components:
        save_npz(out / f"{component}.npz", mm.npz_meta_for(component), features=np.ones((2, 3), np.float32))
    return out


def test_npz_meta_round_trips_without_pickle(tmp_path: Path, mm: ModelManager) -> None:
    path = save_npz(tmp_path / "o.npz", mm.npz_meta_for("core_clip"), emb=np.zeros(4))
    assert read_npz_meta(path) == mm.npz_meta_for("core_clip")
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["emb", "meta"]
        assert npz["meta"].dtype.kind == "U"


def test_manifest_holds_the_resolved_mapping(run_dir: Path, mm: ModelManager) -> None:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    run = manifest["run"]
    assert run["resolved_model_mapping"] == json.loads(json.dumps(mm.manifest_section()))
    assert run["resolved_model_mapping"]["components"]["core_optical_flow"]["flow"]["device"] == "cpu"
    assert run["model_signatures"]["core_clip"] == mm.model_signature_for("core_clip")
    assert run["run_context"]["run_id"] == "r1"


def test_audit_passes_on_a_clean_run(run_dir: Path) -> None:
    assert audit_run_dir(run_dir) == (2, [])


def test_audit_finds_an_output_of_other_models(run_dir: Path, models_root: object, mapping: dict[str, Any],
                                               run_context: dict[str, str]) -> None:
    mapping["components"]["core_clip"]["image_encoder"]["device"] = "cuda:1"
    other = ModelManager(run_context, mapping)
    save_npz(run_dir / "sub" / "late.npz", other.npz_meta_for("core_clip"), x=np.zeros(1))
    checked, problems = audit_run_dir(run_dir)
    assert checked == 3
    assert [p.code for p in problems] == ["model_signature_mismatch"]
    assert problems[0].component == "core_clip" and "late.npz" in str(problems[0])


def test_audit_finds_hand_edited_meta(run_dir: Path) -> None:
    target = run_dir / "core_clip.npz"
    with np.load(target, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        arrays = {k: npz[k] for k in npz.files if k != "meta"}
    meta["models_used"][0]["device"] = "cpu"  # signature left as it was
    np.savez(target, meta=np.array(json.dumps(meta)), **arrays)
    _, problems = audit_run_dir(run_dir)
    assert [p.code for p in problems] == ["model_signature_mismatch"]


def test_audit_refuses_pickled_meta(run_dir: Path) -> None:
    np.savez(run_dir / "evil.npz", meta=np.array([{"models_used": []}], dtype=object))
    _, problems = audit_run_dir(run_dir)
    assert [p.code for p in problems] == ["provenance_invalid"]
    assert "pickle" in str(problems[0])


def test_audit_npz_without_meta_and_garbage(run_dir: Path) -> None:
    np.savez(run_dir / "bare.npz", x=np.zeros(1))
    (run_dir / "junk.npz").write_bytes(b"not a zip")
    _, problems = audit_run_dir(run_dir)
    assert sorted(p.code for p in problems) == ["provenance_invalid", "provenance_invalid"]


def test_audit_component_not_in_manifest(run_dir: Path, models_root: object, mapping: dict[str, Any],
                                         run_context: dict[str, str]) -> None:
    mapping["components"]["core_new"] = mapping["components"].pop("core_clip")
    save_npz(run_dir / "new.npz", ModelManager(run_context, mapping).npz_meta_for("core_new"), x=np.zeros(1))
    _, problems = audit_run_dir(run_dir)
    assert [p.code for p in problems] == ["provenance_invalid"] and problems[0].component == "core_new"


def test_audit_tampered_manifest(run_dir: Path) -> None:
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["run"]["resolved_model_mapping"]["components"]["core_clip"]["image_encoder"]["precision"] = "fp32"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelManagerError) as info:
        audit_run_dir(run_dir)
    assert info.value.code == "model_signature_mismatch" and info.value.component == "core_clip"


@pytest.mark.parametrize("content", ["", "{}", '{"run": {}}', "[1]", '{"run": {"resolved_model_mapping": 3}}'])
def test_audit_unreadable_manifest(tmp_path: Path, content: str) -> None:
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(ModelManagerError) as info:
        audit_run_dir(tmp_path)
    assert info.value.code in ("provenance_invalid", "invalid_model_spec")


def test_audit_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(ModelManagerError) as info:
        audit_run_dir(tmp_path)
    assert info.value.code == "provenance_invalid"


@pytest.mark.parametrize("meta", [{}, {"models_used": [], "model_signature": "x"},
                                  {"models_used": [{"component": "c"}], "model_signature": "x"}, "str"])
def test_save_refuses_bad_meta(tmp_path: Path, meta: Any) -> None:
    with pytest.raises(ModelManagerError) as info:
        save_npz(tmp_path / "o.npz", meta, x=np.zeros(1))
    assert info.value.code == "provenance_invalid"
    assert not (tmp_path / "o.npz").exists()


def test_save_refuses_an_array_called_meta(tmp_path: Path, mm: ModelManager) -> None:
    with pytest.raises(ModelManagerError):
        save_npz(tmp_path / "o.npz", mm.npz_meta_for("core_clip"), meta=np.zeros(1))


def test_npz_is_a_plain_zip_of_npy(tmp_path: Path, mm: ModelManager) -> None:
    path = save_npz(tmp_path / "o.npz", mm.npz_meta_for("core_clip"), x=np.zeros(1))
    assert sorted(zipfile.ZipFile(path).namelist()) == ["meta.npy", "x.npy"]
