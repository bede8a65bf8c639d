"""One handle per role, Tier-0 preload (concurrent, every failure named) and mm.health() / `model-manager health`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.mappings import RUN_CONTEXT, TRITON_ENTRY

from model_manager import ModelManager
from model_manager.errors import InvalidModelSpec, ModelManagerError, WeightsDigestMismatch

ROOT = Path(__file__).resolve().parents[2]
SIG = ([("x", "float32", ["N", 4])], [("y", "float32", ["N", 4])])


def _mapping(fake_onnx_model: Any, tiers: dict[str, int | None]) -> dict[str, Any]:
    """One in-process ONNX role per name of ``tiers`` (component ``c_<name>``, role ``m``), each its own file."""
    components = {}
    for name, tier in tiers.items():
        model = fake_onnx_model(*SIG, path=f"{name}/model.onnx", model_name=f"fake-{name}", tier=tier)
        components[f"c_{name}"] = {"m": model.entry}
    return {"schema_version": 1, "components": components}


def _spec(mm: ModelManager, name: str) -> Any:
    return mm.resolve(component=f"c_{name}", role="m")


def test_preload_builds_the_tier_0_handles_that_get_runtime_then_returns(fake_onnx_model: Any) -> None:
    mm = ModelManager(dict(RUN_CONTEXT), _mapping(fake_onnx_model, {"a": 0, "b": 0, "c": 1, "d": None}))
    handles = mm.preload(tier=0)
    assert sorted(handles) == ["c_a/m", "c_b/m"]
    assert mm.get_runtime(_spec(mm, "a")) is handles["c_a/m"]
    out = handles["c_b/m"].run({"x": np.ones((2, 4), np.float32)})
    assert out["y"].shape == (2, 4)
    assert sorted(mm.preload(tier=1)) == ["c_c/m"]
    assert mm.preload(tier=5) == {}


def test_get_runtime_from_many_threads_builds_one_handle(fake_onnx_model: Any) -> None:
    mm = ModelManager(dict(RUN_CONTEXT), _mapping(fake_onnx_model, {"a": None}))
    got: list[Any] = []
    barrier = threading.Barrier(8)

    def take() -> None:
        barrier.wait()
        got.append(mm.get_runtime(_spec(mm, "a")))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(h is got[0] for h in got)


def test_a_preload_failure_names_every_model_that_failed(fake_onnx_model: Any, tmp_path: Path) -> None:
    mapping = _mapping(fake_onnx_model, {"a": 0, "b": 0, "c": 0})
    root = Path(os.environ["MM_MODELS_ROOT"])
    garbage = b"not an onnx model at all"
    (root / "b" / "model.onnx").write_bytes(garbage)  # pinned as it is: verification passes, loading fails
    import hashlib

    mapping["components"]["c_b"]["m"]["weights_digest"] = "sha256:" + hashlib.sha256(garbage).hexdigest()
    mm = ModelManager(dict(RUN_CONTEXT), mapping)
    data = (root / "c" / "model.onnx").read_bytes()
    (root / "c" / "model.onnx").write_bytes(data + b"\0")  # swapped after verification
    with pytest.raises(ModelManagerError) as info:
        mm.preload(tier=0)
    text = str(info.value)
    assert "2 of 3 models failed" in text
    assert "c_b/m (model_artifact_invalid" in text and "c_c/m (weights_digest_mismatch" in text
    # the one that built stays built; the failed ones fail again, naming themselves
    assert mm.get_runtime(_spec(mm, "a")).run({"x": np.zeros((1, 4), np.float32)})["y"].shape == (1, 4)
    with pytest.raises(WeightsDigestMismatch) as one:
        mm.get_runtime(_spec(mm, "c"))
    assert (one.value.component, one.value.role) == ("c_c", "m")


def test_a_single_preload_failure_is_raised_as_it_is(fake_onnx_model: Any) -> None:
    mm = ModelManager(dict(RUN_CONTEXT), _mapping(fake_onnx_model, {"a": 0}))
    path = Path(os.environ["MM_MODELS_ROOT"], "a", "model.onnx")
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(WeightsDigestMismatch) as info:
        mm.preload()
    assert (info.value.component, info.value.field) == ("c_a", "weights_digest")


def test_session_options_are_fixed_by_the_first_call(fake_onnx_model: Any) -> None:
    mm = ModelManager(dict(RUN_CONTEXT), _mapping(fake_onnx_model, {"a": None}))
    spec = _spec(mm, "a")
    first = mm.get_runtime(spec, session_options={"intra_op_num_threads": 1})
    assert mm.get_runtime(spec) is first
    assert mm.get_runtime(spec, session_options={"intra_op_num_threads": 1}) is first
    with pytest.raises(InvalidModelSpec) as info:
        mm.get_runtime(spec, session_options={"intra_op_num_threads": 2})
    assert (info.value.component, info.value.field) == ("c_a", "session_options")


def test_health_reports_every_role_and_never_raises(fake_onnx_model: Any) -> None:
    mapping = _mapping(fake_onnx_model, {"a": 0, "b": None, "c": None})
    triton = dict(TRITON_ENTRY, triton=dict(TRITON_ENTRY["triton"], http_url="127.0.0.1:9"))  # nothing listens
    mapping["components"]["c_t"] = {"m": triton}
    mm = ModelManager(dict(RUN_CONTEXT), mapping, triton_timeouts={"connect": 0.5, "network": 1})
    path = Path(os.environ["MM_MODELS_ROOT"], "c", "model.onnx")
    path.write_bytes(path.read_bytes()[:-1])  # swapped after the manager verified it
    records = {f"{r.component}/{r.role}": r for r in mm.health(probes={
        "c_a/m": {"x": np.ones((3, 4), np.float32)},
        "c_b/m": {"x": np.ones((3, 5), np.float32)},  # the wrong size
        "c_nope/m": {"x": np.ones((1, 4), np.float32)},
    })}
    assert set(records) == {"c_a/m", "c_b/m", "c_c/m", "c_t/m", "c_nope/m"}
    a, b, c, t, nope = (records[k] for k in ("c_a/m", "c_b/m", "c_c/m", "c_t/m", "c_nope/m"))
    assert (a.ok, a.check, a.code) == (True, "probe", None)
    assert (b.ok, b.check, b.code) == (False, "probe", "inference_failed") and "x" in (b.message or "")
    assert (c.ok, c.check, c.code) == (False, "creation", "weights_digest_mismatch")
    assert (t.ok, t.check, t.code) == (False, "triton-check", "triton_unavailable")
    assert (nope.ok, nope.code) == (False, "model_mapping_missing")
    assert all(r.seconds >= 0 for r in records.values())
    assert mm.get_runtime(_spec(mm, "a")) is mm.get_runtime(_spec(mm, "a"))  # health built the shared handle
    json.dumps([r.model_dump() for r in records.values()])  # plain data


def test_health_turns_a_bug_into_a_record(fake_onnx_model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    mm = ModelManager(dict(RUN_CONTEXT), _mapping(fake_onnx_model, {"a": None}))
    handle = mm.get_runtime(_spec(mm, "a"))

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug in the pipeline's own probe code")

    monkeypatch.setattr(handle, "run", broken, raising=False)
    (record,) = mm.health(probes={"c_a/m": {"x": np.ones((1, 4), np.float32)}})
    assert (record.ok, record.code) == (False, "unexpected_error") and "RuntimeError" in (record.message or "")


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "model_manager.cli", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_the_health_command_exits_1_when_a_role_is_not_ok(fake_onnx_model: Any, tmp_path: Path) -> None:
    import yaml

    mapping = _mapping(fake_onnx_model, {"a": 0, "b": None})
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump(mapping))
    env = dict(os.environ)
    done = _cli("health", "--profile", str(profile), env=env)
    assert done.returncode == 0, done.stderr
    assert "c_a/m (inprocess/onnx on cpu, creation" in done.stdout and "every role is ready" in done.stdout
    path = Path(os.environ["MM_MODELS_ROOT"], "b", "model.onnx")
    path.write_bytes(path.read_bytes()[:-1] + b"\1")
    mapping["components"]["c_b"]["m"]["weights_digest"] = "sha256:" + __import__("hashlib").sha256(
        path.read_bytes()).hexdigest()
    mapping["components"]["c_t"] = {"m": dict(TRITON_ENTRY, triton=dict(TRITON_ENTRY["triton"],
                                                                         http_url="127.0.0.1:9"))}
    profile.write_text(yaml.safe_dump(mapping))
    done = _cli("health", "--profile", str(profile), "--format", "json", env=env)
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    codes = {f"{r['component']}/{r['role']}": r["code"] for r in document["records"]}
    assert codes["c_a/m"] is None and codes["c_t/m"] == "triton_unavailable"
    assert codes["c_b/m"] in {"model_artifact_invalid", "inference_failed"}
    assert document["ok"] is False and document["exit"] == 1


def test_the_health_command_on_a_profile_that_does_not_verify(fake_onnx_model: Any, tmp_path: Path) -> None:
    import yaml

    mapping = _mapping(fake_onnx_model, {"a": None})
    mapping["components"]["c_a"]["m"]["weights_digest"] = "sha256:" + "0" * 64
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump(mapping))
    done = _cli("health", "--profile", str(profile), env=dict(os.environ))
    assert done.returncode == 1 and done.stderr.startswith("weights_digest_mismatch: c_a/m")


def test_a_torch_role_through_the_manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from model_manager.artifacts.cache import DigestCache
    from model_manager.artifacts.digest import weights_digest

    root = tmp_path / "models"
    shutil.copytree(ROOT / "examples" / "models" / "audio" / "whisper-tiny", root / "asr")
    monkeypatch.setenv("MM_MODELS_ROOT", str(root))
    entry = {"runtime": "inprocess", "engine": "torch", "precision": "fp32", "device_policy": "cpu",
             "model_name": "whisper-tiny", "model_version": "1", "tier": 0, "artifacts": {"weights_path": "asr"},
             "weights_digest": weights_digest(str(root / "asr"), str(root), DigestCache(None))}
    mm = ModelManager(dict(RUN_CONTEXT), {"schema_version": 1, "components": {"c_asr": {"m": entry}}})
    spec = mm.resolve(component="c_asr", role="m")
    handle = mm.preload()["c_asr/m"]
    assert mm.get_runtime(spec) is handle and handle.device == "cpu"
    assert handle.load_state_dict()["encoder.weight"].shape == (4, 4)
    with pytest.raises(InvalidModelSpec) as info:
        mm.get_runtime(spec, session_options={"intra_op_num_threads": 1})
    assert info.value.field == "session_options"
    (record,) = mm.health()
    assert (record.ok, record.check) == (True, "digest")
    (record,) = mm.health(probes={"c_asr/m": {"x": np.zeros(1)}})
    assert (record.ok, record.code) == (False, "invalid_model_spec")
    (root / "asr" / "config.json").write_text("{}")  # swapped after the manager verified the folder
    (record,) = mm.health()
    assert (record.ok, record.code) == (False, "weights_digest_mismatch")
    with pytest.raises(WeightsDigestMismatch):
        handle.load_state_dict()
