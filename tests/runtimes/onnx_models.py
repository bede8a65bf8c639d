"""Real ONNX models for the ONNX handle's tests and bench, built with ``onnx.helper`` (IR 9, opset 17: what
onnxruntime 1.17 and later load), and the specs that name them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model_manager.mapping.schema import ResolvedModelSpec

IR_VERSION = 9
OPSET = 17
_TYPES = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "float64": TensorProto.DOUBLE,
          "int64": TensorProto.INT64, "bool": TensorProto.BOOL, "string": TensorProto.STRING}
Dims = list[int | str | None] | None


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _info(name: str, dtype: str, shape: Dims) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, _TYPES[dtype], shape)


def model(nodes: list[onnx.NodeProto], inputs: list[tuple[str, str, Dims]], outputs: list[tuple[str, str, Dims]],
          initializers: list[onnx.TensorProto] | None = None, *, ir_version: int = IR_VERSION) -> bytes:
    graph = helper.make_graph(nodes, "test", [_info(*i) for i in inputs], [_info(*o) for o in outputs],
                              initializer=initializers or [])
    built = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=ir_version,
                              producer_name="model_manager tests")
    return built.SerializeToString()


def relu(dtype: str = "float32", shape: Dims = None) -> bytes:
    """y = relu(x), x and y of ``dtype``, shape ["N", 4] unless given."""
    dims = ["N", 4] if shape is None else shape
    return model([helper.make_node("Relu", ["x"], ["y"])], [("x", dtype, dims)], [("y", dtype, dims)])


def mixed(dtype: str = "float32") -> bytes:
    """Inputs of three kinds: x (float [N, 4]), ids (int64 [2, 3]), mask (bool [N]); outputs y = relu(x),
    ids_out = ids + 1, keep = not mask. Only x and y are float: precision constrains them alone."""
    one = numpy_helper.from_array(np.array(1, np.int64), "one")
    return model([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Add", ["ids", "one"], ["ids_out"]),
                  helper.make_node("Not", ["mask"], ["keep"])],
                 [("x", dtype, ["N", 4]), ("ids", "int64", [2, 3]), ("mask", "bool", ["N"])],
                 [("y", dtype, ["N", 4]), ("ids_out", "int64", [2, 3]), ("keep", "bool", ["N"])], [one])


def strings() -> bytes:
    return model([helper.make_node("Identity", ["s"], ["t"])], [("s", "string", [None])], [("t", "string", [None])])


def reshape() -> bytes:
    """y = reshape(x, shape): a model whose run fails inside ONNX Runtime when the sizes disagree."""
    return model([helper.make_node("Reshape", ["x", "shape"], ["y"])],
                 [("x", "float32", ["N"]), ("shape", "int64", [2])], [("y", "float32", None)])


def mlp(width: int = 512, layers: int = 4, dtype: str = "float32", seed: int = 0) -> tuple[bytes, list[Any]]:
    """A ``layers``-deep MLP (MatMul, Add, Relu between layers) on x [N, width]; returns the model and its
    weights as numpy arrays [(w, b), ...] for a reference computation."""
    rng = np.random.default_rng(seed)
    nodes, inits, weights, last = [], [], [], "x"
    for i in range(layers):
        w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(dtype)
        b = (rng.standard_normal(width) * 0.1).astype(dtype)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        weights.append((w, b))
        out = "y" if i == layers - 1 else f"h{i}"
        nodes += [helper.make_node("MatMul", [last, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [out if i == layers - 1 else f"a{i}"])]
        if i < layers - 1:
            nodes.append(helper.make_node("Relu", [f"a{i}"], [out]))
        last = out
    return model(nodes, [("x", dtype, ["N", width])], [("y", dtype, ["N", width])], inits), weights


def mlp_reference(x: np.ndarray, weights: list[Any]) -> np.ndarray:
    h = x.astype(np.float64)
    for i, (w, b) in enumerate(weights):
        h = h @ w.astype(np.float64) + b.astype(np.float64)
        if i < len(weights) - 1:
            h = np.maximum(h, 0)
    return h


def place(root: Path, relative: str, data: bytes) -> tuple[str, str]:
    """Write ``data`` under the models root; its real path and digest."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path.resolve()), sha(data)


def spec(digest: str, *, device: str = "cpu", precision: str = "fp32", **overrides: Any) -> ResolvedModelSpec:
    """A validated spec of an in-process ONNX role (as mm.resolve would return it)."""
    fields: dict[str, Any] = {
        "component_name": "core_test", "role": "net", "runtime": "inprocess", "engine": "onnx",
        "precision": precision, "device": device, "device_policy": "cpu" if device == "cpu" else "any-gpu",
        "model_name": "test-net", "model_version": "1.0.0", "weights_digest": digest,
        "artifacts": {"onnx_path": "net/model.onnx"},
    }
    fields.update(overrides)
    return ResolvedModelSpec(**fields)


def entry(digest: str, relative: str = "net/model.onnx", **overrides: Any) -> dict[str, Any]:
    """The mapping entry of the same role, for a real ModelManager."""
    out: dict[str, Any] = {"runtime": "inprocess", "engine": "onnx", "precision": "fp32", "device_policy": "cpu",
                           "model_name": "test-net", "model_version": "1.0.0", "weights_digest": digest,
                           "artifacts": {"onnx_path": relative}}
    out.update(overrides)
    return out
