"""The models of the contract suite, defined once and served by both the fake and the real Triton.

Each model's function is Python source: the fake runs it as ``FakeModel.fn``; the real server runs the
same text inside a Python-backend ``model.py`` (one request's tensors in, its outputs back).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mm.fake_triton import FakeModel

DTYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
          "FP16", "FP32", "FP64", "BF16", "BYTES"]
Tensor = tuple[str, str, list[int]]


@dataclass(frozen=True)
class ContractModel:
    name: str
    inputs: list[Tensor]
    outputs: list[Tensor]
    source: str  # defines ``fn(inputs) -> outputs``
    max_batch_size: int = 0
    versions: tuple[str, ...] = ("1",)
    extra: dict[str, Any] = field(default_factory=dict)

    def fake(self) -> FakeModel:
        scope: dict[str, Any] = {}
        exec(compile(self.source, f"<{self.name}>", "exec"), scope)
        return FakeModel(self.name, self.inputs, self.outputs, scope["fn"], versions=self.versions,
                         max_batch_size=self.max_batch_size)


def _fn(body: str) -> str:
    return "import numpy as np\n\ndef fn(inputs):\n" + textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n"


MODELS = [
    ContractModel("double", [("x", "FP32", [-1])], [("y", "FP32", [-1])],
                  _fn('return {"y": inputs["x"] * 2}'), max_batch_size=8),
    ContractModel("fixed4", [("x", "FP32", [4])], [("y", "FP32", [4])],
                  _fn('return {"y": inputs["x"]}'), max_batch_size=8),
    ContractModel("nobatch", [("x", "FP32", [2, 3])], [("y", "FP32", [2, 3])],
                  _fn('return {"y": inputs["x"] + 1}')),
    ContractModel("types", [(f"in_{d}", d, [-1]) for d in DTYPES], [(f"out_{d}", d, [-1]) for d in DTYPES],
                  _fn('return {"out_" + name[3:]: value for name, value in inputs.items()}')),
    ContractModel("raiser", [("x", "FP32", [-1])], [("y", "FP32", [-1])],
                  _fn('raise ValueError("boom from model function")')),
    ContractModel("multi", [("a", "INT32", [-1]), ("b", "INT32", [-1])],
                  [("sum", "INT32", [-1]), ("diff", "INT32", [-1])],
                  _fn('return {"sum": inputs["a"] + inputs["b"], "diff": inputs["a"] - inputs["b"]}'),
                  max_batch_size=4),
    ContractModel("twover", [("x", "INT64", [1])], [("y", "INT64", [1])],
                  _fn('return {"y": inputs["x"]}'), versions=("1", "2")),
]
BY_NAME = {m.name: m for m in MODELS}


# --- the real server's model repository -----------------------------------------------------------
_MODEL_PY = '''\
import numpy as np
import triton_python_backend_utils as pb_utils

{source}

class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            inputs = {{}}
            for tensor in request.inputs():
                inputs[tensor.name()] = tensor
            bf16 = {{name: t for name, t in inputs.items() if name in {bf16_inputs!r}}}
            arrays = {{name: t.as_numpy() for name, t in inputs.items() if name not in bf16}}
            arrays.update(bf16)  # BF16 has no numpy type in the stub: echoed through DLPack
            out = fn(arrays)
            tensors = [pb_utils.Tensor.from_dlpack(name, value) if name in {bf16_outputs!r}
                       else pb_utils.Tensor(name, value) for name, value in out.items()]
            responses.append(pb_utils.InferenceResponse(tensors))
        return responses
'''


def _config(model: ContractModel, env_path: str) -> str:
    def tensors(items: list[Tensor]) -> str:
        kind = "TYPE_STRING"
        return ", ".join(
            f'{{ name: "{n}" data_type: {kind if d == "BYTES" else "TYPE_" + d} dims: [ {", ".join(map(str, s))} ] }}'
            for n, d, s in items)

    policy = (f"version_policy: {{ specific: {{ versions: [ {', '.join(model.versions)} ] }} }}\n"
              if len(model.versions) > 1 else "")
    return (f'name: "{model.name}"\nbackend: "python"\nmax_batch_size: {model.max_batch_size}\n{policy}'
            f"input [ {tensors(model.inputs)} ]\noutput [ {tensors(model.outputs)} ]\n"
            'instance_group [ { kind: KIND_CPU count: 1 } ]\n'
            f'parameters: {{ key: "EXECUTION_ENV_PATH", value: {{ string_value: "{env_path}" }} }}\n')


def write_repository(root: Path, env_path: str, models: list[ContractModel] | None = None) -> None:
    """A Triton model repository with the contract models (all of them by default; Python backend)."""
    for model in MODELS if models is None else models:
        folder = root / model.name
        for version in model.versions:
            (folder / version).mkdir(parents=True)
            bf16_in = [n for n, d, _ in model.inputs if d == "BF16"]
            bf16_out = [n for n, d, _ in model.outputs if d == "BF16"]
            (folder / version / "model.py").write_text(
                _MODEL_PY.format(source=model.source, bf16_inputs=bf16_in, bf16_outputs=bf16_out))
        (folder / "config.pbtxt").write_text(_config(model, env_path))
