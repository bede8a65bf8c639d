"""The ONNX handle's signature: the model's inputs and outputs as ONNX Runtime reports them, the precision
rule, and the full list of what is wrong with a call's inputs (the slow path of ``OnnxHandle.run``).

Imports numpy: loaded by ``runtimes.onnx`` when the first handle is made.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from model_manager.errors import shown
from model_manager.runtimes.onnx import OnnxTensor

#: ONNX Runtime's element type -> the numpy dtype a caller feeds (strings: any str or object array)
NUMPY: dict[str, Any] = {
    f"tensor({name})": np.dtype(dtype) for name, dtype in (
        ("float", np.float32), ("float16", np.float16), ("double", np.float64), ("bool", np.bool_),
        ("int8", np.int8), ("int16", np.int16), ("int32", np.int32), ("int64", np.int64),
        ("uint8", np.uint8), ("uint16", np.uint16), ("uint32", np.uint32), ("uint64", np.uint64),
        ("complex64", np.complex64), ("complex128", np.complex128))
}
STRING = "tensor(string)"
PRECISION_TYPE = {"fp16": "tensor(float16)", "fp32": "tensor(float)"}
_TENSOR = re.compile(r"tensor\((\w+)\)")


def tensors(args: Iterable[Any]) -> tuple[OnnxTensor, ...]:
    """``session.get_inputs()`` / ``get_outputs()`` as OnnxTensor: ints fixed, str symbolic, None unknown."""
    out = []
    for arg in args:
        shape = tuple(d if isinstance(d, (int, str)) and not isinstance(d, bool) else None for d in arg.shape or ())
        out.append(OnnxTensor(name=arg.name, type=arg.type, dtype=NUMPY.get(arg.type), shape=shape))
    return tuple(out)


def is_float(ort_type: str) -> bool:
    match = _TENSOR.fullmatch(ort_type)
    element = match.group(1) if match else ""
    return element.startswith(("float", "bfloat")) or element == "double"


def not_tensors(inputs: Sequence[OnnxTensor]) -> list[str]:
    """Inputs the handle cannot feed from numpy arrays (sequences, maps, optionals)."""
    return [f"input {t.name!r} is {t.type}" for t in inputs if not _TENSOR.fullmatch(t.type)]


def precision_problems(precision: str, inputs: Sequence[OnnxTensor], outputs: Sequence[OnnxTensor]) -> list[str]:
    """Every float input and output whose type is not the one ``precision`` names; other types are free."""
    want = PRECISION_TYPE.get(precision)
    if want is None:
        return [f"precision {shown(precision)} is not fp16 or fp32"]
    return [f"{side} {t.name!r} is {t.type}" for side, group in (("input", inputs), ("output", outputs))
            for t in group if is_float(t.type) and t.type != want]


def shape_text(shape: Sequence[int | str | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def declared(group: Sequence[OnnxTensor]) -> str:
    return ", ".join(f"{t.name!r} {t.type} {shape_text(t.shape)}" for t in group)


def input_problems(model_inputs: Sequence[OnnxTensor], inputs: Mapping[Any, Any]) -> list[str]:
    """What is wrong with ``inputs`` against the model's signature, every problem once, inputs in model order."""
    names = {t.name for t in model_inputs}
    problems = [f"missing input {t.name!r} ({t.type} {shape_text(t.shape)})" for t in model_inputs
                if t.name not in inputs]
    problems += [f"input {shown(n)} is not an input of the model" for n in inputs if n not in names]
    for t in model_inputs:
        if t.name in inputs:
            problems += _problems(t, inputs[t.name])
    return problems


def _problems(t: OnnxTensor, value: Any) -> list[str]:
    name = repr(t.name)
    if not isinstance(value, np.ndarray):
        return [f"input {name} must be a numpy array, got {type(value).__name__}"]
    problems = []
    if t.type == STRING:
        if value.dtype.kind not in "UO":
            problems.append(f"input {name} has dtype {value.dtype}, the model declares {t.type} (numpy str or object)")
    elif t.dtype is not None and value.dtype != t.dtype:
        problems.append(f"input {name} has dtype {value.dtype}, the model declares {t.type} (numpy {t.dtype.name}"
                        ", native byte order)")
    if not t.shape:  # [] is a scalar or a shape the model does not declare: ONNX Runtime checks it
        return problems
    if value.ndim != len(t.shape):
        problems.append(f"input {name} has shape {list(value.shape)} (rank {value.ndim}), the model declares "
                        f"{shape_text(t.shape)} (rank {len(t.shape)})")
    elif any(isinstance(d, int) and d != got for d, got in zip(t.shape, value.shape, strict=True)):
        problems.append(f"input {name} has shape {list(value.shape)}, the model declares {shape_text(t.shape)}")
    return problems
