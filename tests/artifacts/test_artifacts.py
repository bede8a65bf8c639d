"""Artifacts: relative to MM_MODELS_ROOT, never escaping it, present and matching at construction."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from model_manager import ModelManager
from model_manager.errors import ModelManagerError


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _flow(m: dict[str, Any]) -> dict[str, Any]:
    return m["components"]["core_optical_flow"]["flow"]  # type: ignore[no-any-return]


def _build(run_context: dict[str, str], mapping: dict[str, Any]) -> ModelManagerError:
    with pytest.raises(ModelManagerError) as info:
        ModelManager(run_context, mapping)
    return info.value


@pytest.mark.parametrize("path", [
    "/etc/passwd", "//server/share/x.onnx", "../outside.onnx", "optical_flow/../../outside.onnx",
    "optical_flow/../..", "C:/models/x.onnx", "c:x.onnx", "optical_flow\\raft_small.onnx", "..", ".", "./",
    "optical_flow/\x00.onnx",
])
def test_path_escapes_are_invalid(models_root: Path, mapping: dict[str, Any], run_context: dict[str, str],
                                  path: str) -> None:
    _flow(mapping)["artifacts"]["onnx_path"] = path
    err = _build(run_context, mapping)
    assert err.code == "invalid_model_spec", str(err)
    assert (err.component, err.role, err.field) == ("core_optical_flow", "flow", "artifacts.onnx_path")


def test_symlink_leaving_the_root(models_root: Path, tmp_path: Path, mapping: dict[str, Any],
                                  run_context: dict[str, str]) -> None:
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(b"x")
    (models_root / "link.onnx").symlink_to(outside)
    _flow(mapping)["artifacts"]["onnx_path"] = "link.onnx"
    err = _build(run_context, mapping)
    assert err.code == "invalid_model_spec" and "outside the models root" in str(err)


def test_symlinked_folder_leaving_the_root(models_root: Path, tmp_path: Path, mapping: dict[str, Any],
                                           run_context: dict[str, str]) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "raft_small.onnx").write_bytes(b"x")
    (models_root / "linked_dir").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    _flow(mapping)["artifacts"]["onnx_path"] = "linked_dir/raft_small.onnx"
    assert _build(run_context, mapping).code == "invalid_model_spec"


def test_dangling_symlink_out_of_root(models_root: Path, tmp_path: Path, mapping: dict[str, Any],
                                      run_context: dict[str, str]) -> None:
    (models_root / "dangling.onnx").symlink_to(tmp_path / "not-there.onnx")
    _flow(mapping)["artifacts"]["onnx_path"] = "dangling.onnx"
    assert _build(run_context, mapping).code == "invalid_model_spec"


def test_symlink_inside_the_root_is_fine(models_root: Path, mapping: dict[str, Any],
                                         run_context: dict[str, str]) -> None:
    (models_root / "current.onnx").symlink_to(models_root / "optical_flow" / "raft_small.onnx")
    _flow(mapping)["artifacts"]["onnx_path"] = "current.onnx"
    ModelManager(run_context, mapping)


def test_models_root_itself_may_be_a_symlink(tmp_path: Path, models_root: Path, mapping: dict[str, Any],
                                             run_context: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "root-link").symlink_to(models_root, target_is_directory=True)
    monkeypatch.setenv("MM_MODELS_ROOT", str(tmp_path / "root-link"))
    ModelManager(run_context, mapping)


def test_missing_file(models_root: Path, mapping: dict[str, Any], run_context: dict[str, str]) -> None:
    _flow(mapping)["artifacts"]["onnx_path"] = "optical_flow/raft_large.onnx"
    err = _build(run_context, mapping)
    assert err.code == "model_artifact_missing"
    assert "raft_large.onnx" in str(err) and err.field == "artifacts.onnx_path"


def test_missing_tokenizer(models_root: Path, mapping: dict[str, Any], run_context: dict[str, str]) -> None:
    _flow(mapping)["artifacts"]["tokenizer_path"] = "tok/vocab.txt"
    err = _build(run_context, mapping)
    assert err.code == "model_artifact_missing" and err.field == "artifacts.tokenizer_path"


def test_digest_mismatch(models_root: Path, mapping: dict[str, Any], run_context: dict[str, str]) -> None:
    _flow(mapping)["weights_digest"] = sha(b"other weights")
    err = _build(run_context, mapping)
    assert err.code == "weights_digest_mismatch"
    assert err.field == "weights_digest" and sha(b"other weights") in str(err)


def test_modified_weights_are_caught_through_a_warm_cache(models_root: Path, mapping: dict[str, Any],
                                                         run_context: dict[str, str]) -> None:
    ModelManager(run_context, mapping)
    path = models_root / "optical_flow" / "raft_small.onnx"
    path.write_bytes(b"tampered-bytes-of-the-same-size")
    assert _build(run_context, mapping).code == "weights_digest_mismatch"


def test_unreadable_weights(models_root: Path, mapping: dict[str, Any], run_context: dict[str, str]) -> None:
    target = models_root / "optical_flow" / "raft_small.onnx"
    target.unlink()
    target.mkdir()  # a folder where the file was: an empty model folder is never weights
    err = _build(run_context, mapping)
    assert err.code == "invalid_model_spec" and "empty model folder" in err.message
    (target / "model.onnx").write_bytes(b"other")  # a folder of other bytes: its digest differs
    assert _build(run_context, mapping).code == "weights_digest_mismatch"


def test_folder_model(models_root: Path, mapping: dict[str, Any], run_context: dict[str, str]) -> None:
    from model_manager.artifacts.cache import DigestCache
    from model_manager.artifacts.digest import weights_digest

    repo = models_root / "asr"
    repo.mkdir()
    (repo / "config.json").write_text("{}")
    (repo / "model.safetensors").write_bytes(b"\x00" * 64)
    entry = _flow(mapping)
    entry.update(engine="torch", artifacts={"weights_path": "asr"},
                 weights_digest=weights_digest(str(repo), str(models_root), DigestCache(None)))
    mm = ModelManager(run_context, mapping)
    assert mm.artifact_path(mm.resolve(component="core_optical_flow", role="flow"), "artifacts.weights_path") == \
        os.path.realpath(repo)


def test_models_root_unset(mapping: dict[str, Any], run_context: dict[str, str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MM_MODELS_ROOT", raising=False)
    err = _build(run_context, mapping)
    assert err.code == "models_root_missing" and "MM_MODELS_ROOT" in str(err)
    assert (err.component, err.role) == ("core_optical_flow", "flow")


def test_models_root_not_a_folder(tmp_path: Path, mapping: dict[str, Any], run_context: dict[str, str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_MODELS_ROOT", str(tmp_path / "nowhere"))
    assert _build(run_context, mapping).code == "models_root_missing"


def test_models_root_not_needed_for_triton_only(mapping: dict[str, Any], run_context: dict[str, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MM_MODELS_ROOT", raising=False)
    del mapping["components"]["core_optical_flow"]
    assert ModelManager(run_context, mapping).components == ["core_clip"]


def test_artifact_path_is_the_verified_one(models_root: Path, tmp_path: Path, mapping: dict[str, Any],
                                           run_context: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    mm = ModelManager(run_context, mapping)
    spec = mm.resolve(component="core_optical_flow", role="flow")
    monkeypatch.setenv("MM_MODELS_ROOT", str(tmp_path / "elsewhere"))  # moved after the check
    real = os.path.realpath(models_root / "optical_flow" / "raft_small.onnx")
    assert mm.artifact_path(spec, "artifacts.onnx_path") == real == mm.weights_path(spec)
    with pytest.raises(ModelManagerError) as info:
        mm.artifact_path(spec, "artifacts.tokenizer_path")
    assert info.value.code == "model_mapping_missing" and info.value.field == "artifacts.tokenizer_path"


@pytest.mark.parametrize("field", ["onnx_path", "artifacts.onnx_path\n", "artifacts.model", ""])
def test_artifact_path_takes_the_field_name_every_message_uses(models_root: Path, mapping: dict[str, Any],
                                                               run_context: dict[str, str], field: str) -> None:
    """One name per field: ``artifacts.onnx_path``, as in the mapping and in every error."""
    mm = ModelManager(run_context, mapping)
    with pytest.raises(ModelManagerError) as info:
        mm.artifact_path(mm.resolve(component="core_optical_flow", role="flow"), field)
    assert info.value.code == "invalid_model_spec" and "artifacts.onnx_path" in str(info.value)


def test_weights_path_of_a_triton_entry_is_refused(models_root: Path, mapping: dict[str, Any],
                                                   run_context: dict[str, str]) -> None:
    mm = ModelManager(run_context, mapping)
    with pytest.raises(ModelManagerError) as info:
        mm.weights_path(mm.resolve(component="core_clip", role="image_encoder"))
    assert info.value.code == "model_mapping_missing" and info.value.role == "image_encoder"
