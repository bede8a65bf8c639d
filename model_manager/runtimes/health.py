"""``mm.health()``: one record per component and role, ok or the error's code and message; never raises."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from model_manager.errors import ModelManagerError, shown
from model_manager.mapping.schema import ResolvedModelSpec

#: what was done to decide a record: a handle made, a tiny inference, Triton's own readiness check, or
#: the weights' bytes re-read and hashed (torch: loading is the caller's)
Check = Literal["creation", "probe", "triton-check", "digest"]


class HealthRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    component: str
    role: str
    runtime: str
    engine: str
    device: str
    ok: bool
    check: Check
    #: the error code when not ok ("unexpected_error" marks a bug: an exception that is not a ModelManagerError)
    code: str | None = None
    message: str | None = None
    seconds: float

    def line(self) -> str:
        status = "ok" if self.ok else f"FAILED {self.code}: {self.message}"
        return (f"{self.component}/{self.role} ({self.runtime}/{self.engine} on {self.device}, {self.check}, "
                f"{self.seconds * 1000:.1f} ms): {status}")


def check_role(spec: ResolvedModelSpec, handle_of: Callable[[ResolvedModelSpec], Any],
               verify_bytes: Callable[[ResolvedModelSpec], object], probe: Mapping[str, Any] | None) -> HealthRecord:
    """The health of one role. Triton: ``check()`` (and ``infer(probe)`` when a probe is given); ONNX: the
    handle (built once, shared with get_runtime) and ``run(probe)`` when given; torch: the weights re-read
    and hashed (``verify_bytes``)."""
    start = time.perf_counter()
    check: Check = "creation"
    try:
        if spec.runtime == "triton":
            check = "triton-check"
            handle = handle_of(spec)
            handle.check()
            if probe is not None:
                check = "probe"
                handle.infer(probe)
        elif spec.engine == "torch":
            check = "digest"
            handle_of(spec)
            verify_bytes(spec)
            if probe is not None:
                raise _probe_not_supported(spec)
        else:
            handle = handle_of(spec)
            if probe is not None:
                check = "probe"
                handle.run(probe)
    except ModelManagerError as exc:
        return _record(spec, start, check, code=exc.code, message=exc.message)
    except Exception as exc:  # a bug, reported instead of raised: health must answer for every role
        return _record(spec, start, check, code="unexpected_error", message=f"{type(exc).__name__}: {shown(exc)}")
    return _record(spec, start, check)


def _probe_not_supported(spec: ResolvedModelSpec) -> ModelManagerError:
    from model_manager.errors import InvalidModelSpec

    return InvalidModelSpec("a torch role takes no probe input: the handle gives weights, not a model to run",
                            component=spec.component_name, role=spec.role, field="probes",
                            hint="drop the probe for this role; health re-hashes its weights")


def _record(spec: ResolvedModelSpec, start: float, check: Check, code: str | None = None,
            message: str | None = None) -> HealthRecord:
    return HealthRecord(component=spec.component_name, role=spec.role, runtime=spec.runtime, engine=spec.engine,
                        device=spec.device, ok=code is None, check=check, code=code, message=message,
                        seconds=time.perf_counter() - start)


def missing_role(key: str, source: str) -> HealthRecord:
    """A probe named a role the mapping does not have."""
    component, _, role = key.partition("/")
    return HealthRecord(component=component, role=role, runtime="?", engine="?", device="?", ok=False,
                        check="creation", code="model_mapping_missing",
                        message=f"a probe names {shown(key)}, which is not a component/role of {source}",
                        seconds=0.0)
