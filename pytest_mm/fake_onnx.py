"""Small, real ONNX models for a declared signature, built with ``onnx.helper`` (no pytest here).

Every fake computes the same documented function (docs/pytest-mm.md, "Fake ONNX models")::

    c   = sum over the inputs, in declared order, of  x.astype(float64).sum() / max(x.size, 1)
    y_k = np.full(shape_k, c + k + 1)      # k: the output's position, from 0

cast to the output's dtype: float outputs as they are, integer outputs rounded half to even first,
bool outputs ``!= 0``. ``shape_k`` is the declared shape with each dynamic dim taken from the inputs
at run time: a symbol (``"batch"``) from the first input axis with the same symbol, ``None`` (or
``-1``) at axis j from axis j of the first input that is dynamic there. ``expected_outputs`` is the
same function in numpy. Models use opset 17 and IR version 9 (ONNX Runtime 1.17 and later).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model_manager.artifacts.paths import check_relative
from model_manager.errors import EnvironmentFailure, InvalidModelSpec, shown

if TYPE_CHECKING:
    import onnx

__all__ = ["IR_VERSION", "OPSET", "FakeOnnxModel", "ModelSig", "TensorSig", "build_model", "example_inputs",
           "expected_outputs", "make_fake_onnx", "model_sig", "place", "tensor_sig"]

OPSET = 17
IR_VERSION = 9
#: canonical dtype (numpy's name) -> ONNX TensorProto attribute
_ONNX_TYPES = {"float32": "FLOAT", "float16": "FLOAT16", "float64": "DOUBLE", "int8": "INT8", "int16": "INT16",
               "int32": "INT32", "int64": "INT64", "uint8": "UINT8", "bool": "BOOL"}
#: other spellings, compared lowercased: Triton's (FP16, INT64, BOOL ...) and the usual short names
_ALIASES = {"fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16", "fp64": "float64",
            "double": "float64"}
_PRECISION_DTYPE = {"fp16": "float16", "fp32": "float32"}
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_TENSOR_KEYS = ("name", "dtype", "shape")
Dim = int | str | None


def _bad(message: str, field: str, hint: str) -> InvalidModelSpec:
    return InvalidModelSpec(message, field=field, hint=hint)


def _dtype(value: object) -> str:
    if isinstance(value, str):
        name = _ALIASES.get(value.lower(), value.lower())
    elif value is None:  # np.dtype(None) is float64: no guessing
        name = ""
    else:
        try:
            name = np.dtype(value).name  # type: ignore[call-overload]
        except TypeError:
            name = ""
    if name not in _ONNX_TYPES:
        raise _bad(f"dtype {shown(value)} is not supported", "dtype",
                   f"use one of {', '.join(_ONNX_TYPES)} (or FP16/FP32/INT64 ... as Triton writes them)")
    return name


def _dim(value: object, j: int) -> Dim:
    field, hint = f"shape[{j}]", "a dim is a size >= 0, None or -1 (any size), or a symbol such as 'batch'"
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if value < -1:
            raise _bad(f"dim {value} is negative", field, hint)
        return None if value == -1 else int(value)
    if value is None:
        return None
    if isinstance(value, str):
        if not _SYMBOL.fullmatch(value):
            raise _bad(f"dim symbol {shown(value)} is not a name (letter or _, then letters, digits, _)", field, hint)
        return value
    raise _bad(f"dim {shown(value)} ({type(value).__name__}) is not a size, None or a symbol", field, hint)


@dataclass(frozen=True, slots=True)
class TensorSig:
    """One input or output: ``TensorSig("pixels", "float16", ["batch", 3, 224, 224])``; checked and
    normalised when made (dtype to numpy's name, shape to a tuple, -1 to None)."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name or name.strip() != name or not name.isprintable() or len(name) > 256:
            raise _bad(f"tensor name {shown(name)} is not a non-empty, printable name without surrounding spaces",
                       "name", "name each input and output, e.g. 'pixel_values'")
        if isinstance(self.shape, (str, bytes)) or not isinstance(self.shape, Sequence):
            raise _bad(f"shape {shown(self.shape)} is not a list of dims", "shape",
                       "write the shape as a list, e.g. [None, 3, 224, 224]; [] is a scalar")
        object.__setattr__(self, "dtype", _dtype(self.dtype))
        object.__setattr__(self, "shape", tuple(_dim(d, j) for j, d in enumerate(self.shape)))


def tensor_sig(value: object, where: str = "tensor") -> TensorSig:
    """A TensorSig from itself, ``{"name", "dtype", "shape"}`` or ``(name, dtype, shape)``; errors name ``where``."""
    try:
        if isinstance(value, TensorSig):
            return value
        if isinstance(value, Mapping):
            keys = set(value)
            if keys != set(_TENSOR_KEYS):
                raise _bad(f"keys {shown(sorted(map(str, keys)))} are not exactly name, dtype, shape", "(keys)",
                           "write {'name': 'x', 'dtype': 'float32', 'shape': [None, 3]}")
            return TensorSig(value["name"], value["dtype"], value["shape"])
        if isinstance(value, (tuple, list)) and len(value) == 3:
            return TensorSig(*value)
        raise _bad(f"{shown(value)} is not a tensor signature", "(tensor)",
                   "give a TensorSig, a dict with name, dtype and shape, or a (name, dtype, shape) tuple")
    except InvalidModelSpec as exc:
        raise InvalidModelSpec(exc.message, field=f"{where}.{exc.field}", hint=exc.hint) from None


@dataclass(frozen=True, slots=True)
class ModelSig:
    """A model's inputs and outputs, checked when made: at least one of each, names unique over both
    sides, and every dynamic output dim derivable from the inputs (see the module docstring)."""

    inputs: tuple[TensorSig, ...]
    outputs: tuple[TensorSig, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for side in ("inputs", "outputs"):
            given = getattr(self, side)
            if isinstance(given, (str, bytes, Mapping)) or not isinstance(given, Sequence) or not given:
                raise _bad(f"{side} {shown(given)} is not a non-empty list of tensors", side,
                           "a fake model needs at least one input and one output")
            tensors = tuple(tensor_sig(t, f"{side}[{i}]") for i, t in enumerate(given))
            for i, t in enumerate(tensors):
                if t.name in seen:
                    raise _bad(f"tensor name {shown(t.name)} is used twice", f"{side}[{i}].name",
                               "names are unique over the inputs and the outputs together")
                seen.add(t.name)
            object.__setattr__(self, side, tensors)
        dim_sources(self)

    @property
    def precision(self) -> str:
        """The mapping's precision for it: fp16 if any input or output is float16, else fp32."""
        return "fp16" if any(t.dtype == "float16" for t in (*self.inputs, *self.outputs)) else "fp32"

    def precision_problems(self, precision: str) -> list[str]:
        """The float inputs and outputs whose dtype is not the one ``precision`` names (fp16: float16,
        fp32: float32), which the manager's ONNX handle refuses to run; float64 fits neither."""
        want = _PRECISION_DTYPE.get(precision)
        if want is None:
            raise _bad(f"precision {shown(precision)} is not fp16 or fp32", "precision", "give 'fp16' or 'fp32'")
        return [f"{side}[{i}] {t.name!r} is {t.dtype}" for side in ("inputs", "outputs")
                for i, t in enumerate(getattr(self, side)) if t.dtype.startswith("float") and t.dtype != want]


def model_sig(value: object) -> ModelSig:
    """A ModelSig from itself, ``{"inputs": [...], "outputs": [...]}`` or ``(inputs, outputs)``."""
    if isinstance(value, ModelSig):
        return value
    if isinstance(value, Mapping):
        if set(value) != {"inputs", "outputs"}:
            raise _bad(f"keys {shown(sorted(map(str, value)))} are not exactly inputs, outputs", "signature",
                       "write {'inputs': [...], 'outputs': [...]}")
        return ModelSig(value["inputs"], value["outputs"])
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return ModelSig(*value)
    raise _bad(f"{shown(value)} is not a model signature", "signature",
               "give a ModelSig, {'inputs': [...], 'outputs': [...]} or an (inputs, outputs) pair")


def dim_sources(sig: ModelSig) -> list[list[int | tuple[int, int]]]:
    """Per output, per axis: a fixed size, or (input index, axis) whose run-time size it takes."""
    out: list[list[int | tuple[int, int]]] = []
    for k, t in enumerate(sig.outputs):
        dims: list[int | tuple[int, int]] = []
        for j, d in enumerate(t.shape):
            if isinstance(d, int):
                dims.append(d)
                continue
            found = next(((i, a) for i, x in enumerate(sig.inputs) for a, xd in enumerate(x.shape)
                          if (xd == d if isinstance(d, str) else a == j and not isinstance(xd, int))), None)
            if found is None:
                what = f"symbol {d!r}" if isinstance(d, str) else f"a dynamic dim at axis {j}"
                raise _bad(f"output {t.name!r}: no input has {what}, so its size cannot be derived",
                           f"outputs[{k}].shape[{j}]", "give the output a fixed size there, or a symbol an input uses")
            dims.append(found)
        out.append(dims)
    return out


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise EnvironmentFailure(f"the onnx package cannot be imported ({exc}): fake ONNX models are built with it",
                                 field="onnx", hint="install the dev extra (pip install -e '.[dev]') or 'onnx'"
                                 ) from None
    return onnx


class _Graph:
    """Nodes and constants of the graph being built, with intermediate names no user name can clash with."""

    def __init__(self, onnx: Any, taken: set[str]) -> None:
        self.onnx, self._n = onnx, 0
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._prefix = "_fake"
        while any(name.startswith(self._prefix) for name in taken):
            self._prefix += "_"

    def node(self, op: str, inputs: list[str], out: str | None = None, **attrs: Any) -> str:
        if out is None:
            out, self._n = f"{self._prefix}{self._n}", self._n + 1
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], **attrs))
        return out

    def const(self, value: np.ndarray) -> str:
        name, self._n = f"{self._prefix}{self._n}", self._n + 1
        self.inits.append(self.onnx.numpy_helper.from_array(value, name))
        return name


