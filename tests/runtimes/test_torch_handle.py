"""The in-process torch handle: cheap to make, loads only the verified bytes, only safely, only on the spec's device.

torch is not installed here: every test blocks ``import torch`` (so the suite means the same where torch is
installed), and the torch-present paths run against a stand-in torch that records what it was asked
(tests/runtimes/torch_files.py). bench/check_torch_handle.py runs the same paths with the real torch.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch_files as tf
from helpers.imports import modules_after
from helpers.mappings import RUN_CONTEXT, make_mapping

from model_manager import ModelManager
from model_manager.errors import ModelManagerError
from model_manager.mapping.schema import ModelEntry, spec_from_entry
from model_manager.runtimes.torch import TorchHandle, torch_handle

WEIGHTS = {"weight": np.arange(6, dtype=np.float32).reshape(2, 3), "bias": np.array([0.5, -1.5], dtype=np.float16)}


@pytest.fixture(autouse=True)
def _no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    tf.block_torch(monkeypatch)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("MM_MODELS_ROOT", str(models))
    return models


def put(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def entry(root: Path, rel: str, device_policy: str = "cpu", device: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "runtime": "inprocess", "engine": "torch", "precision": "fp32", "device_policy": device_policy,
        "model_name": "detector", "model_version": "1", "weights_digest": tf.digest_of(root / rel),
        "artifacts": {"weights_path": rel},
    }
    if device is not None:
        found["device"] = device
    return found


def handle(root: Path, rel: str, device_policy: str = "cpu", device: str | None = None) -> TorchHandle:
    """Through a real ModelManager: the spec it resolved, the path it verified, the real models root."""
    mm = ModelManager(RUN_CONTEXT, {"schema_version": 1, "components": {
        "core_detect": {"weights": entry(root, rel, device_policy, device)}}})
    spec = mm.resolve(component="core_detect", role="weights")
    return torch_handle(spec, mm.weights_path(spec), os.path.realpath(root))


def fails(call: Any, code: str, field: str | None = "artifacts.weights_path") -> ModelManagerError:
    with pytest.raises(ModelManagerError) as info:
        call()
    err = info.value
    assert err.code == code, str(err)
    assert (err.component, err.role, err.field) == ("core_detect", "weights", field), str(err)
    assert err.hint
    return err


# --- the handle: cheap, without torch ---------------------------------------------------------------------
def test_the_handle_names_its_weights_device_and_format(root: Path) -> None:
    path = put(root, "det/model.safetensors", tf.safetensors_bytes(WEIGHTS))
    h = handle(root, "det/model.safetensors")
    assert h.weights_path == os.path.realpath(path)
    assert h.device == "cpu"
    assert h.describe() == {"weights_path": os.path.realpath(path), "device": "cpu", "format": "safetensors"}
    assert json.loads(json.dumps(h.describe())) == h.describe()
    assert (h.component, h.role, h.format) == ("core_detect", "weights", "safetensors")
    assert "core_detect/weights" in repr(h)


def test_a_pickle_handle_is_made_without_torch(root: Path) -> None:
    put(root, "det/model.pt", tf.zip_state_dict(tf.TENSORS))
    h = handle(root, "det/model.pt", "cuda", "cuda:1")
    assert h.describe()["format"] == "torch" and h.device == "cuda:1"


def test_neither_importing_nor_making_a_handle_loads_torch_numpy_or_safetensors(tmp_path: Path) -> None:
    heavy = {"torch", "numpy", "safetensors"}
    assert not heavy & modules_after("import model_manager.runtimes.torch")
    (tmp_path / "m.safetensors").write_bytes(tf.safetensors_bytes(WEIGHTS))
    (tmp_path / "m.pt").write_bytes(tf.zip_state_dict(tf.TENSORS))
    code = f"""
from model_manager.mapping.schema import ModelEntry, spec_from_entry
from model_manager.runtimes.torch import torch_handle
for name in ("m.safetensors", "m.pt"):
    entry = ModelEntry.model_validate({{"runtime": "inprocess", "engine": "torch", "precision": "fp32",
        "device_policy": "cpu", "model_name": "m", "model_version": "1", "weights_digest": "sha256:" + "0" * 64,
        "artifacts": {{"weights_path": name}}}})
    h = torch_handle(spec_from_entry("c", "r", entry), {str(tmp_path)!r} + "/" + name, {str(tmp_path)!r})
    assert h.describe()["format"] in ("safetensors", "torch")
