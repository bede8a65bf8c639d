"""Runtime handles that a component calls: ``get_runtime(spec)`` dispatches on ``spec.runtime``/``spec.engine``.

Triton roles get a ``TritonHandle`` (``runtimes.triton``; tritonclient and numpy load only when the
first one is made). The in-process engines (ONNX Runtime, torch) join here with their own issues.
Importing this package is cheap: standard library and ``errors`` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from model_manager.errors import InvalidModelSpec, shown

if TYPE_CHECKING:
    from model_manager.mapping.schema import ResolvedModelSpec
    from model_manager.runtimes.triton import TritonHandle

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_NETWORK_TIMEOUT", "TritonTimeouts", "get_runtime", "triton_handle",
           "triton_timeouts"]

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


def get_runtime(spec: ResolvedModelSpec, timeouts: TritonTimeouts) -> TritonHandle:
    """The callable runtime of ``spec``: a TritonHandle for ``runtime: triton``. In-process engines have no
    handle yet: ``mm.weights_path(spec)`` gives their verified weights."""
    if spec.runtime == "triton":
        return triton_handle(spec, timeouts)
    raise InvalidModelSpec(
        f"no runtime handle for runtime {spec.runtime!r} engine {spec.engine!r} yet: get_runtime serves Triton "
        "roles", component=spec.component_name, role=spec.role, field="runtime",
        hint="load an in-process model from mm.weights_path(spec) (its digest was verified at construction)")
