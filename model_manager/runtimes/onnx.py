"""The in-process ONNX Runtime handle of one role (``runtime: inprocess``, ``engine: onnx``).

``onnx_handle(spec, path)`` builds an ``OnnxHandle`` from the bytes of ``artifacts.onnx_path`` read once and
checked against ``weights_digest``, on exactly the device ``spec.device`` names: an ONNX Runtime that would
fall back to another device is refused (``device_unavailable``), never used. docs/onnx-runtime.md is the
user's guide. Importing this module loads neither onnxruntime nor numpy: they load with the first handle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from model_manager.errors import (
    InferenceFailed,
    InvalidModelSpec,
    ModelArtifactInvalid,
    OnnxRuntimeMissing,
    shown,
)
from model_manager.runtimes import onnx_session
from model_manager.runtimes.onnx_session import Place

if TYPE_CHECKING:
    from model_manager.mapping.schema import ResolvedModelSpec

__all__ = ["OnnxHandle", "OnnxTensor", "onnx_handle"]

Dim = int | str | None


@dataclass(frozen=True, slots=True)
class OnnxTensor:
    """One input or output as the model declares it.

    ``type`` is ONNX Runtime's type string (``"tensor(float)"``); ``dtype`` the numpy dtype to feed, or None
    where numpy has none (``tensor(string)`` takes str or object arrays); ``shape`` holds ints (fixed sizes),
    strs (symbolic dims such as ``"N"``) and None (unnamed dynamic dims). ``()`` is a scalar or a shape the
    model does not declare (ONNX Runtime reports both alike).
    """

    name: str
    type: str
    dtype: Any
    shape: tuple[Dim, ...]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "shape": list(self.shape)}


class OnnxHandle:
    """Runs one verified ONNX model on its device; safe to share between threads (its state never changes
    after construction, and ``InferenceSession.run`` is thread-safe).

    Attributes: ``inputs`` and ``outputs`` (``OnnxTensor``), ``provider`` (the execution provider in use),
    ``device`` (``spec.device``), ``spec``, ``component``, ``role``. Made by ``onnx_handle``.
    """

    def __init__(self, spec: ResolvedModelSpec, session: Any, *, inputs: tuple[OnnxTensor, ...],
                 outputs: tuple[OnnxTensor, ...], provider_options: Mapping[str, str],
                 session_options: Mapping[str, int | str], onnxruntime_version: str, ndarray: type) -> None:
        self.spec = spec
        self.component, self.role, self.device = spec.component_name, spec.role, spec.device
        self.inputs, self.outputs = inputs, outputs
        self.provider: str = session.get_providers()[0]
        self._place = _place(spec)
        self._provider_options = dict(provider_options)
        self._session_options = dict(session_options)
        self._version = onnxruntime_version
        self._run = session.run
        self._ndarray = ndarray
        self._all = [t.name for t in outputs]
        self._output_names = frozenset(self._all)
        # Per input: name, dtype, rank (-1: not checked) and its fixed (axis, size) pairs: the fast path
        # compares these with `is` and `!=` only; anything unusual goes to onnx_io.input_problems.
        self._checks = tuple(
            (t.name, t.dtype, len(t.shape) if t.shape else -1,
             tuple((axis, d) for axis, d in enumerate(t.shape) if isinstance(d, int)))
            for t in inputs)

    def __repr__(self) -> str:
        return f"OnnxHandle({self.component}/{self.role}: {self._place.prefix} ({self.provider}))"

    # --- inference ------------------------------------------------------------------------------
    def run(self, inputs: Mapping[str, Any], *, outputs: Iterable[str] | None = None) -> dict[str, Any]:
        """Run the model once: ``{input name: numpy array}`` in, ``{output name: array}`` out (every output,
        or those named in ``outputs``, in that order). Inputs are checked against the model's signature
        first (names, element types, ranks, fixed sizes; symbolic dims take any size): every mismatch is
        listed in one ``inference_failed`` and nothing runs."""
        names = self._all if outputs is None else self._selected(outputs)
        if not self._fits(inputs):
            inputs = self._checked(inputs)
        try:
            results = self._run(names, inputs)
        except Exception as exc:  # ONNX Runtime's own refusal or failure, with its words
            text = f"{type(exc).__name__}: {exc}".strip()
            self._fail(f"ONNX Runtime failed the run: {text[:1200]}",
                       hint="ONNX Runtime's message says which node failed and why; the inputs matched the "
                            "model's declared signature")
        return dict(zip(names, results, strict=True))

    __call__ = run

    def _fits(self, inputs: Any) -> bool:
        if type(inputs) is not dict or len(inputs) != len(self._checks):
            return False
        ndarray: Any = self._ndarray
        for name, dtype, rank, fixed in self._checks:
            value: Any = inputs.get(name)
            if value.__class__ is not ndarray or value.dtype is not dtype:
                return False
            if rank >= 0:
                shape = value.shape
                if len(shape) != rank:
                    return False
                for axis, size in fixed:
                    if shape[axis] != size:
                        return False
        return True

    def _checked(self, inputs: Any) -> dict[str, Any]:
        from model_manager.runtimes import onnx_io

        if not isinstance(inputs, Mapping):
            self._fail(f"inputs must be a dict {{name: numpy array}}, not {type(inputs).__name__}; nothing was run")
        problems = onnx_io.input_problems(self.inputs, inputs)
        if problems:
            wrong_names = any(p.startswith("missing") or p.endswith("not an input of the model") for p in problems)
            listed = f"; the model declares {onnx_io.declared(self.inputs)}" if wrong_names else ""
            self._fail("; ".join(problems) + f"{listed}; nothing was run",
                       hint="pass exactly the model's inputs (handle.inputs) as numpy arrays of their dtype and rank")
        return dict(inputs)

    def _selected(self, outputs: Iterable[str]) -> list[str]:
        names = [outputs] if isinstance(outputs, str) else list(outputs) if isinstance(outputs, Iterable) else None
        if names is None or not names or not all(isinstance(n, str) for n in names) or \
                len(set(names)) != len(names) or any(n not in self._output_names for n in names):
            from model_manager.runtimes.onnx_io import declared

            self._fail(f"outputs {shown(outputs if names is None else names)}: name some of the model's outputs "
                       f"({declared(self.outputs)}), each once; nothing was run", field="outputs")
        return names

    def _fail(self, message: str, *, field: str | None = "inputs", hint: str | None = None) -> NoReturn:
        raise self._place.error(InferenceFailed, message, field=field, hint=hint) from None

    # --- health and provenance ------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Plain data for health checks and provenance: what runs, where, and with which options."""
        spec = self.spec
        return {
            "component": self.component, "role": self.role, "engine": "onnx",
            "model_name": spec.model_name, "model_version": spec.model_version,
            "weights_digest": spec.weights_digest, "precision": spec.precision,
            "device": self.device, "provider": self.provider, "provider_options": dict(self._provider_options),
            "onnxruntime": self._version,
            "inputs": [t.describe() for t in self.inputs], "outputs": [t.describe() for t in self.outputs],
            "session_options": dict(self._session_options),
        }


