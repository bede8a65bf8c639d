"""write_manifest and save_output: the run is recorded once, every output is recorded as it is written."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_manager import ModelManager
from model_manager.errors import ModelManagerError
from model_manager.provenance import OutputRecord, audit_run_dir, save_output, write_manifest


def _manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "manifest.json").read_text())  # type: ignore[no-any-return]


def test_manifest_records_the_run_and_each_output(run_dir: Path, mm: ModelManager) -> None:
    doc = _manifest(run_dir)
    assert sorted(doc) == ["manifest_version", "outputs", "run"] and doc["manifest_version"] == 1
    assert doc["run"] == json.loads(json.dumps(mm.run_record()))
    assert doc["run"]["resolved_model_mapping"]["components"]["core_optical_flow"]["flow"]["device"] == "cpu"
    assert sorted(doc["outputs"]) == ["core_clip.npz", "core_optical_flow.npz"]
    data = (run_dir / "core_clip.npz").read_bytes()
    assert doc["outputs"]["core_clip.npz"] == {"component": "core_clip", "size": len(data),
                                               "sha256": "sha256:" + hashlib.sha256(data).hexdigest()}


def test_save_output_returns_its_record(tmp_path: Path, mm: ModelManager) -> None:
    write_manifest(tmp_path / "run", mm.run_record())
    record = save_output(tmp_path / "run", "visual/clip.npz", mm.npz_meta_for("core_clip"), x=np.zeros(3))
    assert isinstance(record, OutputRecord) and record.path == "visual/clip.npz" and record.component == "core_clip"
    data = (tmp_path / "run" / "visual" / "clip.npz").read_bytes()
    assert (record.sha256, record.size) == ("sha256:" + hashlib.sha256(data).hexdigest(), len(data))
    assert _manifest(tmp_path / "run")["outputs"]["visual/clip.npz"] == record.as_json()


def test_saving_an_output_again_replaces_its_record(run_dir: Path, mm: ModelManager) -> None:
    first = _manifest(run_dir)["outputs"]["core_clip.npz"]
    record = save_output(run_dir, "core_clip.npz", mm.npz_meta_for("core_clip"), x=np.arange(50))
    assert _manifest(run_dir)["outputs"]["core_clip.npz"] == record.as_json() != first
    assert audit_run_dir(run_dir) == (2, [])


def test_write_manifest_is_idempotent_and_keeps_outputs(run_dir: Path, mm: ModelManager) -> None:
    before = (run_dir / "manifest.json").read_bytes()
    assert write_manifest(run_dir, mm.run_record()) == run_dir / "manifest.json"
    assert (run_dir / "manifest.json").read_bytes() == before


def test_write_manifest_refuses_another_run(run_dir: Path, models_root: object, mapping: dict[str, Any],
                                            run_context: dict[str, str]) -> None:
    other = ModelManager(dict(run_context, video_id="v2"), mapping)
    with pytest.raises(ModelManagerError) as info:
        write_manifest(run_dir, other.run_record())
    assert info.value.code == "run_context_mismatch"
    mapping["components"]["core_clip"]["image_encoder"]["precision"] = "fp32"
    with pytest.raises(ModelManagerError) as info:
        write_manifest(run_dir, ModelManager(run_context, mapping).run_record())
    assert info.value.code == "model_signature_mismatch"


@pytest.mark.parametrize(("edit", "code"), [
    (lambda r: r.update(run_context_digest="sha256:" + "0" * 64), "run_context_mismatch"),
    (lambda r: r["model_signatures"].update(core_clip="sha256:" + "0" * 64), "model_signature_mismatch"),
    (lambda r: r["resolved_model_mapping"]["components"].pop("core_clip"), "provenance_invalid"),
    (lambda r: r["idempotency_keys"].pop("core_clip"), "idempotency_key_mismatch"),
    (lambda r: r.pop("run_context"), "provenance_invalid"),
    (lambda r: r.update(extra=1), "provenance_invalid"),
    (lambda r: r.update(run_context=object()), "provenance_invalid"),
])
def test_write_manifest_refuses_a_record_inconsistent_in_itself(tmp_path: Path, mm: ModelManager, edit: Any,
                                                                code: str) -> None:
    record = mm.run_record()
    edit(record)
    with pytest.raises(ModelManagerError) as info:
        write_manifest(tmp_path / "run", record)
    assert info.value.code == code
    assert not (tmp_path / "run" / "manifest.json").exists()


def test_save_output_needs_the_manifest_first(tmp_path: Path, mm: ModelManager) -> None:
    with pytest.raises(ModelManagerError) as info:
        save_output(tmp_path / "run", "a.npz", mm.npz_meta_for("core_clip"), x=np.zeros(1))
    assert info.value.code == "provenance_invalid" and "write_manifest" in str(info.value)
    assert not (tmp_path / "run").exists()


def test_save_output_refuses_other_models(run_dir: Path, models_root: object, mapping: dict[str, Any],
                                          run_context: dict[str, str]) -> None:
    before = sorted(os.listdir(run_dir))
    mapping["components"]["core_clip"]["image_encoder"]["device"] = "cuda:1"
    other = ModelManager(run_context, mapping)
    with pytest.raises(ModelManagerError) as info:
        save_output(run_dir, "late.npz", other.npz_meta_for("core_clip"), x=np.zeros(1))
    assert info.value.code == "model_signature_mismatch" and info.value.component == "core_clip"
    mapping["components"]["core_new"] = mapping["components"].pop("core_clip")
    with pytest.raises(ModelManagerError) as info:
        save_output(run_dir, "new.npz", ModelManager(run_context, mapping).npz_meta_for("core_new"), x=np.zeros(1))
    assert info.value.code == "model_mapping_missing" and info.value.component == "core_new"
    assert sorted(os.listdir(run_dir)) == before


@pytest.mark.parametrize("name", ["/abs.npz", "../out.npz", "a/../b.npz", "a//b.npz", "./a.npz", ".hidden.npz",
                                  "a.npy", "manifest.json", "", ".npz", "a\n.npz", "x/" * 600 + "a.npz", 3])
def test_save_output_refuses_names_outside_plain_npz_paths(run_dir: Path, mm: ModelManager, name: Any) -> None:
    with pytest.raises(ModelManagerError) as info:
        save_output(run_dir, name, mm.npz_meta_for("core_clip"), x=np.zeros(1))
    assert info.value.code == "output_invalid" and info.value.field == "name"
    assert len(str(info.value)) < 600


def test_save_output_refuses_an_object_array_before_writing(run_dir: Path, mm: ModelManager) -> None:
    before = (run_dir / "manifest.json").read_bytes()
    with pytest.raises(ModelManagerError) as info:
        save_output(run_dir, "o.npz", mm.npz_meta_for("core_clip"), x=np.array([None], dtype=object))
    assert info.value.code == "output_invalid"
    assert not (run_dir / "o.npz").exists() and (run_dir / "manifest.json").read_bytes() == before
    assert not [p for p in os.listdir(run_dir) if p.endswith(".tmp")]


def test_writers_refuse_a_tampered_manifest(run_dir: Path, mm: ModelManager) -> None:
    (run_dir / "manifest.json").write_text("{")
    for call in (lambda: write_manifest(run_dir, mm.run_record()),
                 lambda: save_output(run_dir, "x.npz", mm.npz_meta_for("core_clip"), x=np.zeros(1))):
        with pytest.raises(ModelManagerError) as info:
            call()
        assert info.value.code == "provenance_invalid"
    assert (run_dir / "manifest.json").read_text() == "{"
