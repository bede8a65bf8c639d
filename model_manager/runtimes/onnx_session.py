"""How the ONNX handle builds its InferenceSession: the session options, the provider ``spec.device`` names,
and the proof that ONNX Runtime did not fall back to another device (docs/onnx-runtime.md).

No third-party import at module level: onnxruntime is passed in (``ort``) by ``runtimes.onnx`` once it has
imported. The trap this module closes (shared/design/ORT_NOTES.md): asked for CUDA, ONNX Runtime can build a
CPU session without raising, saying so only on stderr (C++ log) or stdout (the Python retry's ``print``).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from model_manager.errors import DeviceUnavailable, InvalidModelSpec, ModelArtifactInvalid, ModelManagerError, shown

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"
#: session option -> the value used when the caller sets none (0 threads: ONNX Runtime's own default)
DEFAULTS: dict[str, int | str] = {"intra_op_num_threads": 0, "inter_op_num_threads": 0,
                                  "graph_optimization_level": "all", "execution_mode": "sequential",
                                  "log_severity_level": 4}
LEVELS = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
          "layout": "ORT_ENABLE_LAYOUT", "all": "ORT_ENABLE_ALL"}
MODES = {"sequential": "ORT_SEQUENTIAL", "parallel": "ORT_PARALLEL"}
_MAX_THREADS = 1024
_ORT_TEXT = 1200  # the most of ONNX Runtime's own words one error keeps

#: An ONNX model of one Identity node (x: float[1] -> y), IR 7, opset 13: what the CUDA probe loads. Built
#: with onnx.helper (tests/runtimes/test_onnx_session.py rebuilds it and compares the bytes).
PROBE_MODEL = (b'\x08\x07\x12\x00:;\n\x10\n\x01x\x12\x01y"\x08Identity\x12\x05probeZ\x0f\n\x01x\x12\n\n\x08\x08\x01'
               b'\x12\x04\n\x02\x08\x01b\x0f\n\x01y\x12\n\n\x08\x08\x01\x12\x04\n\x02\x08\x01B\x04\n\x00\x10\r')

_E = TypeVar("_E", bound=ModelManagerError)


@dataclass(frozen=True, slots=True)
class Place:
    """Who an error is about: component, role, and the model as every message of the handle starts."""

    component: str
    role: str
    prefix: str

    def error(self, code: type[_E], message: str, *, field: str | None = None, hint: str | None = None) -> _E:
        return code(f"{self.prefix}: {message}", component=self.component, role=self.role, field=field, hint=hint)


# --- session options ---------------------------------------------------------------------------------
def parse_options(value: Mapping[str, Any] | None, place: Place) -> dict[str, int | str]:
    """The caller's ``session_options`` checked, over the defaults; every problem in one error."""
    if value is None:
        return dict(DEFAULTS)
    if not isinstance(value, Mapping):
        raise place.error(InvalidModelSpec, f"session_options must be a dict, not {type(value).__name__}",
                          field="session_options", hint=f"pass e.g. {{'intra_op_num_threads': 1}}; keys: "
                                                        f"{', '.join(DEFAULTS)}")
    chosen, problems = dict(DEFAULTS), {}
    for key, item in value.items():
        problem = _option_problem(key, item)
        if problem:
            problems[shown(key) if not isinstance(key, str) else key] = problem
        else:
            chosen[key] = item
    if problems:
        field = f"session_options.{next(iter(problems))}" if len(problems) == 1 else "session_options"
        raise place.error(InvalidModelSpec, "; ".join(problems.values()), field=field,
                          hint=f"the keys are {', '.join(DEFAULTS)} (docs/onnx-runtime.md)")
    return chosen


def _option_problem(key: object, value: object) -> str | None:
    if key not in DEFAULTS:
        return f"unknown session option {shown(key)}"
    if key in ("intra_op_num_threads", "inter_op_num_threads"):
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_THREADS
        return None if ok else f"{key} {shown(value)} is not a whole number from 0 (ONNX Runtime's default) " \
                               f"to {_MAX_THREADS}"
    if key == "log_severity_level":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 4
        return None if ok else f"log_severity_level {shown(value)} is not 0 (verbose) to 4 (fatal only)"
    names = LEVELS if key == "graph_optimization_level" else MODES
    return None if isinstance(value, str) and value in names else \
        f"{key} {shown(value)} is not one of {', '.join(repr(n) for n in names)}"


def build_options(ort: Any, chosen: Mapping[str, int | str], place: Place) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = chosen["intra_op_num_threads"]
    options.inter_op_num_threads = chosen["inter_op_num_threads"]
    options.log_severity_level = chosen["log_severity_level"]
    options.execution_mode = getattr(ort.ExecutionMode, MODES[str(chosen["execution_mode"])])
    level = getattr(ort.GraphOptimizationLevel, LEVELS[str(chosen["graph_optimization_level"])], None)
    if level is None:  # "layout" came with onnxruntime 1.22
        raise place.error(InvalidModelSpec, f"graph_optimization_level {chosen['graph_optimization_level']!r} is "
                          f"not known to onnxruntime {ort.__version__}", field="session_options."
                          "graph_optimization_level", hint="use 'extended' or 'all', or a newer onnxruntime")
    options.graph_optimization_level = level
    return options