def onnx_handle(spec: ResolvedModelSpec, path: str, *,
                session_options: Mapping[str, Any] | None = None) -> OnnxHandle:
    """The handle of an in-process ONNX role. ``path`` is the real path of ``artifacts.onnx_path`` as the
    manager verified it; its bytes are read once here, checked against ``weights_digest`` and loaded from
    memory. ``session_options``: intra_op_num_threads, inter_op_num_threads, graph_optimization_level,
    execution_mode, log_severity_level (docs/onnx-runtime.md)."""
    from model_manager.artifacts.verified import read_verified_file
    from model_manager.mapping.schema import UNKNOWN_DIGEST, ResolvedModelSpec

    if not isinstance(spec, ResolvedModelSpec):
        raise InvalidModelSpec(f"expected the ResolvedModelSpec that mm.resolve returned, not {type(spec).__name__}",
                               field="spec", hint="spec = mm.resolve(component=..., role=...)")
    place = _place(spec)
    if spec.runtime != "inprocess" or spec.engine != "onnx":
        raise place.error(InvalidModelSpec, f"runs {spec.runtime}/{spec.engine}, not inprocess/onnx",
                          field="engine", hint="onnx_handle serves runtime 'inprocess' entries of engine 'onnx'")
    if spec.weights_digest == UNKNOWN_DIGEST:
        raise place.error(InvalidModelSpec, "weights_digest 'unknown' cannot be verified: nothing would prove "
                          "what runs", field="weights_digest",
                          hint="pin the file's sha256 (`model-manager digest PATH`)")
    if not isinstance(path, str) or not path:
        raise place.error(InvalidModelSpec, f"path {shown(path)} is not the verified path of artifacts.onnx_path",
                          field="artifacts.onnx_path", hint="pass mm.weights_path(spec)")
    ordinal = onnx_session.device_id(spec.device, place)
    chosen = onnx_session.parse_options(session_options, place)
    ort = _import_onnxruntime(place)
    import numpy as np

    from model_manager.runtimes import onnx_io

    onnx_session.require_device(ort, spec.device, ordinal, place)
    options = onnx_session.build_options(ort, chosen, place)
    model = read_verified_file(path, spec.weights_digest, component=spec.component_name, role=spec.role,
                               field="artifacts.onnx_path")
    session, provider_options = onnx_session.create_session(ort, model, options, spec.device, ordinal, place)
    del model
    inputs, outputs = onnx_io.tensors(session.get_inputs()), onnx_io.tensors(session.get_outputs())
    odd = onnx_io.not_tensors(inputs)
    if odd:
        raise place.error(ModelArtifactInvalid, "; ".join(odd) + ": the handle feeds numpy arrays to tensor "
                          "inputs only", field="artifacts.onnx_path",
                          hint="export the model with tensor inputs")
    wrong = onnx_io.precision_problems(spec.precision, inputs, outputs)
    if wrong:
        want = onnx_io.PRECISION_TYPE.get(spec.precision, "?")
        raise place.error(InvalidModelSpec, f"precision {spec.precision!r} means float inputs and outputs of type "
                          f"{want}, but the model's " + "; ".join(wrong), field="precision",
                          hint="set the entry's precision to what the model computes in (fp16: tensor(float16), "
                               "fp32: tensor(float)), or export the model in that precision and pin its digest")
    return OnnxHandle(spec, session, inputs=inputs, outputs=outputs, provider_options=provider_options,
                      session_options=onnx_session.effective_options(session), onnxruntime_version=str(ort.__version__),
                      ndarray=np.ndarray)


def _place(spec: ResolvedModelSpec) -> Place:
    return Place(spec.component_name, spec.role,
                 f"model {shown(spec.model_name)} version {shown(spec.model_version)} on {spec.device}")


def _import_onnxruntime(place: Place) -> Any:
    try:
        import onnxruntime
    except Exception as exc:  # ImportError, or a broken install whose extension fails to load
        raise place.error(OnnxRuntimeMissing, f"onnxruntime cannot be imported ({type(exc).__name__}: {exc})",
                          field="engine",
                          hint="install the onnx extra (CPU) or the onnx-gpu extra (CUDA) in the worker's "
                               "environment") from None
    return onnxruntime