"""
    assert not heavy & modules_after(code)


def test_a_role_of_another_engine_is_refused(root: Path) -> None:
    onnx = make_mapping()["components"]["core_optical_flow"]["flow"]
    spec = spec_from_entry("core_detect", "weights", ModelEntry.model_validate(onnx))
    fails(lambda: torch_handle(spec, str(root), str(root)), "invalid_model_spec", "engine")


def test_a_file_that_is_no_weights_file_is_refused_when_the_handle_is_made(root: Path) -> None:
    put(root, "det/model.ckpt", tf.zip_state_dict(tf.TENSORS))
    err = fails(lambda: handle(root, "det/model.ckpt"), "model_artifact_invalid")
    assert ".safetensors, .pt, .pth, .bin" in err.message


@pytest.mark.parametrize("layout", [{"config.json": b"{}"}, {"config.json": b"{}", "sub/model.safetensors": b"x"}])
def test_a_folder_without_top_level_weights_is_refused(root: Path, layout: dict[str, bytes]) -> None:
    for rel, data in layout.items():
        put(root, f"det/{rel}", data)
    err = fails(lambda: handle(root, "det"), "model_artifact_invalid")
    assert "no weights file" in err.message and "subfolders are not searched" in err.message


# --- safetensors ------------------------------------------------------------------------------------------
def assert_weights(loaded: dict[str, Any], expected: dict[str, np.ndarray]) -> None:
    assert sorted(loaded) == sorted(expected)
    for key, value in expected.items():
        assert isinstance(loaded[key], np.ndarray)
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)


def test_safetensors_load_to_numpy_on_cpu_without_torch(root: Path) -> None:
    put(root, "det/model.safetensors", tf.safetensors_bytes(WEIGHTS))
    assert_weights(handle(root, "det/model.safetensors").load_state_dict(), WEIGHTS)


def test_a_sharded_folder_is_merged(root: Path) -> None:
    put(root, "det/model-00001-of-00002.safetensors", tf.safetensors_bytes({"a": WEIGHTS["weight"]}))
    put(root, "det/model-00002-of-00002.safetensors", tf.safetensors_bytes({"b": WEIGHTS["bias"]}))
    put(root, "det/model.safetensors.index.json", b'{"weight_map": {}}')
    put(root, "det/config.json", b"{}")
    put(root, "det/onnx/other.safetensors", tf.safetensors_bytes({"a": np.zeros(1)}))  # below the top: not loaded
    h = handle(root, "det")
    assert h.format == "safetensors"
    assert_weights(h.load_state_dict(), {"a": WEIGHTS["weight"], "b": WEIGHTS["bias"]})


def test_a_tensor_in_two_shards_is_refused(root: Path) -> None:
    put(root, "det/a.safetensors", tf.safetensors_bytes({"x": np.zeros(2), "y": np.ones(1)}))
    put(root, "det/b.safetensors", tf.safetensors_bytes({"x": np.zeros(2)}))
    err = fails(handle(root, "det").load_state_dict, "model_artifact_invalid")
    assert "'x'" in err.message and "a.safetensors" in err.message and "b.safetensors" in err.message


def test_a_folder_with_safetensors_and_pickles_loads_the_safetensors_only(root: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    put(root, "det/model.safetensors", tf.safetensors_bytes(WEIGHTS))
    put(root, "det/pytorch_model.bin", tf.hostile_state_dict(tf.hostile_payloads(marker)["os.system"]))
    h = handle(root, "det")
    assert h.format == "safetensors"
    assert_weights(h.load_state_dict(), WEIGHTS)
    assert not marker.exists()


def test_a_dtype_numpy_cannot_hold_needs_torch(root: Path) -> None:
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    put(root, "det/model.safetensors", tf.raw_safetensors(header, b"\0\0\0\0"))
    err = fails(handle(root, "det/model.safetensors").load_state_dict, "torch_missing")
    assert "'BF16'" in err.message and "numpy cannot hold" in err.message


def test_a_gpu_entry_without_torch_is_torch_missing(root: Path) -> None:
    put(root, "det/model.safetensors", tf.safetensors_bytes(WEIGHTS))
    err = fails(handle(root, "det/model.safetensors", "cuda:0").load_state_dict, "torch_missing", "device")
    assert "'cuda:0'" in err.message


_GOOD = tf.safetensors_bytes(WEIGHTS)
_HEADER = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()


@pytest.mark.parametrize(("data", "words"), [
    (b"", "0 bytes long"),
    (b"\x10\x00\x00", "3 bytes long"),
    (_GOOD[:len(_GOOD) // 2], "truncated"),                           # the header cut
    (_GOOD[:-3], "safetensors refused"),                              # the data cut
    (tf.raw_safetensors(b"{}", length=1 << 40), "header length 1099511627776 is larger than the 2 bytes"),
    (tf.raw_safetensors(b"\xff\xfe{}"), "not UTF-8"),
    (tf.raw_safetensors(b'{"w": '), "not JSON"),
    (tf.raw_safetensors(b"[" * 100000 + b"]" * 100000), "not JSON"),
    (tf.raw_safetensors(b"[1, 2]"), "a JSON list, not an object"),
    (tf.raw_safetensors(_HEADER, b"\0" * 4), "safetensors refused"),    # offsets past the data
    (tf.raw_safetensors(_HEADER.replace(b"F32", b"X99"), b"\0" * 8), "safetensors refused"),  # no such dtype
    (tf.zip_state_dict(tf.TENSORS), "is larger than"),                 # a torch file named .safetensors
])
def test_broken_safetensors_are_invalid(root: Path, data: bytes, words: str) -> None:
    put(root, "det/model.safetensors", data)
    err = fails(handle(root, "det/model.safetensors").load_state_dict, "model_artifact_invalid")
    assert words in err.message


# --- what is loaded is what was verified ------------------------------------------------------------------
def test_a_file_swapped_after_the_manager_was_built_is_refused(root: Path, tmp_path: Path) -> None:
    path = put(root, "det/model.safetensors", tf.safetensors_bytes(WEIGHTS))
    h = handle(root, "det/model.safetensors")
    path.write_bytes(tf.safetensors_bytes({"weight": np.zeros(1)}))
    fails(h.load_state_dict, "weights_digest_mismatch", "weights_digest")


def test_a_pickle_swapped_for_a_hostile_one_is_refused_before_any_scan(root: Path, tmp_path: Path) -> None:
    path = put(root, "det/model.pt", tf.zip_state_dict(tf.TENSORS))
    h = handle(root, "det/model.pt")
    path.write_bytes(tf.hostile_state_dict(tf.hostile_payloads(tmp_path / "ran")["builtins.eval"]))
    fails(h.load_state_dict, "weights_digest_mismatch", "weights_digest")
    assert not (tmp_path / "ran").exists()


def test_a_shard_changed_after_the_manager_was_built_is_refused(root: Path) -> None:
    put(root, "det/a.safetensors", tf.safetensors_bytes({"a": np.zeros(2)}))
    shard = put(root, "det/b.safetensors", tf.safetensors_bytes({"b": np.zeros(2)}))
    h = handle(root, "det")
    shard.write_bytes(tf.safetensors_bytes({"b": np.ones(2)}))
    fails(h.load_state_dict, "weights_digest_mismatch", "weights_digest")


def test_weights_removed_after_the_manager_was_built_are_missing(root: Path) -> None:
    path = put(root, "det/model.safetensors", tf.safetensors_bytes(WEIGHTS))
    h = handle(root, "det/model.safetensors")
    path.unlink()
    fails(h.load_state_dict, "model_artifact_missing")


# --- torch pickles without torch --------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "data"), [
    ("model.pt", tf.zip_state_dict(tf.TENSORS)),
    ("model.pth", tf.legacy_state_dict(tf.TENSORS)),
    ("pytorch_model.bin", tf.real_torch_save("zip")),
    ("old.pt", tf.real_torch_save("legacy")),
])
def test_a_plain_state_dict_pickle_without_torch_is_torch_missing(root: Path, name: str, data: bytes) -> None:
    put(root, f"det/{name}", data)
    err = fails(handle(root, f"det/{name}").load_state_dict, "torch_missing")
    assert "torch pickle" in err.message and ".safetensors" in (err.hint or "")


@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "subprocess.Popen"])
@pytest.mark.parametrize("wrap", ["raw", "zip", "legacy"])
def test_hostile_pickles_are_refused_and_never_run(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   payload: str, wrap: str) -> None:
    marker = tmp_path / "ran"
    evil = tf.hostile_state_dict(tf.hostile_payloads(marker)[payload])
    data = {"raw": evil, "zip": tf.torch_zip(evil, []), "legacy": tf.legacy_file(evil, [])}[wrap]
    put(root, "det/model.pt", data)
    h = handle(root, "det/model.pt")
    for name in ("load", "loads", "Unpickler", "_load", "_loads", "_Unpickler"):
        monkeypatch.setattr(f"pickle.{name}", lambda *a, **k: pytest.fail("something was unpickled"))
    err = fails(h.load_state_dict, "model_artifact_invalid")
    assert "never unpickled" in err.message and "names the global" in err.message
    assert not marker.exists()


def test_one_hostile_shard_refuses_the_folder(root: Path, tmp_path: Path) -> None:
    put(root, "det/pytorch_model-00001-of-00002.bin", tf.zip_state_dict(tf.TENSORS))
    put(root, "det/pytorch_model-00002-of-00002.bin",
        tf.torch_zip(tf.hostile_state_dict(tf.hostile_payloads(tmp_path / "ran")["os.system"]), []))
    err = fails(handle(root, "det").load_state_dict, "model_artifact_invalid")
    assert "pytorch_model-00002-of-00002.bin" in err.message
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("data", [b"", b"garbage", tf.zip_state_dict(tf.TENSORS)[:300],
                                  tf.safetensors_bytes(WEIGHTS)])
def test_broken_or_foreign_pickles_are_invalid(root: Path, data: bytes) -> None:
    put(root, "det/model.pt", data)
    fails(handle(root, "det/model.pt").load_state_dict, "model_artifact_invalid")


# --- the torch-present paths, against a stand-in torch ----------------------------------------------------
def test_a_pickle_goes_to_torch_load_weights_only_from_the_verified_bytes(root: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    data = tf.zip_state_dict(tf.TENSORS)
    put(root, "det/model.pt", data)
    fake = tf.install_fake_torch(monkeypatch)
    loaded = handle(root, "det/model.pt").load_state_dict()
    assert fake.loads == [(data, {"weights_only": True, "map_location": "cpu"})]
    assert sorted(loaded) == ["bias", "weight"] and loaded["weight"].device == "cpu"


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_tensors_are_mapped_to_the_specs_gpu(root: Path, monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    put(root, "det/model.pt", tf.legacy_state_dict(tf.TENSORS))
    fake = tf.install_fake_torch(monkeypatch, gpus=2)
    loaded = handle(root, "det/model.pt", "cuda", device).load_state_dict()
    assert [kwargs["map_location"] for _, kwargs in fake.loads] == [device]
    assert {t.device for t in loaded.values()} == {device}


@pytest.mark.parametrize(("gpus", "device", "words"), [
    (0, "cuda", "sees no CUDA device"), (0, "cuda:0", "sees no CUDA device"), (1, "cuda:1", "sees 1 CUDA device"),
])
def test_a_gpu_torch_cannot_see_is_device_unavailable(root: Path, monkeypatch: pytest.MonkeyPatch, gpus: int,
                                                      device: str, words: str) -> None:
    put(root, "det/model.pt", tf.zip_state_dict(tf.TENSORS))
    put(root, "det2/model.safetensors", tf.safetensors_bytes(WEIGHTS))
    fake = tf.install_fake_torch(monkeypatch, gpus=gpus)
    for rel in ("det/model.pt", "det2/model.safetensors"):
        err = fails(handle(root, rel, "cuda", device).load_state_dict, "device_unavailable", "device")
        assert repr(device) in err.message and words in err.message
    assert fake.loads == []


def test_the_scan_runs_before_torch_load_even_with_torch(root: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    put(root, "det/model.pt", tf.torch_zip(tf.hostile_state_dict(tf.hostile_payloads(tmp_path / "ran")["os.system"]),
                                           []))
    fake = tf.install_fake_torch(monkeypatch)
    fails(handle(root, "det/model.pt").load_state_dict, "model_artifact_invalid")
    assert fake.loads == [] and not (tmp_path / "ran").exists()


def _raise() -> Any:
    raise RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central directory\nmore")


def _weights_only_refuses() -> Any:
    raise pickle.UnpicklingError("Weights only load failed. In PyTorch 2.6, we changed...\nPlease file an issue "
                                 "...: WeightsUnpickler error: \n\nUnsupported operand 149\n\nCheck the documentation")


@pytest.mark.parametrize(("result", "words"), [
    (_raise, "RuntimeError: PytorchStreamReader failed reading zip archive"),
    (_weights_only_refuses, "UnpicklingError: the weights_only unpickler says: Unsupported operand 149"),
    (lambda: [tf.FakeTensor(1)], "holds an object of type list, not a state dict"),
    (lambda: {"weight": tf.FakeTensor(1), "epoch": 3}, "its entry 'epoch' is of type int, not a tensor"),
    (lambda: {1: tf.FakeTensor(1)}, "its entry 1 is of type FakeTensor"),
])
def test_what_torch_load_gives_must_be_a_flat_state_dict(root: Path, monkeypatch: pytest.MonkeyPatch,
                                                         result: Any, words: str) -> None:
    put(root, "det/model.pt", tf.zip_state_dict(tf.TENSORS))
    tf.install_fake_torch(monkeypatch, result=result)
    err = fails(handle(root, "det/model.pt").load_state_dict, "model_artifact_invalid")
    assert words in err.message


def test_pickle_shards_are_merged_and_a_tensor_in_two_is_refused(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    put(root, "det/a.bin", tf.zip_state_dict(tf.TENSORS))
    put(root, "det/b.bin", tf.zip_state_dict(tf.TENSORS[:1]))
    shards = iter([{"weight": tf.FakeTensor(1)}, {"bias": tf.FakeTensor(2)}])
    tf.install_fake_torch(monkeypatch, result=lambda: next(shards))
    assert sorted(handle(root, "det").load_state_dict()) == ["bias", "weight"]
    tf.install_fake_torch(monkeypatch, result=lambda: {"weight": tf.FakeTensor(1)})
    err = fails(handle(root, "det").load_state_dict, "model_artifact_invalid")
    assert "'weight' is in both" in err.message


@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_safetensors_load_to_torch_tensors_on_the_specs_device_when_torch_is_there(
        root: Path, monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    put(root, "det/model.safetensors", tf.safetensors_bytes(WEIGHTS))
    tf.install_fake_torch(monkeypatch, gpus=1)
    loaded = handle(root, "det/model.safetensors", "cuda" if device != "cpu" else "cpu",
                    device if device != "cpu" else None).load_state_dict()
    assert {type(t) for t in loaded.values()} == {tf.FakeTensor}
    assert {t.device for t in loaded.values()} == {device}
    np.testing.assert_array_equal(loaded["weight"].value, WEIGHTS["weight"])


class _BrokenTorch:
    """A meta path finder for a torch that is installed but fails to import (a CUDA library missing)."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "torch":
            raise OSError("libcudart.so.12: cannot open shared object file: No such file or directory")


def test_a_torch_that_does_not_import_is_torch_missing_never_a_fallback(root: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    put(root, "det/model.safetensors", tf.safetensors_bytes(WEIGHTS))
    h = handle(root, "det/model.safetensors")
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.setattr(sys, "meta_path", [_BrokenTorch(), *sys.meta_path])
    err = fails(h.load_state_dict, "torch_missing")
    assert "installed but does not import" in err.message and "libcudart" in err.message


def test_without_the_safetensors_package_the_error_says_so(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    put(root, "det/model.safetensors", tf.safetensors_bytes(WEIGHTS))
    h = handle(root, "det/model.safetensors")
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    err = fails(h.load_state_dict, "torch_missing")
    assert "safetensors package" in err.message and "model-manager[safetensors]" in (err.hint or "")
