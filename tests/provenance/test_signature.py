"""models_used, model_signature and the idempotency key follow docs/mapping.md to the byte."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from model_manager import ModelManager
from model_manager.errors import ModelManagerError
from model_manager.mapping.loader import parse_mapping
from model_manager.mapping.schema import RunContext

KEYS = ["component", "role", "model_name", "model_version", "weights_digest", "runtime", "engine", "precision",
        "device", "preprocess_preset"]


@pytest.fixture
def mm(models_root: object, mapping: dict[str, Any], run_context: dict[str, str]) -> ModelManager:
    return ModelManager(run_context, mapping)


def test_models_used_has_exactly_the_contract_keys_sorted_by_role(mm: ModelManager) -> None:
    used = mm.models_used_for("core_clip")
    assert [e["role"] for e in used] == ["image_encoder", "text_encoder"]
    assert all(sorted(e) == sorted(KEYS) for e in used)
    assert used[0]["preprocess_preset"] == "clip_224" and used[1]["preprocess_preset"] is None
    assert used[0]["device"] == "cuda:0"
    flow = mm.models_used_for("core_optical_flow")[0]
    assert flow["device"] == "cpu" and flow["preprocess_preset"] is None


def test_signature_recomputed_independently(mm: ModelManager) -> None:
    # What another system does with nothing but docs/mapping.md and the standard library.
    used = mm.models_used_for("core_clip")
    text = json.dumps(used, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert mm.model_signature_for("core_clip") == "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_signature_golden_value(models_root: object, run_context: dict[str, str]) -> None:
    # Pinned: a change here breaks every system that recomputes signatures. Never update it casually.
    entry = {"runtime": "inprocess", "engine": "onnx", "precision": "fp32", "device_policy": "cpu",
             "model_name": "raft-small", "model_version": "1.0.0",
             "weights_digest": "sha256:" + hashlib.sha256(b"onnx-bytes-of-a-tiny-flow-model").hexdigest(),
             "artifacts": {"onnx_path": "optical_flow/raft_small.onnx"}}
    mm = ModelManager(run_context, {"schema_version": 1, "components": {"c": {"r": entry}}})
    expected_text = (
        '[{"component":"c","device":"cpu","engine":"onnx","model_name":"raft-small","model_version":"1.0.0",'
        '"precision":"fp32","preprocess_preset":null,"role":"r","runtime":"inprocess","weights_digest":"'
        + entry["weights_digest"] + '"}]'
    )
    assert mm.model_signature_for("c") == "sha256:" + hashlib.sha256(expected_text.encode()).hexdigest()


def test_non_ascii_is_hashed_as_utf8(models_root: object, mapping: dict[str, Any],
                                     run_context: dict[str, str]) -> None:
    mapping["components"]["core_clip"]["image_encoder"]["model_name"] = "clip-é"
    mm = ModelManager(run_context, mapping)
    text = json.dumps(mm.models_used_for("core_clip"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert "clip-é" in text
    assert mm.model_signature_for("core_clip") == "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(("field", "value"), [
    ("device", "cuda:1"), ("precision", "fp32"), ("engine", "tensorrt"), ("model_version", "2024-06-01"),
    ("weights_digest", "sha256:" + "f" * 64), ("model_name", "clip-vit-l14-image"),
])
def test_signature_changes_with_each_field(models_root: object, mapping: dict[str, Any],
                                           run_context: dict[str, str], field: str, value: str) -> None:
    before = ModelManager(run_context, mapping).model_signature_for("core_clip")
    mapping["components"]["core_clip"]["image_encoder"][field] = value
    assert ModelManager(run_context, mapping).model_signature_for("core_clip") != before


def test_signature_changes_with_preprocess_and_runtime(models_root: object, mapping: dict[str, Any],
                                                       run_context: dict[str, str]) -> None:
    before = ModelManager(run_context, mapping).model_signature_for("core_clip")
    mapping["components"]["core_clip"]["image_encoder"]["triton"]["preprocess_preset"] = "clip_336"
    assert ModelManager(run_context, mapping).model_signature_for("core_clip") != before


def test_signature_ignores_key_order_and_fields_outside_it(models_root: object, mapping: dict[str, Any],
                                                           run_context: dict[str, str]) -> None:
    before = ModelManager(run_context, mapping).model_signature_for("core_clip")
    shuffled = copy.deepcopy(mapping)
    for roles in shuffled["components"].values():
        for role in list(roles):
            roles[role] = dict(reversed(list(roles[role].items())))
        shuffled_roles = dict(reversed(list(roles.items())))
        roles.clear()
        roles.update(shuffled_roles)
    image = shuffled["components"]["core_clip"]["image_encoder"]
    image["triton"]["http_url"] = "triton:8001"  # endpoint moves: models are the same
    image["tier"] = 1
    assert ModelManager(run_context, shuffled).model_signature_for("core_clip") == before


def test_idempotency_key(models_root: object, mapping: dict[str, Any], run_context: dict[str, str]) -> None:
    key = ModelManager(run_context, mapping).idempotency_key_for("core_clip")
    assert key.startswith("sha256:") and len(key) == 71
    rerun = dict(run_context, run_id="r2")
    assert ModelManager(rerun, mapping).idempotency_key_for("core_clip") == key
    other_video = dict(run_context, video_id="v2")
    assert ModelManager(other_video, mapping).idempotency_key_for("core_clip") != key
    assert ModelManager(run_context, mapping).idempotency_key_for("core_optical_flow") != key
    mapping["components"]["core_clip"]["image_encoder"]["device"] = "cuda:1"
    assert ModelManager(run_context, mapping).idempotency_key_for("core_clip") != key


def test_resolve(mm: ModelManager) -> None:
    spec = mm.resolve(component="core_clip", role="image_encoder")
    assert spec.component_name == "core_clip" and spec.role == "image_encoder"
    assert spec.triton is not None and spec.triton.inputs[0].shape == [-1, 3, 224, 224]
    assert spec.preprocess_preset == "clip_224" and spec.device == "cuda:0"
    with pytest.raises(Exception):
        spec.device = "cpu"  # type: ignore[misc]  # frozen


def test_resolve_unknown_component_and_role(mm: ModelManager) -> None:
    with pytest.raises(ModelManagerError) as info:
        mm.resolve(component="core_ocr", role="x")
    assert info.value.code == "model_mapping_missing" and info.value.component == "core_ocr"
    with pytest.raises(ModelManagerError) as info:
        mm.resolve(component="core_clip", role="audio_encoder")
    assert info.value.code == "model_mapping_missing" and info.value.role == "audio_encoder"
    assert "image_encoder" in str(info.value)
    with pytest.raises(ModelManagerError):
        mm.model_signature_for("core_ocr")


def test_run_context_model_is_accepted(models_root: object, mapping: dict[str, Any],
                                       run_context: dict[str, str]) -> None:
    mm = ModelManager(RunContext(**run_context), mapping)
    assert mm.run_context.video_id == "v1"


def test_run_record_mapping_round_trips(mm: ModelManager) -> None:
    section = json.loads(json.dumps(mm.run_record()["resolved_model_mapping"]))
    reparsed = parse_mapping(section)
    flow = reparsed.components["core_optical_flow"]["flow"]
    assert flow.device == "cpu"  # filled in
    from model_manager.mapping.resolve import unverified_specs
    from model_manager.provenance.signature import model_signature, models_used

    specs = unverified_specs(reparsed)
    for component in mm.components:
        assert model_signature(models_used(specs[component].values())) == mm.model_signature_for(component)


def test_run_record_is_plain_json_recomputable_from_itself(mm: ModelManager) -> None:
    record = mm.run_record()
    assert json.loads(json.dumps(record)) == record
    assert sorted(record) == ["idempotency_keys", "model_signatures", "resolved_model_mapping",
                              "resolved_model_mapping_digest", "run_context", "run_context_digest"]
    text = json.dumps(record["run_context"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert record["run_context_digest"] == "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert record["run_context"]["run_id"] == "r1"
    text = json.dumps(record["resolved_model_mapping"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert record["resolved_model_mapping_digest"] == "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert record["model_signatures"] == {c: mm.model_signature_for(c) for c in mm.components}
    assert record["idempotency_keys"] == {c: mm.idempotency_key_for(c) for c in mm.components}
