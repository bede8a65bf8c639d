"""The data that crosses a boundary: run context, mapping entries, resolved specs.

Strict pydantic v2 models: no coercion (``"1"`` is not ``1``, a YAML date is not
a version string), frozen, unknown keys refused. Cross-field rules of the mapping (docs/mapping.md)
live here too, so a spec that exists is a spec that is valid.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

_STRICT = ConfigDict(strict=True, frozen=True, extra="forbid", validate_default=True)

UNKNOWN_DIGEST = "unknown"

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=512)]
#: component and role names; always matched whole (``fullmatch``: ``$`` would accept a final newline)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
Name = Annotated[str, StringConstraints(pattern=rf"\A{NAME_RE.pattern}\z")]
Device = Annotated[str, StringConstraints(pattern=r"\A(cpu|cuda|cuda:(0|[1-9][0-9]{0,2}))\z")]
DevicePolicy = Annotated[str, StringConstraints(pattern=r"\A(cpu|cuda|cuda:(0|[1-9][0-9]{0,2})|any-gpu)\z")]
Digest = Annotated[str, StringConstraints(pattern=r"\A(sha256:[0-9a-f]{64}|unknown)\z")]
# host:port as tritonclient.http expects it: no scheme, no path; IPv6 in brackets.
HttpUrl = Annotated[
    str,
    StringConstraints(
        pattern=r"\A(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9\-.]{0,251}[A-Za-z0-9])?):([1-9][0-9]{0,4})\z"
    ),
]
TritonDtype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BF16", "BYTES",
]
Runtime = Literal["triton", "inprocess"]
Engine = Literal["onnx", "torch", "tensorrt"]
Precision = Literal["fp16", "fp32"]


class FieldError(ValueError):
    """A cross-field rule broken; ``field`` names the field to fix (pydantic keeps us in ctx['error'])."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class RunContext(BaseModel):
    model_config = _STRICT

    platform_id: NonEmpty
    video_id: NonEmpty
    run_id: NonEmpty
    config_hash: NonEmpty
    sampling_policy_version: NonEmpty
    dataprocessor_version: NonEmpty


class TritonTensor(BaseModel):
    model_config = _STRICT

    name: NonEmpty
    dtype: TritonDtype
    shape: list[Annotated[int, Field(ge=-1)]]


class TritonSpec(BaseModel):
    model_config = _STRICT

    http_url: HttpUrl
    model_name: NonEmpty
    model_version: Annotated[str, StringConstraints(pattern=r"\A[1-9][0-9]{0,18}\z")]  # pinned: never "latest"
    inputs: Annotated[list[TritonTensor], Field(min_length=1)]
    outputs: Annotated[list[TritonTensor], Field(min_length=1)]
    preprocess_preset: NonEmpty | None = None

    @model_validator(mode="after")
    def _port_and_tensor_names(self) -> TritonSpec:
        if int(self.http_url.rsplit(":", 1)[1]) > 65535:
            raise FieldError("http_url", f"port of {self.http_url!r} is above 65535")
        for side in ("inputs", "outputs"):
            names = [t.name for t in getattr(self, side)]
            if len(names) != len(set(names)):
                raise FieldError(side, f"duplicate tensor names in {side}: {sorted(names)}")
        return self


class Artifacts(BaseModel):
    model_config = _STRICT

    onnx_path: NonEmpty | None = None
    weights_path: NonEmpty | None = None
    tokenizer_path: NonEmpty | None = None
    preprocess_id: NonEmpty | None = None

    def paths(self) -> dict[str, str]:
        """The fields that name files under the models root, in a fixed order."""
        named = {"onnx_path": self.onnx_path, "weights_path": self.weights_path,
                 "tokenizer_path": self.tokenizer_path}
        return {k: v for k, v in named.items() if v is not None}


#: every artifact field that names a path under the models root, as messages and ``artifact_path`` name it
ARTIFACT_FIELDS: tuple[str, ...] = ("artifacts.onnx_path", "artifacts.weights_path", "artifacts.tokenizer_path")
#: the artifact whose bytes `weights_digest` pins, per engine (in-process runtime).
WEIGHTS_FIELD: dict[str, str] = {"onnx": "onnx_path", "torch": "weights_path"}