def effective_options(session: Any) -> dict[str, int | str]:
    """What the session runs with, in the caller's words (for describe())."""
    options = session.get_session_options()
    level, mode = options.graph_optimization_level.name, options.execution_mode.name
    return {"intra_op_num_threads": options.intra_op_num_threads,
            "inter_op_num_threads": options.inter_op_num_threads,
            "graph_optimization_level": next((k for k, v in LEVELS.items() if v == level), level),
            "execution_mode": next((k for k, v in MODES.items() if v == mode), mode),
            "log_severity_level": options.log_severity_level}


# --- the device --------------------------------------------------------------------------------------
def device_id(device: str, place: Place) -> int | None:
    """None for ``cpu``; the CUDA ordinal for ``cuda`` (0) and ``cuda:N``."""
    if device == "cpu":
        return None
    match = re.fullmatch(r"cuda(?::(0|[1-9][0-9]{0,2}))?", device)
    if match is None:
        raise place.error(InvalidModelSpec, f"device {shown(device)} is not cpu, cuda or cuda:N", field="device",
                          hint="the mapping's device is cpu, cuda or cuda:N")
    return int(match.group(1) or 0)


def providers(ordinal: int | None) -> list[Any]:
    return [CPU] if ordinal is None else [(CUDA, {"device_id": ordinal})]


def build_name(ort: Any) -> str:
    info = getattr(getattr(ort, "capi", None), "build_and_package_info", None)
    package, cuda = str(getattr(info, "package_name", "onnxruntime")), getattr(info, "cuda_version", None)
    return f"{package} {ort.__version__}" + (f" (built for CUDA {cuda})" if cuda else "")


def _asked(ordinal: int | None) -> str:
    return CPU if ordinal is None else f"{CUDA} with device_id {ordinal}"


def _unavailable(place: Place, device: str, ordinal: int | None, why: str, ort: Any,
                 hint: str | None = None) -> DeviceUnavailable:
    return place.error(
        DeviceUnavailable,
        f"device {device!r} asked for {_asked(ordinal)}, but {why}; nothing runs on another device",
        field="device",
        hint=hint or f"run where {device} exists with the CUDA and cuDNN libraries {build_name(ort)} needs (if "
                     "they come from the nvidia-* pip packages, call onnxruntime.preload_dlls() once at worker "
                     "start), or set the entry's device to cpu")


_probed: set[int] = set()  # CUDA ordinals a probe session proved usable in this process
_probe_lock = threading.Lock()


def require_device(ort: Any, device: str, ordinal: int | None, place: Place) -> None:
    """Refuse a device ONNX Runtime cannot use before the model is read: a build without the CUDA provider
    (certain, free), then once per ordinal a probe session on a one-node model, with the process's stderr
    file descriptor captured for those few milliseconds only (see _captured)."""
    if ordinal is None:
        return
    available = list(ort.get_available_providers())
    if CUDA not in available:
        raise _unavailable(place, device, ordinal, f"the installed {build_name(ort)} has no {CUDA} (its providers: "
                           f"{available}): a CPU-only onnxruntime would silently run on the CPU", ort,
                           hint="install onnxruntime-gpu (the onnx-gpu extra) in place of onnxruntime: uninstall "
                                "onnxruntime first, both provide the same module; or set the entry's device to cpu")
    with _probe_lock:
        if ordinal in _probed:
            return
        outcome, logged = _captured(lambda: _probe(ort, ordinal))
        if isinstance(outcome, Exception):
            why = f"ONNX Runtime refused to create it: {_ort_text(outcome)}"
        else:
            why = fallback(ordinal, *outcome) or ""
            if not why:
                _probed.add(ordinal)
                return
        said = f"; ONNX Runtime logged: {' | '.join(logged)}" if logged else ""
        raise _unavailable(place, device, ordinal, why + said, ort)


def _probe(ort: Any, ordinal: int) -> tuple[list[str], dict[str, Any]]:
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(PROBE_MODEL, options, providers=providers(ordinal), enable_fallback=0,
                                   read_config_from_model=0)
    return list(session.get_providers()), dict(session.get_provider_options())  # the session ends here


def fallback(ordinal: int | None, in_use: list[str], options: Mapping[str, Any]) -> str | None:
    """Why a session is not on the device asked for, or None: the requested provider must come first, and
    a CUDA session must hold the CUDA ordinal asked for."""
    wanted = CPU if ordinal is None else CUDA
    if not in_use or in_use[0] != wanted:
        return f"ONNX Runtime fell back: its session runs on {in_use}"
    if ordinal is not None:
        got = dict(options.get(CUDA) or {}).get("device_id")
        if str(got) != str(ordinal):
            return f"ONNX Runtime's CUDA session holds device_id {shown(got)}"
    return None


# --- the session ---------------------------------------------------------------------------------------
_DEVICE_WORDS = re.compile(r"cuda|cudnn|cublas|curand|out of memory|failed to allocate|EP Error|execution provider",
                           re.IGNORECASE)


