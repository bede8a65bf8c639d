"""Runtime handles that a component calls: ``mm.get_runtime(spec)`` dispatches on ``spec.runtime``/``spec.engine``.

Triton roles get a ``TritonHandle`` (``runtimes.triton``), in-process ONNX roles an ``OnnxHandle``
(``runtimes.onnx``), torch roles a ``TorchHandle`` (``runtimes.torch``). tritonclient, onnxruntime,
torch and numpy load only when the first handle of theirs is made: importing this package costs the
standard library and ``errors`` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from model_manager.errors import InvalidModelSpec, shown

if TYPE_CHECKING:
    from model_manager.mapping.schema import ResolvedModelSpec
    from model_manager.runtimes.onnx import OnnxHandle
    from model_manager.runtimes.torch import TorchHandle
    from model_manager.runtimes.triton import TritonHandle

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_NETWORK_TIMEOUT", "TritonTimeouts", "inprocess_handle",
           "triton_handle", "triton_timeouts"]

#: seconds to open a TCP connection to Triton (it runs on this host: a connection takes microseconds)
DEFAULT_CONNECT_TIMEOUT = 2.0
#: seconds for one whole request, from the first byte sent to the last byte of the answer
DEFAULT_NETWORK_TIMEOUT = 60.0
_MAX_TIMEOUT = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class TritonTimeouts:
    """How long a Triton handle waits; nothing is ever retried (DECISIONS 9.2)."""

    connect: float = DEFAULT_CONNECT_TIMEOUT
    network: float = DEFAULT_NETWORK_TIMEOUT

    def __post_init__(self) -> None:
        for name in ("connect", "network"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not 0 < value <= _MAX_TIMEOUT:
                raise InvalidModelSpec(
                    f"triton_timeouts {name} {shown(value)} is not a number of seconds above 0 and at most "
                    f"{_MAX_TIMEOUT:g}", field=f"triton_timeouts.{name}",
                    hint=f"pass e.g. triton_timeouts={{'connect': {DEFAULT_CONNECT_TIMEOUT:g}, "
                         f"'network': {DEFAULT_NETWORK_TIMEOUT:g}}} (seconds)")
            object.__setattr__(self, name, float(value))


def triton_timeouts(value: TritonTimeouts | Mapping[str, Any] | None) -> TritonTimeouts:
    """``ModelManager(..., triton_timeouts=...)``: None (the defaults), a TritonTimeouts, or a dict with
    ``connect`` and/or ``network`` in seconds."""
    if value is None:
        return TritonTimeouts()
    if isinstance(value, TritonTimeouts):
        return value
    if not isinstance(value, Mapping):
        raise InvalidModelSpec(f"triton_timeouts must be a dict or TritonTimeouts, not {type(value).__name__}",
                               field="triton_timeouts", hint="pass {'connect': seconds, 'network': seconds}")
    unknown = sorted(str(k) for k in value if k not in ("connect", "network"))
    if unknown:
        raise InvalidModelSpec(f"unknown triton_timeouts keys {shown(unknown)}", field="triton_timeouts",
                               hint="the keys are 'connect' and 'network' (seconds)")
    return TritonTimeouts(**value)


def triton_handle(spec: ResolvedModelSpec, timeouts: TritonTimeouts) -> TritonHandle:
    """A new handle for a Triton role (``ModelManager.triton_client`` caches one per component and role)."""
    if spec.runtime != "triton" or spec.triton is None:
        raise InvalidModelSpec(f"{spec.component_name}/{spec.role} runs {spec.runtime}/{spec.engine}, not on Triton",
                               component=spec.component_name, role=spec.role, field="runtime",
                               hint="triton_client is for runtime 'triton' entries; see get_runtime")
    from model_manager.runtimes.triton import TritonHandle  # tritonclient and numpy load here, once

    return TritonHandle(spec, timeouts)


def inprocess_handle(spec: ResolvedModelSpec, path: str, root: str,
                     session_options: Mapping[str, Any] | None = None) -> OnnxHandle | TorchHandle:
    """A new handle for an in-process role, loading the verified artifact at ``path`` (under ``root``)."""
    where = {"component": spec.component_name, "role": spec.role}
    if spec.runtime != "inprocess":
        raise InvalidModelSpec(f"{spec.component_name}/{spec.role} runs on {spec.runtime}, not in-process",
                               **where, field="runtime", hint="use mm.get_runtime(spec); it picks the handle")
    if spec.engine == "onnx":
        from model_manager.runtimes.onnx import onnx_handle  # onnxruntime and numpy load here, once

        return onnx_handle(spec, path, session_options=session_options)
    if session_options is not None:
        raise InvalidModelSpec(f"session_options are ONNX Runtime's; {spec.component_name}/{spec.role} runs "
                               f"engine {spec.engine!r}", **where, field="session_options",
                               hint="pass session_options only for engine 'onnx' roles")
    from model_manager.runtimes.torch import torch_handle  # loads nothing heavy until load_state_dict

    return torch_handle(spec, path, root)