def build_model(sig: ModelSig, graph_name: str = "fake_onnx") -> onnx.ModelProto:
    """The checked ONNX model computing the module's function for ``sig``."""
    onnx = _onnx()
    types, helper = onnx.TensorProto, onnx.helper
    g = _Graph(onnx, {t.name for t in (*sig.inputs, *sig.outputs)})
    one = g.const(np.array(1, dtype=np.int64))
    means = []
    for t in sig.inputs:
        total = g.node("ReduceSum", [g.node("Cast", [t.name], to=types.DOUBLE)], keepdims=0)
        count = g.node("Cast", [g.node("Max", [g.node("Size", [t.name]), one])], to=types.DOUBLE)
        means.append(g.node("Div", [total, count]))
    c = g.node("Sum", means)
    for k, (t, dims) in enumerate(zip(sig.outputs, dim_sources(sig), strict=True)):
        value = g.node("Add", [c, g.const(np.array(k + 1, dtype=np.float64))])
        if t.dtype.startswith(("int", "uint")):
            value = g.node("Round", [value])
        elem = getattr(types, _ONNX_TYPES[t.dtype])
        if not dims:
            g.node("Cast", [value], t.name, to=elem)
            continue
        parts = [g.const(np.array([d], dtype=np.int64)) if isinstance(d, int)
                 else g.node("Shape", [sig.inputs[d[0]].name], start=d[1], end=d[1] + 1) for d in dims]
        g.node("Expand", [g.node("Cast", [value], to=elem), g.node("Concat", parts, axis=0)], t.name)
    info = [[helper.make_tensor_value_info(t.name, getattr(types, _ONNX_TYPES[t.dtype]), list(t.shape))
             for t in side] for side in (sig.inputs, sig.outputs)]
    graph = helper.make_graph(g.nodes, graph_name, info[0], info[1], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="pytest_mm.fake_onnx", producer_version="1",
                              doc_string="pytest_mm fake: y_k = full(shape_k, sum of the inputs' means + k + 1)")
    onnx.checker.check_model(model, full_check=True)
    return model


