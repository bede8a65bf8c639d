"""The runtime handle of one Triton role: strict input checks, binary tensors, Triton's own messages, no retries.

``mm.triton_client(spec)`` (or ``mm.get_runtime(spec)``) returns one ``TritonHandle`` per component and
role. Importing this module loads numpy and tritonclient (the ``triton`` extra): it happens when the first
handle is made, never on ``import model_manager``. docs/triton.md is the user's guide.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import quote

import numpy as np
from tritonclient.http import InferenceServerClient, InferInput, InferRequestedOutput, InferResult
from tritonclient.utils import triton_to_np_dtype

from model_manager.errors import (
    ModelManagerError,
    NetworkAccessForbidden,
    TritonInferFailed,
    TritonModelNotFound,
    TritonUnavailable,
    shown,
)
from model_manager.mapping.schema import ResolvedModelSpec, TritonTensor
from model_manager.runtimes import TritonTimeouts
from model_manager.runtimes.triton_http import BadResponse, NoAnswer, Response, Unreachable, pool_for

__all__ = ["TritonHandle"]

_SERVER_TEXT = 1200  # the most of Triton's own message an error keeps (a Python traceback can be long)
_MALFORMED = "what answered is not speaking Triton's protocol as tritonclient reads it: check triton.http_url " \
             "(another service on that port? a proxy?) and Triton's log"


class TritonHandle:
    """Calls one Triton model version exactly as the mapping pins it; safe to share between threads.

    Attributes (what DECISIONS 0.2 promises a component): ``endpoint`` (host:port), ``model_name``,
    ``model_version``, ``inputs`` and ``outputs`` (``TritonTensor``: name, dtype, shape; -1 is any size),
    ``preprocess_preset``, plus ``component``, ``role``, ``spec`` and ``timeouts``.
    """

    def __init__(self, spec: ResolvedModelSpec, timeouts: TritonTimeouts) -> None:
        triton = spec.triton
        if triton is None:  # triton_handle checks it; kept for a direct caller
            raise TritonModelNotFound("the spec has no triton block", component=spec.component_name, role=spec.role)
        self.spec = spec
        self.component, self.role = spec.component_name, spec.role
        self.endpoint: str = triton.http_url
        self.model_name: str = triton.model_name
        self.model_version: str = triton.model_version
        self.inputs: tuple[TritonTensor, ...] = tuple(triton.inputs)
        self.outputs: tuple[TritonTensor, ...] = tuple(triton.outputs)
        self.preprocess_preset: str | None = triton.preprocess_preset
        self.timeouts = timeouts
        self._pool = pool_for(self.endpoint, timeouts.connect, timeouts.network)
        self._path = f"/v2/models/{quote(self.model_name)}/versions/{self.model_version}"
        self._numpy = {t.name: _numpy_dtype(t.dtype) for t in self.inputs}
        self._declared_out = {t.name: t for t in self.outputs}

    def __repr__(self) -> str:
        return (f"TritonHandle({self.component}/{self.role}: {self.model_name!r} version {self.model_version!r} "
                f"at {self.endpoint})")

    # --- health ---------------------------------------------------------------------------------
    def check(self) -> None:
        """Server live and ready, the pinned version ready, its metadata equal to the spec's inputs and
        outputs (names, datatypes, shapes; -1 on either side matches any size). Raises on the first
        failed step; every metadata difference is listed in one ``triton_model_not_found``."""
        for path, state in (("/v2/health/live", "live"), ("/v2/health/ready", "ready")):
            answer = self._exchange("GET", path, during="check")
            if answer.status != 200:
                self._fail(TritonUnavailable, f"the server is not {state} (HTTP {answer.status}"
                           f"{_said(answer)})", field="triton.http_url",
                           hint="wait until Triton has started and loaded its models; look at its log")
        ready = self._exchange("GET", f"{self._path}/ready", during="check")
        meta = self._exchange("GET", self._path, during="check")
        if meta.status != 200:
            self._refused(meta)
        if ready.status != 200:
            self._fail(TritonModelNotFound, f"the model version is known but not ready (HTTP {ready.status}"
                       f"{_said(ready)})", field="triton.model_version",
                       hint="wait until Triton has loaded it, or load it (see Triton's log for why it is not)")
        try:
            served = json.loads(meta.body)
            differences = (_differences("input", self.inputs, served["inputs"])
                           + _differences("output", self.outputs, served["outputs"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._fail(TritonInferFailed, f"malformed model metadata ({type(exc).__name__}: {exc}): "
                       f"{shown(meta.body[:300])}", hint=_MALFORMED)
        if differences:
            side = "triton.inputs" if differences[0].startswith("input") else "triton.outputs"
            self._fail(TritonModelNotFound, "the served model differs from the spec: " + "; ".join(differences),
                       field=side, hint="serve the model the mapping describes, or fix triton.inputs/outputs")

    # --- inference ------------------------------------------------------------------------------
    def infer(self, inputs: Mapping[str, np.ndarray], *, outputs: Iterable[str] | None = None,
              request_id: str | None = None) -> dict[str, np.ndarray]:
        """Run the model once: ``{input name: array}`` in, ``{output name: read-only array}`` out (every
        declared output, or those named in ``outputs``). Inputs are checked against the spec first (names,
        dtypes, ranks, fixed sizes): a bad input sends nothing. Sent once; never retried."""
        wanted = self._wanted(outputs)
        tensors = self._tensors(inputs)
        if request_id is not None and not isinstance(request_id, str):
            self._fail(TritonInferFailed, f"request_id must be a string, not {type(request_id).__name__}; "
                       "nothing was sent", field="request_id")
        body, json_size = InferenceServerClient.generate_request_body(
            tensors, outputs=[InferRequestedOutput(name, binary_data=True) for name in wanted],
            request_id=request_id or "")
        headers = None if json_size is None else {"Inference-Header-Content-Length": str(json_size)}
        answer = self._exchange("POST", f"{self._path}/infer", body, headers, during="infer")
        if answer.status != 200:
            self._refused(answer)
        return self._outputs(answer, wanted)

    __call__ = infer

    def _wanted(self, outputs: Iterable[str] | None) -> list[str]:
        if outputs is None:
            return list(self._declared_out)
        names = [outputs] if isinstance(outputs, str) else list(outputs)
        unknown = [n for n in names if n not in self._declared_out]
        if unknown or len(set(names)) != len(names) or not names:
            self._fail(TritonInferFailed, f"outputs {shown(names)}: name some of the declared outputs "
                       f"{_declared(self.outputs)}, each once; nothing was sent", field="triton.outputs")
        return names

    def _tensors(self, inputs: Mapping[str, np.ndarray]) -> list[InferInput]:
        if not isinstance(inputs, Mapping):
            self._fail(TritonInferFailed, f"inputs must be a dict {{name: numpy array}}, not "
                       f"{type(inputs).__name__}; nothing was sent", field="triton.inputs")
        problems = [f"missing input {t.name!r} ({t.dtype} {t.shape})" for t in self.inputs if t.name not in inputs]
        problems += [f"input {shown(n)} is not in the spec" for n in inputs if n not in self._numpy]
        for spec in self.inputs:
            if spec.name in inputs:
                problems += self._input_problems(spec, inputs[spec.name])
        if problems:
            names_wrong = any(p.startswith("missing") or p.endswith("not in the spec") for p in problems)
            listed = f"; the spec declares {_declared(self.inputs)}" if names_wrong else ""
            self._fail(TritonInferFailed, "; ".join(problems) + f"{listed}; nothing was sent", field="triton.inputs",
                       hint="pass exactly the declared inputs as numpy arrays of the declared dtype and rank")
        tensors = []
        for spec in self.inputs:
            array = inputs[spec.name]
            tensor = InferInput(spec.name, list(array.shape), spec.dtype)
            try:
                tensor.set_data_from_numpy(array, binary_data=True)
            except Exception as exc:  # tritonclient's own check (e.g. a BYTES element it cannot encode)
                self._fail(TritonInferFailed, f"input {spec.name!r}: {exc}; nothing was sent", field="triton.inputs")
            tensors.append(tensor)
        return tensors

    def _input_problems(self, spec: TritonTensor, value: Any) -> list[str]:
        name = repr(spec.name)
        if not isinstance(value, np.ndarray):
            return [f"input {name} must be a numpy array, got {type(value).__name__}"]
        want = self._numpy[spec.name]
        ok = (value.dtype == np.object_ or value.dtype.type == np.bytes_) if spec.dtype == "BYTES" \
            else value.dtype == want
        problems = [] if ok else [f"input {name} has dtype {value.dtype}, the spec declares {spec.dtype} "
                                  f"(numpy {np.dtype(want).name if spec.dtype != 'BYTES' else 'object or bytes_'})"]
        if value.ndim != len(spec.shape):
            problems.append(f"input {name} has shape {list(value.shape)} (rank {value.ndim}), the spec declares "
                            f"{spec.shape} (rank {len(spec.shape)})")
        elif not _fits(list(value.shape), spec.shape):
            problems.append(f"input {name} has shape {list(value.shape)}, the spec declares {spec.shape}")
        return problems

    def _outputs(self, answer: Response, wanted: Sequence[str]) -> dict[str, np.ndarray]:
        length = answer.headers.get("inference-header-content-length")
        try:
            result = InferResult.from_response_body(answer.body, False, int(length) if length is not None else None,
                                                    answer.headers.get("content-encoding"))
            described = {o["name"]: o for o in result.get_response()["outputs"]}
        except Exception as exc:  # anything tritonclient cannot read is a malformed answer
            self._fail(TritonInferFailed, f"malformed infer answer ({type(exc).__name__}: {exc})", hint=_MALFORMED)
        out: dict[str, np.ndarray] = {}
        for name in wanted:
            spec, got = self._declared_out[name], described.get(name)
            if got is None:
                self._fail(TritonInferFailed, f"the answer has no output {name!r}", field="triton.outputs")
            if got.get("datatype") != spec.dtype or not _fits(got.get("shape"), spec.shape):
                self._fail(TritonInferFailed, f"output {name!r} came as {shown(got.get('datatype'))} "
                           f"{shown(got.get('shape'))}, the spec declares {spec.dtype} {spec.shape}",
                           field="triton.outputs", hint="run handle.check(): the served model differs from the spec")
            try:
                array = result.as_numpy(name)
            except Exception as exc:
                self._fail(TritonInferFailed, f"malformed infer answer: output {name!r}: {type(exc).__name__}: {exc}",
                           hint=_MALFORMED)
            array.flags.writeable = False
            out[name] = array
        return out

    # --- failures -------------------------------------------------------------------------------
    def _exchange(self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None, *,
                  during: str) -> Response:
        try:
            return self._pool.request(method, path, body, headers)
        except Unreachable as exc:
            self._fail(TritonUnavailable, str(exc), field="triton.http_url",
                       hint=f"start the local Triton server at {self.endpoint}, or fix triton.http_url; "
                            "nothing is retried")
        except NoAnswer as exc:
            # A health check that gets no answer means the server is not available; an infer request
            # that gets none may still be running on the server: that inference failed.
            code = TritonUnavailable if during == "check" else TritonInferFailed
            self._fail(code, f"{exc} ({self.timeouts.network:g} s) for {method} {path}; sent once, not retried",
                       field="triton.http_url" if during == "check" else None,
                       hint="a slower model needs a larger triton_timeouts['network'] (ModelManager argument)")
        except BadResponse as exc:
            self._fail(TritonInferFailed, f"malformed answer to {method} {path}: {exc}", hint=_MALFORMED)
        except NetworkAccessForbidden as exc:
            raise NetworkAccessForbidden(
                f"{self._where()}: {exc.message}", component=self.component, role=self.role,
                field="triton.http_url",
                hint="the network guard allows loopback and the Triton endpoints of the manager's mapping; "
                     "use the handle of a spec that mm.resolve returned") from exc

    def _refused(self, answer: Response) -> NoReturn:
        said = _said(answer).removeprefix(": ")
        if answer.status == 404:
            field = "triton.model_version" if " version " in said else "triton.model_name"
            self._fail(TritonModelNotFound, f"Triton answered 404: {said}", field=field,
                       hint="load the model version into Triton's repository, or fix "
                            "triton.model_name/model_version")
        self._fail(TritonInferFailed, f"Triton answered {answer.status}: {said}",
                   hint="Triton's own message above says what it refused or what the model raised")

    def _where(self) -> str:
        return f"model {shown(self.model_name)} version {shown(self.model_version)} at {self.endpoint}"

    def _fail(self, code: type[ModelManagerError], message: str, *, field: str | None = None,
              hint: str | None = None) -> NoReturn:
        raise code(f"{self._where()}: {message}", component=self.component, role=self.role, field=field,
                   hint=hint) from None


def _numpy_dtype(dtype: str) -> Any:
    return np.object_ if dtype == "BYTES" else np.dtype(triton_to_np_dtype(dtype))


def _fits(shape: Any, declared: Sequence[int]) -> bool:
    """A shape matches a declared one: same rank, each dim equal or -1 on either side."""
    return (isinstance(shape, list) and len(shape) == len(declared)
            and all(isinstance(d, int) and (d == w or -1 in (d, w)) for d, w in zip(shape, declared, strict=True)))


def _declared(tensors: Sequence[TritonTensor]) -> str:
    return ", ".join(f"{t.name!r} {t.dtype} {t.shape}" for t in tensors)


def _differences(side: str, declared: Sequence[TritonTensor], served: list[dict[str, Any]]) -> list[str]:
    by_name = {t["name"]: t for t in served}
    out = []
    for spec in declared:
        got = by_name.get(spec.name)
        if got is None:
            out.append(f"{side} {spec.name!r} ({spec.dtype} {spec.shape}) is not served")
            continue
        if got["datatype"] != spec.dtype:
            out.append(f"{side} {spec.name!r} is {shown(got['datatype'])} on the server, {spec.dtype} in the spec")
        if not _fits(got["shape"], spec.shape):
            out.append(f"{side} {spec.name!r} has shape {shown(got['shape'])} on the server, {spec.shape} in the spec")
    names = {t.name for t in declared}
    out += [f"{side} {shown(name)} is served but not in the spec" for name in by_name if name not in names]
    return out


def _said(answer: Response) -> str:
    """Triton's own message (its ``{"error": ...}`` body), bounded, as ': message'."""
    try:
        text = json.loads(answer.body)["error"]
        if not isinstance(text, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return f": {shown(answer.body[:200])}" if answer.body else ""
    return ": " + (text if len(text) <= _SERVER_TEXT else text[:_SERVER_TEXT] + "...")
