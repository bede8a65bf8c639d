"""The ONNX handle doing its job: real models (fp32, fp16, dynamic dims, mixed element types) on the CPU,
the run() contract, output selection, session options, threads, describe(), a real ModelManager."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.imports import modules_after
from helpers.mappings import RUN_CONTEXT
from onnx_models import entry, mixed, mlp, mlp_reference, place, relu, spec, strings

from model_manager import ModelManager
from model_manager.runtimes.onnx import OnnxHandle, OnnxTensor, onnx_handle


def handle_of(tmp_path: Path, data: bytes, **kwargs: Any) -> OnnxHandle:
    path, digest = place(tmp_path / "models", "net/model.onnx", data)
    options = kwargs.pop("session_options", None)
    return onnx_handle(spec(digest, **kwargs), path, session_options=options)


def test_importing_the_module_loads_neither_onnxruntime_nor_numpy() -> None:
    loaded = modules_after("import model_manager.runtimes.onnx")
    assert not [m for m in ("numpy", "onnxruntime") if m in loaded]


def test_fp32_mlp_runs_on_the_cpu_with_any_batch(tmp_path: Path) -> None:
    data, weights = mlp(width=64, layers=3)
    h = handle_of(tmp_path, data)
    assert (h.provider, h.device) == ("CPUExecutionProvider", "cpu")
    for batch in (1, 5, 8):
        x = np.random.default_rng(batch).standard_normal((batch, 64)).astype(np.float32)
        out = h.run({"x": x})
        assert list(out) == ["y"] and out["y"].dtype == np.float32 and out["y"].shape == (batch, 64)
        np.testing.assert_allclose(out["y"], mlp_reference(x, weights), rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(h({"x": x})["y"], out["y"])  # handle(...) is run(...)


def test_fp16_model_with_precision_fp16(tmp_path: Path) -> None:
    data, weights = mlp(width=32, layers=2, dtype="float16")
    h = handle_of(tmp_path, data, precision="fp16")
    x = np.random.default_rng(0).standard_normal((3, 32)).astype(np.float16)
    y = h({"x": x})["y"]
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.astype(np.float64), mlp_reference(x, weights), rtol=2e-2, atol=2e-2)
    assert h.inputs[0].dtype is np.dtype(np.float16) and h.inputs[0].type == "tensor(float16)"


@pytest.mark.parametrize(("dtype", "precision"), [("float32", "fp32"), ("float16", "fp16")])
def test_integer_and_bool_inputs_are_free_of_the_precision(tmp_path: Path, dtype: str, precision: str) -> None:
    h = handle_of(tmp_path, mixed(dtype), precision=precision)
    x = np.array([[-1, 2, -3, 4]], dtype=dtype)
    out = h({"x": x, "ids": np.arange(6, dtype=np.int64).reshape(2, 3), "mask": np.array([True])})
    np.testing.assert_array_equal(out["y"], np.maximum(x, 0))
    np.testing.assert_array_equal(out["ids_out"], np.arange(1, 7).reshape(2, 3))
    np.testing.assert_array_equal(out["keep"], [False])


def test_signature_is_exposed_with_symbolic_dims(tmp_path: Path) -> None:
    h = handle_of(tmp_path, mixed())
    assert h.inputs == (OnnxTensor("x", "tensor(float)", np.dtype(np.float32), ("N", 4)),
                        OnnxTensor("ids", "tensor(int64)", np.dtype(np.int64), (2, 3)),
                        OnnxTensor("mask", "tensor(bool)", np.dtype(np.bool_), ("N",)))
    assert [t.name for t in h.outputs] == ["y", "ids_out", "keep"]
    unnamed = handle_of(tmp_path, relu(shape=[None, 4]))
    assert unnamed.inputs[0].shape == (None, 4)
    assert unnamed({"x": np.ones((7, 4), np.float32)})["y"].shape == (7, 4)


def test_describe_is_plain_data_for_provenance(tmp_path: Path) -> None:
    h = handle_of(tmp_path, relu())
    described = h.describe()
    assert json.loads(json.dumps(described)) == described
    assert described["provider"] == "CPUExecutionProvider" and described["device"] == "cpu"
    assert described["inputs"] == [{"name": "x", "type": "tensor(float)", "shape": ["N", 4]}]
    assert described["session_options"] == {"intra_op_num_threads": 0, "inter_op_num_threads": 0,
                                            "graph_optimization_level": "all", "execution_mode": "sequential",
                                            "log_severity_level": 4}
    assert described["weights_digest"] == h.spec.weights_digest and described["onnxruntime"]
    assert "core_test/net" in repr(h) and "CPUExecutionProvider" in repr(h)


def test_session_options_reach_the_session(tmp_path: Path) -> None:
    chosen = {"intra_op_num_threads": 1, "inter_op_num_threads": 2, "graph_optimization_level": "disabled",
              "execution_mode": "parallel", "log_severity_level": 3}
    h = handle_of(tmp_path, relu(), session_options=chosen)
    assert h.describe()["session_options"] == chosen
    assert h({"x": np.ones((1, 4), np.float32)})["y"].shape == (1, 4)


@pytest.mark.parametrize("level", ["basic", "extended", "all"])
def test_optimisation_levels_give_the_same_numbers_here(tmp_path: Path, level: str) -> None:
    data, weights = mlp(width=32, layers=2)
    h = handle_of(tmp_path, data, session_options={"graph_optimization_level": level, "intra_op_num_threads": 1})
    x = np.ones((2, 32), np.float32)
    np.testing.assert_allclose(h({"x": x})["y"], mlp_reference(x, weights), rtol=1e-4, atol=1e-4)


def test_output_selection(tmp_path: Path) -> None:
    h = handle_of(tmp_path, mixed())
    feed = {"x": np.ones((2, 4), np.float32), "ids": np.zeros((2, 3), np.int64), "mask": np.array([True, False])}
    assert list(h(feed, outputs=["keep", "y"])) == ["keep", "y"]
    assert list(h(feed, outputs="ids_out")) == ["ids_out"]
    assert list(h(feed, outputs=("y",))) == ["y"]


def test_inputs_that_are_unusual_but_right(tmp_path: Path) -> None:
    """A Mapping that is not a dict, a strided view, an equal dtype that is another object: all accepted."""
    h = handle_of(tmp_path, mixed())
    x = np.arange(16, dtype=np.float32).reshape(2, 8)[:, ::2]
    ids = np.zeros((2, 3), dtype=np.longlong)
    feed = OrderedDict(x=x, ids=ids, mask=np.array([True, False]))
    np.testing.assert_array_equal(h(feed)["y"], x)
    s = handle_of(tmp_path, strings())
    assert list(s({"s": np.array(["a", "bc"])})["t"]) == ["a", "bc"]
    assert list(s({"s": np.array(["a"], dtype=object)})["t"]) == ["a"]


def test_one_handle_serves_many_threads(tmp_path: Path) -> None:
    data, weights = mlp(width=32, layers=2)
    h = handle_of(tmp_path, data)
    failures: list[str] = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(50):
            x = rng.standard_normal((int(rng.integers(1, 6)), 32)).astype(np.float32)
            got = h({"x": x})["y"]
            if not np.allclose(got, mlp_reference(x, weights), rtol=1e-4, atol=1e-4):
                failures.append(f"thread {seed}: wrong result")
            try:
                h({"x": x.astype(np.float64)})
                failures.append(f"thread {seed}: float64 accepted")
            except Exception as exc:
                if getattr(exc, "code", None) != "inference_failed":
                    failures.append(f"thread {seed}: {exc!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_from_a_real_manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "models"
    _, digest = place(root, "net/model.onnx", relu())
    monkeypatch.setenv("MM_MODELS_ROOT", str(root))
    mm = ModelManager(dict(RUN_CONTEXT), {"schema_version": 1, "components": {"core_test": {"net": entry(digest)}}})
    resolved = mm.resolve(component="core_test", role="net")
    h = onnx_handle(resolved, mm.weights_path(resolved))
    assert h.spec is resolved and h.describe()["model_name"] == "test-net"
    np.testing.assert_array_equal(h({"x": -np.ones((1, 4), np.float32)})["y"], np.zeros((1, 4)))