def expected_outputs(sig: ModelSig, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """What the fake for ``sig`` answers to ``feeds`` (input name -> array), computed with numpy."""
    missing = [t.name for t in sig.inputs if t.name not in feeds]
    if missing:
        raise KeyError(f"feeds lack the inputs {missing}")
    arrays = [np.asarray(feeds[t.name]) for t in sig.inputs]
    c = np.float64(0.0)
    for x in arrays:
        c = c + x.astype(np.float64).sum() / np.float64(max(x.size, 1))
    out = {}
    for k, (t, dims) in enumerate(zip(sig.outputs, dim_sources(sig), strict=True)):
        value = c + np.float64(k + 1)
        if t.dtype.startswith(("int", "uint")):
            value = np.round(value)
        shape = tuple(d if isinstance(d, int) else arrays[d[0]].shape[d[1]] for d in dims)
        out[t.name] = np.full(shape, value, dtype=np.float64).astype(t.dtype)
    return out


def example_inputs(sig: ModelSig, sizes: Mapping[str, int] | None = None, default: int = 2) -> dict[str, np.ndarray]:
    """Deterministic feeds for ``sig``: each symbol's size from ``sizes`` (else ``default``; symbols no
    input uses are ignored, so one dict serves several models), each ``None`` dim ``default``; values
    small and exact in float16 (multiples of 0.25 below 8)."""
    sizes = dict(sizes or {})
    feeds = {}
    for i, t in enumerate(sig.inputs):
        shape = tuple(d if isinstance(d, int) else sizes.get(d, default) if isinstance(d, str) else default
                      for d in t.shape)
        base = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape) + i
        if t.dtype == "bool":
            values = base % 2 == 0
        elif t.dtype.startswith(("int", "uint")):
            values = base % 7
        else:
            values = (base % 8) * 0.25
        feeds[t.name] = np.asarray(values, dtype=t.dtype)  # a 0-d result of arithmetic is a numpy scalar
    return feeds