class ModelEntry(BaseModel):
    """One (component, role) entry exactly as the mapping writes it."""

    model_config = _STRICT

    runtime: Runtime
    engine: Engine
    precision: Precision
    device_policy: DevicePolicy
    device: Device | None = None
    model_name: NonEmpty
    model_version: NonEmpty
    weights_digest: Digest
    tier: Annotated[int, Field(ge=0, le=9)] | None = None
    triton: TritonSpec | None = None
    artifacts: Artifacts | None = None

    @model_validator(mode="after")
    def _cross_field_rules(self) -> ModelEntry:
        resolved_device(self.device_policy, self.device)
        if self.runtime == "triton":
            if self.triton is None:
                raise FieldError("triton", "runtime 'triton' needs a 'triton' block (http_url, model_name, ...)")
            if self.artifacts is not None and (self.artifacts.onnx_path or self.artifacts.weights_path):
                raise FieldError("artifacts", "a triton model's weights live in Triton: artifacts may name only "
                                 "tokenizer_path and preprocess_id")
            if self.tier == 0:
                raise FieldError("tier", "tier 0 (preload at start) is for in-process models only")
            return self
        if self.triton is not None:
            raise FieldError("triton", "runtime 'inprocess' must not carry a 'triton' block")
        if self.engine not in WEIGHTS_FIELD:
            raise FieldError("engine", f"engine {self.engine!r} runs only under runtime 'triton'")
        needed = WEIGHTS_FIELD[self.engine]
        if self.artifacts is None or getattr(self.artifacts, needed) is None:
            raise FieldError(f"artifacts.{needed}",
                             f"runtime 'inprocess' with engine {self.engine!r} needs artifacts.{needed}")
        other = next(f for f in WEIGHTS_FIELD.values() if f != needed)
        if getattr(self.artifacts, other) is not None:
            raise FieldError(f"artifacts.{other}", f"engine {self.engine!r} loads artifacts.{needed}; "
                             f"artifacts.{other} would be neither loaded nor pinned")
        if self.weights_digest == UNKNOWN_DIGEST:
            raise FieldError("weights_digest", f"weights_digest 'unknown' is refused: artifacts.{needed} is a "
                             "local file; pin its sha256 (`model-manager digest PATH`)")
        return self


def resolved_device(device_policy: str, device: str | None) -> str:
    """The actual device, or ValueError: the manager never picks a GPU itself (docs/mapping.md)."""
    if device is None:
        if device_policy == "any-gpu":
            raise FieldError("device", "device not resolved: device_policy 'any-gpu' needs the scheduler's "
                             "'device' (cuda or cuda:N)")
        return device_policy
    if device_policy == "any-gpu" or device_policy == "cuda":
        ok = device.startswith("cuda")
    else:
        ok = device == device_policy
    if not ok:
        raise FieldError("device", f"device {device!r} does not satisfy device_policy {device_policy!r}")
    return device


class ResolvedModelSpec(BaseModel):
    """What a component gets back from ``mm.resolve``: every field pinned, the device actual."""

    model_config = _STRICT

    component_name: Name
    role: Name
    runtime: Runtime
    engine: Engine
    precision: Precision
    device: Device
    device_policy: DevicePolicy
    model_name: NonEmpty
    model_version: NonEmpty
    weights_digest: Digest
    artifacts: Artifacts | None = None
    triton: TritonSpec | None = None
    preprocess_preset: NonEmpty | None = None
    tier: Annotated[int, Field(ge=0, le=9)] | None = None

    def models_used_entry(self) -> dict[str, Any]:
        """The canonical `models_used` entry (docs/mapping.md): exactly these ten keys."""
        return {
            "component": self.component_name,
            "role": self.role,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "weights_digest": self.weights_digest,
            "runtime": self.runtime,
            "engine": self.engine,
            "precision": self.precision,
            "device": self.device,
            "preprocess_preset": self.preprocess_preset,
        }


def spec_from_entry(component: str, role: str, entry: ModelEntry) -> ResolvedModelSpec:
    return ResolvedModelSpec.model_construct(
        component_name=component,
        role=role,
        runtime=entry.runtime,
        engine=entry.engine,
        precision=entry.precision,
        device=resolved_device(entry.device_policy, entry.device),
        device_policy=entry.device_policy,
        model_name=entry.model_name,
        model_version=entry.model_version,
        weights_digest=entry.weights_digest,
        artifacts=entry.artifacts,
        triton=entry.triton,
        preprocess_preset=entry.triton.preprocess_preset if entry.triton else None,
        tier=entry.tier,
    )