def create_session(ort: Any, model: bytes, options: Any, device: str, ordinal: int | None,
                   place: Place) -> tuple[Any, dict[str, Any]]:
    """The session of ``model`` (the verified bytes) on exactly the provider asked for, and that provider's
    options; a session ONNX Runtime moved to another device is dropped, never returned."""
    try:
        # enable_fallback=0: no Python-level retry on other providers (and none of its stdout banners);
        # read_config_from_model=0: ORT_LOAD_CONFIG_FROM_MODEL=1 must not let the file override the options.
        session = ort.InferenceSession(model, options, providers=providers(ordinal), enable_fallback=0,
                                       read_config_from_model=0)
    except Exception as exc:
        text = _ort_text(exc)
        if ordinal is not None and (type(exc).__name__ == "EPFail" or _DEVICE_WORDS.search(text)):
            raise _unavailable(place, device, ordinal, f"creating the session failed: {text}", ort) from None
        raise place.error(ModelArtifactInvalid, f"ONNX Runtime cannot load the verified file as a model: {text}",
                          field="artifacts.onnx_path",
                          hint="re-export the model as one self-contained .onnx file (onnx.save, no external "
                               "data) with an IR version and opset this onnxruntime supports, and pin its new "
                               "digest") from None
    in_use, provider_options = list(session.get_providers()), dict(session.get_provider_options())
    why = fallback(ordinal, in_use, provider_options)
    if why is not None:
        del session  # the fallen-back session is never used
        raise _unavailable(place, device, ordinal, why, ort)
    # The session keeps the model bytes only to re-create itself on set_providers(), which the handle never
    # calls: let a large model's bytes go (ONNX Runtime holds its own copy of the weights).
    if getattr(session, "_model_bytes", None) is not None:
        session._model_bytes = None
    session.disable_fallback()
    return session, {k: str(v) for k, v in dict(provider_options.get(in_use[0]) or {}).items()}


def _ort_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= _ORT_TEXT else text[:_ORT_TEXT] + "..."


# --- the stderr capture --------------------------------------------------------------------------------
_R = TypeVar("_R")
_ANSI = re.compile(rb"\x1b\[[0-9;]*m")
_RESET = b"\x1b[m"  # ONNX Runtime colours each record and resets the colour at its end
_ORT_LINE = re.compile(rb"\[([VIWEF]):onnxruntime:[^\]]*\]\s?(.*)")
_SOURCE = re.compile(rb"/onnxruntime_src/\S+ .*?\[ONNXRuntimeError\] : \d+ : \w+ : ")


def _captured(fn: Callable[[], _R]) -> tuple[_R | Exception, list[str]]:
    """``fn()`` (or the exception it raised) and ONNX Runtime's log records written meanwhile.

    ONNX Runtime's process-wide "Default" logger writes the CUDA library failures straight to file
    descriptor 2 from C++: no session option reaches it, and changing its severity is process-wide with no
    way to read the old value back. So fd 2 points at an anonymous file for the call alone (a probe: a few
    ms), under the caller's lock; afterwards every line that is not ONNX Runtime's (another thread's
    output) is written back to the real stderr, late but whole, and ONNX Runtime's records become the
    message. stdout is left alone: nothing of ONNX Runtime's goes there once its Python retry is off.
    """
    try:
        sink = tempfile.TemporaryFile()  # noqa: SIM115 (closed by `with sink` below)
    except OSError:  # nowhere to capture to: run uncaptured rather than not at all
        return _call(fn), []
    with sink:
        _flush_stderr()
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 to protect (a daemon)
            return _call(fn), []
        try:
            os.dup2(sink.fileno(), 2)
            try:
                outcome = _call(fn)
            finally:
                _flush_stderr()
                os.dup2(saved, 2)
        finally:
            os.close(saved)
        sink.seek(0)
        ours, theirs = _split(sink.read())
    while theirs:
        try:
            theirs = theirs[os.write(2, theirs):]
        except OSError:
            break
    return outcome, ours


def _flush_stderr() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # None under pythonw, closed, or replaced by the caller
        pass


def _call(fn: Callable[[], _R]) -> _R | Exception:
    try:
        return fn()
    except Exception as exc:
        return exc


def _split(data: bytes) -> tuple[list[str], bytes]:
    """ONNX Runtime's log records (cleaned: no colours, time stamps or C++ source prefixes) and the rest."""
    ours: list[str] = []
    theirs: list[bytes] = []
    inside = False  # within a coloured record of ONNX Runtime's whose colour is not reset yet
    for line in data.splitlines(keepends=True):
        plain = _ANSI.sub(b"", line)
        match = _ORT_LINE.search(plain)
        if match:
            text = _SOURCE.sub(b"", match.group(2)).decode("utf-8", "replace").strip()
            ours.append(f"{match.group(1).decode()}: {text}"[:600])
            inside = line.startswith(b"\x1b[") and _RESET not in line
        elif inside:
            if plain.strip():
                ours[-1] = (ours[-1] + " " + plain.decode("utf-8", "replace").strip())[:600]
            inside = _RESET not in line
        else:
            theirs.append(line)
    return ours, b"".join(theirs)
