"""Every bad mapping ends in the right code, naming the component, role and field; nothing is defaulted."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from model_manager import ModelManager
from model_manager.errors import ModelManagerError
from model_manager.mapping.loader import parse_mapping

Mutator = Callable[[dict[str, Any]], None]


def _flow(m: dict[str, Any]) -> dict[str, Any]:
    return m["components"]["core_optical_flow"]["flow"]  # type: ignore[no-any-return]


def _image(m: dict[str, Any]) -> dict[str, Any]:
    return m["components"]["core_clip"]["image_encoder"]  # type: ignore[no-any-return]


def _drop(key: str, where: Callable[[dict[str, Any]], dict[str, Any]] = _flow) -> Mutator:
    return lambda m: where(m).pop(key)


def _set(key: str, value: object, where: Callable[[dict[str, Any]], dict[str, Any]] = _flow) -> Mutator:
    return lambda m: where(m).__setitem__(key, value)


PINNED = ["runtime", "engine", "precision", "device_policy", "model_name", "model_version", "weights_digest"]

CASES: list[tuple[str, Mutator, str, str | None]] = [
    *[(f"missing {k}", _drop(k), "invalid_model_spec", k) for k in PINNED],
    *[(f"triton missing {k}", _drop(k, _image), "invalid_model_spec", k) for k in PINNED],
    ("unknown key", _set("weight_digest", "x"), "invalid_model_spec", "weight_digest"),
    ("unknown triton key", lambda m: _image(m)["triton"].__setitem__("url", "x"), "invalid_model_spec", "triton.url"),
    ("unknown tensor key", lambda m: _image(m)["triton"]["inputs"][0].__setitem__("format", "x"),
     "invalid_model_spec", "triton.inputs[0].format"),
    ("bad runtime", _set("runtime", "docker"), "invalid_model_spec", "runtime"),
    ("bad engine", _set("engine", "jax"), "invalid_model_spec", "engine"),
    ("bad precision", _set("precision", "int8"), "invalid_model_spec", "precision"),
    ("bad device", _set("device", "gpu0"), "invalid_model_spec", "device"),
    ("bad device_policy", _set("device_policy", "fastest"), "invalid_model_spec", "device_policy"),
    ("bad dtype", lambda m: _image(m)["triton"]["inputs"][0].__setitem__("dtype", "float16"),
     "invalid_model_spec", "triton.inputs[0].dtype"),
    ("bad shape", lambda m: _image(m)["triton"]["outputs"][0].__setitem__("shape", [-2]),
     "invalid_model_spec", "triton.outputs[0].shape[0]"),
    ("digest not sha256 form", _set("weights_digest", "md5:abc"), "invalid_model_spec", "weights_digest"),
    ("digest upper hex", _set("weights_digest", "sha256:" + "A" * 64), "invalid_model_spec", "weights_digest"),
    ("digest bare hex", _set("weights_digest", "a" * 64), "invalid_model_spec", "weights_digest"),
    ("digest unknown for a local file", _set("weights_digest", "unknown"), "invalid_model_spec", "weights_digest"),
    ("version not a string", _set("model_version", 1.0), "invalid_model_spec", "model_version"),
    ("version empty", _set("model_version", ""), "invalid_model_spec", "model_version"),
    ("tier as bool", _set("tier", True), "invalid_model_spec", "tier"),
    ("any-gpu without device", lambda m: _image(m).pop("device"), "invalid_model_spec", "device"),
    ("device against policy", _set("device", "cuda:0"), "invalid_model_spec", "device"),
    ("cuda:1 policy, cuda:0 device", lambda m: _image(m).update(device_policy="cuda:1"), "invalid_model_spec", None),
    ("triton without block", lambda m: _image(m).pop("triton"), "invalid_model_spec", "triton"),
    ("inprocess with triton block", _set("triton", copy.deepcopy({"http_url": "localhost:8000"})),
     "invalid_model_spec", None),
    ("inprocess without artifacts", _drop("artifacts"), "invalid_model_spec", "artifacts.onnx_path"),
    ("torch without weights_path", _set("engine", "torch"), "invalid_model_spec", None),
    ("tensorrt in process", _set("engine", "tensorrt"), "invalid_model_spec", "engine"),
    ("onnx entry naming torch weights", lambda m: _flow(m)["artifacts"].__setitem__("weights_path", "w.pt"),
     "invalid_model_spec", "artifacts.weights_path"),
    ("triton url with scheme", lambda m: _image(m)["triton"].__setitem__("http_url", "http://localhost:8000"),
     "invalid_model_spec", "triton.http_url"),
    ("triton url without port", lambda m: _image(m)["triton"].__setitem__("http_url", "localhost"),
     "invalid_model_spec", "triton.http_url"),
    ("triton version latest", lambda m: _image(m)["triton"].__setitem__("model_version", ""),
     "invalid_model_spec", "triton.model_version"),
    ("triton no inputs", lambda m: _image(m)["triton"].__setitem__("inputs", []),
     "invalid_model_spec", "triton.inputs"),
    ("tier 0 on triton", _set("tier", 0, _image), "invalid_model_spec", "tier"),
    ("triton with weights artifact", _set("artifacts", {"onnx_path": "x.onnx"}, _image), "invalid_model_spec", None),
    ("entry not a mapping", lambda m: m["components"]["core_clip"].__setitem__("image_encoder", [1]),
     "invalid_model_spec", None),
    ("role name not a string", lambda m: m["components"]["core_clip"].__setitem__(3, {}), "invalid_model_spec", None),
    ("empty components", lambda m: m.__setitem__("components", {}), "invalid_model_spec", "components"),
    ("component without roles", lambda m: m["components"].__setitem__("core_x", {}), "invalid_model_spec", None),
    ("unknown top-level key", lambda m: m.__setitem__("defaults", {}), "invalid_model_spec", "defaults"),
    ("schema_version missing", lambda m: m.pop("schema_version"), "invalid_model_spec", "schema_version"),
    ("schema_version 2", lambda m: m.__setitem__("schema_version", 2), "invalid_model_spec", "schema_version"),
    ("schema_version as string", lambda m: m.__setitem__("schema_version", "1"), "invalid_model_spec",
     "schema_version"),
]


@pytest.mark.parametrize(("case", "mutate", "code", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_mapping_is_refused_with_its_place(
    mapping: dict[str, Any], case: str, mutate: Mutator, code: str, field: str | None
) -> None:
    mutate(mapping)
    with pytest.raises(ModelManagerError) as info:
        parse_mapping(mapping)
    err = info.value
    assert err.code == code, str(err)
    assert str(err).startswith(code + ":")
    assert err.hint
    if field is not None:
        assert err.field == field, str(err)
    if "components" in mapping and isinstance(mapping["components"], dict) and err.field not in (
        "components", "defaults", "schema_version"
    ):
        assert err.component in mapping["components"], str(err)


def test_pydantic_never_coerces(mapping: dict[str, Any]) -> None:
    _flow(mapping)["tier"] = "0"
    with pytest.raises(ModelManagerError, match="tier"):
        parse_mapping(mapping)


def test_unknown_digest_is_allowed_for_triton(mapping: dict[str, Any]) -> None:
    _image(mapping)["weights_digest"] = "unknown"
    assert parse_mapping(mapping).components["core_clip"]["image_encoder"].weights_digest == "unknown"


def test_concrete_policy_stands_for_the_device(mapping: dict[str, Any]) -> None:
    parsed = parse_mapping(mapping)
    assert parsed.components["core_optical_flow"]["flow"].device is None


@pytest.mark.parametrize("field", ["platform_id", "video_id", "run_id", "config_hash", "sampling_policy_version",
                                   "dataprocessor_version"])
def test_incomplete_run_context(models_root: object, mapping: dict[str, Any], run_context: dict[str, str],
                                field: str) -> None:
    del run_context[field]
    with pytest.raises(ModelManagerError) as info:
        ModelManager(run_context, mapping)
    assert info.value.code == "invalid_run_context"
    assert info.value.field == f"run_context.{field}"


@pytest.mark.parametrize("bad", [{"video_id": 5}, {"run_id": ""}, {"extra": "x"}])
def test_run_context_values(models_root: object, mapping: dict[str, Any], run_context: dict[str, Any],
                            bad: dict[str, Any]) -> None:
    run_context.update(bad)
    with pytest.raises(ModelManagerError) as info:
        ModelManager(run_context, mapping)
    assert info.value.code == "invalid_run_context"


def test_run_context_of_wrong_type(mapping: dict[str, Any]) -> None:
    with pytest.raises(ModelManagerError) as info:
        ModelManager(["p1"], mapping)  # type: ignore[arg-type]
    assert info.value.code == "invalid_run_context"