def place(root: Path, rel: str, data: bytes, field: str = "path") -> Path:
    """Write ``data`` at ``rel`` below ``root``; a file already there must hold the same bytes."""
    target = root / check_relative(rel, component="", role="", field=field)
    hint = "give each fake file its own path below MM_MODELS_ROOT"
    try:
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise _bad(f"{shown(rel)} is already there and is not a regular file", field, hint)
        if target.exists():
            if target.read_bytes() != data:
                raise _bad(f"{shown(rel)} is already there with other content", field, hint)
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as exc:
        raise _bad(f"{shown(rel)} cannot be written below the models root: {exc}", field, hint) from None
    return target


@dataclass(frozen=True)
class FakeOnnxModel:
    """A fake written below the models root: ``path`` (relative, the mapping's ``artifacts.onnx_path``),
    ``file`` (absolute), ``digest`` (``sha256:<hex>`` of the file) and ``entry``, a mapping entry."""

    signature: ModelSig
    path: str
    file: Path
    digest: str
    entry: dict[str, Any]

    def mapping(self, component: str = "fake", role: str = "model") -> dict[str, Any]:
        """A whole mapping (``schema_version`` 1) with this model as its one entry."""
        return {"schema_version": 1, "components": {component: {role: _copy(self.entry)}}}

    def expected(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return expected_outputs(self.signature, feeds)

    def example_inputs(self, sizes: Mapping[str, int] | None = None, default: int = 2) -> dict[str, np.ndarray]:
        return example_inputs(self.signature, sizes, default)


def _copy(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in entry.items()}


def make_fake_onnx(sig: object, root: Path, path: str, *, model_name: str = "fake-onnx", model_version: str = "1",
                   tier: int | None = None, precision: str | None = None) -> FakeOnnxModel:
    """Build the fake for ``sig`` (anything ``model_sig`` takes), write it at ``path`` below ``root``.
    The entry's precision is ``precision``, else the signature's (``ModelSig.precision``); a signature that
    does not fit it still builds (to test the handle's refusal: ``ModelSig.precision_problems``)."""
    if precision is not None and precision not in _PRECISION_DTYPE:
        raise _bad(f"precision {shown(precision)} is not fp16 or fp32", "precision",
                   "leave it out (taken from the float dtypes) or give 'fp16' or 'fp32'")
    for field, value in (("model_name", model_name), ("model_version", model_version)):
        if not isinstance(value, str) or not value or len(value) > 512:
            raise _bad(f"{field} {shown(value)} is not a non-empty string", field,
                       "the mapping pins model_name and model_version as strings of 1 to 512 characters")
    if tier is not None and (type(tier) is not int or not 0 <= tier <= 9):
        raise _bad(f"tier {shown(tier)} is not an integer 0-9", "tier", "leave tier out, or give 0 (preload) to 9")
    signature = model_sig(sig)
    data = build_model(signature).SerializeToString(deterministic=True)
    file = place(root, path, data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    entry: dict[str, Any] = {
        "runtime": "inprocess", "engine": "onnx", "precision": precision or signature.precision, "device_policy": "cpu",
        "model_name": model_name, "model_version": model_version, "weights_digest": digest,
        "artifacts": {"onnx_path": file.relative_to(root).as_posix()},
    }
    if tier is not None:
        entry["tier"] = tier
    return FakeOnnxModel(signature, entry["artifacts"]["onnx_path"], file, digest, entry)
