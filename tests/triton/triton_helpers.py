"""Mappings with Triton roles, managers built on them, and the arrays the Triton tests send."""

from __future__ import annotations

import copy
from typing import Any

import ml_dtypes
import numpy as np
from helpers.mappings import RUN_CONTEXT, TRITON_ENTRY

from model_manager import ModelManager

Tensors = list[tuple[str, str, list[int]]]


def entry(url: str, model: str, inputs: Tensors, outputs: Tensors, *, version: str = "1",
          preset: str | None = None) -> dict[str, Any]:
    data = copy.deepcopy(TRITON_ENTRY)
    data["triton"] = {"http_url": url, "model_name": model, "model_version": version,
                      "inputs": [{"name": n, "dtype": d, "shape": s} for n, d, s in inputs],
                      "outputs": [{"name": n, "dtype": d, "shape": s} for n, d, s in outputs],
                      "preprocess_preset": preset}
    return data


def mapping(**roles: dict[str, Any]) -> dict[str, Any]:
    """``core_test`` with the given roles (each an ``entry``)."""
    return {"schema_version": 1, "components": {"core_test": roles}}


def manager(timeouts: dict[str, float] | None = None, **roles: dict[str, Any]) -> ModelManager:
    return ModelManager(dict(RUN_CONTEXT), mapping(**roles), triton_timeouts=timeouts)


def handle(mm: ModelManager, role: str) -> Any:
    return mm.triton_client(mm.resolve(component="core_test", role=role))


DOUBLE_IO: tuple[Tensors, Tensors] = ([("x", "FP32", [-1, -1])], [("y", "FP32", [-1, -1])])


def double(url: str, **options: Any) -> dict[str, Any]:
    return entry(url, "double", *DOUBLE_IO, **options)


NUMPY = {"BOOL": np.dtype(bool), "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32),
         "FP64": np.dtype(np.float64), "BF16": np.dtype(ml_dtypes.bfloat16), "BYTES": np.dtype(object),
         **{d: np.dtype(d.lower()) for d in ("UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                                             "INT64")}}


def sample(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A small array of ``dtype`` with values that survive the round trip exactly."""
    rng = np.random.default_rng(seed)
    count = int(np.prod(shape))
    if dtype == "BYTES":
        pool = [b"hi", b"", "café".encode(), b"\xff\xfe\x00", b"x" * 40]
        return np.array([pool[i % len(pool)] for i in range(count)], dtype=object).reshape(shape)
    if dtype == "BOOL":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype[0] in "FB":
        return (rng.integers(-64, 64, size=shape) / 4).astype(NUMPY[dtype])
    return rng.integers(0, 100, size=shape).astype(NUMPY[dtype])
