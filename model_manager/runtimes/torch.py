"""The in-process torch handle: a role's verified weights as a state dict, on the spec's device, loaded safely.

``mm.get_runtime(spec)`` of an ``engine: torch`` role returns a ``TorchHandle``. Making one reads no weights
and imports neither torch, numpy nor safetensors. ``load_state_dict()`` reads the weights again through
``read_verified`` (what is loaded is what was verified) and builds the tensors from those bytes only:
``.safetensors`` through safetensors, torch pickles through ``torch.load(weights_only=True)`` after the
static allow-list scan of ``runtimes.torch_pickle``. Tensors go to the spec's device and nowhere else.
docs/torch-weights.md is the user's guide.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import stat
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Literal

from model_manager.artifacts.verified import read_verified
from model_manager.errors import (
    DeviceUnavailable,
    InvalidModelSpec,
    ModelArtifactInvalid,
    ModelArtifactMissing,
    TorchMissing,
    os_failure,
    shown,
)
from model_manager.runtimes.torch_pickle import PickleRefused, check_torch_file

if TYPE_CHECKING:
    from model_manager.mapping.schema import ResolvedModelSpec

__all__ = ["PICKLE_SUFFIXES", "SAFETENSORS_SUFFIX", "TorchHandle", "WeightsFormat", "torch_handle"]

SAFETENSORS_SUFFIX: Final = ".safetensors"
#: torch.save's files, zip or legacy format alike
PICKLE_SUFFIXES: Final = (".pt", ".pth", ".bin")
WeightsFormat = Literal["safetensors", "torch"]

_FIELD: Final = "artifacts.weights_path"
_SUFFIXES: Final = f"{SAFETENSORS_SUFFIX}, {', '.join(PICKLE_SUFFIXES)}"
_NO_TORCH_HINT: Final = ("install torch in the worker's environment, or ship the weights as .safetensors (they load "
                         "to numpy on a cpu entry without torch)")


def torch_handle(spec: ResolvedModelSpec, path: str, root: str) -> TorchHandle:
    """The handle of an in-process torch role whose verified weights (a file or a model folder) are at ``path``,
    under the real models root ``root``. Cheap: it looks at names only, and needs no torch."""
    where = {"component": spec.component_name, "role": spec.role}
    if spec.runtime != "inprocess" or spec.engine != "torch":
        raise InvalidModelSpec(f"{spec.component_name}/{spec.role} runs {spec.runtime}/{spec.engine}, not in-process "
                               "torch", **where, field="engine", hint="use mm.get_runtime(spec); it picks the handle")
    try:
        names = _top_level_files(path) if stat.S_ISDIR(os.stat(path).st_mode) else None
    except FileNotFoundError:
        raise ModelArtifactMissing(f"{shown(path)} is gone (ENOENT) since the manager verified it", **where,
                                   field=_FIELD, hint="restore the weights; nothing is downloaded") from None
    except OSError as exc:
        raise os_failure(exc, shown(path), **where, field=_FIELD,
                         hint="fix the file or folder named (its permissions, a failing disk)") from None
    if names is None:
        return TorchHandle(spec, path, root, _file_format(path, path, where))
    return TorchHandle(spec, path, root, _pick(names, path, where)[0])


class TorchHandle:
    """The verified weights of one in-process torch role, loaded on demand.

    Attributes: ``weights_path`` (the verified file or folder), ``device`` (the spec's: cpu, cuda or cuda:N),
    ``format`` ("safetensors" or "torch"), plus ``component``, ``role`` and ``spec``. Nothing is cached:
    every ``load_state_dict()`` reads and checks the bytes again, so a handle is safe to share between threads.
    """

    def __init__(self, spec: ResolvedModelSpec, path: str, root: str, weights_format: WeightsFormat) -> None:
        self.spec = spec
        self.component, self.role = spec.component_name, spec.role
        self.weights_path: str = path
        self.device: str = spec.device
        self.format: WeightsFormat = weights_format
        self._root = root
        self._folder = os.path.isdir(path)
        self._where: dict[str, str | None] = {"component": self.component, "role": self.role, "field": _FIELD}

    def __repr__(self) -> str:
        return (f"TorchHandle({self.component}/{self.role}: {self.format} weights {self.weights_path!r} "
                f"on {self.device})")

    def describe(self) -> dict[str, str]:
        """What health and provenance records show; loads nothing."""
        return {"weights_path": self.weights_path, "device": self.device, "format": self.format}

    def load_state_dict(self) -> dict[str, Any]:
        """``{name: tensor}`` on ``device``, built from the bytes read now and checked against weights_digest.

        With torch installed the values are torch tensors; without it a ``.safetensors`` on a ``cpu`` entry gives
        numpy arrays. A folder's top-level ``*.safetensors`` (or, if it has none, its torch pickles) are merged.
        """
        data = read_verified(self.weights_path, self._root, self.spec.weights_digest, **self._where)
        if isinstance(data, bytes):
            name = os.path.basename(self.weights_path)
            files, fmt, names = {name: data}, _file_format(name, self.weights_path, self._where), [name]
        else:
            files = data
            fmt, names = _pick(list(files), self.weights_path, self._where)
        if fmt == "torch":
            parts = self._load_pickles(files, names)
        else:
            parts = self._load_safetensors(files, names)
        return parts[0][1] if len(parts) == 1 else self._merge(parts)

    # --- torch pickles ----------------------------------------------------------------------------
    def _load_pickles(self, files: dict[str, bytes], names: list[str]) -> list[tuple[str, dict[str, Any]]]:
        for name in names:  # every file is scanned before torch is even imported
            try:
                check_torch_file(files[name])
            except PickleRefused as exc:
                raise self._invalid(f"{self._label(name)} is refused and was never unpickled: {exc}",
                                    hint="save a plain state dict (torch.save(model.state_dict(), path)) or "
                                         "safetensors, and pin its new digest") from None
        torch = self._torch(f"{self._label(names[0])} is a torch pickle: loading it", _FIELD)
        self._check_device(torch)
        parts = []
        for name in names:
            try:
                loaded = torch.load(io.BytesIO(files[name]), weights_only=True, map_location=self.device)
            except Exception as exc:
                if _out_of_memory(exc):
                    raise
                raise self._invalid(f"torch.load(weights_only=True) refused {self._label(name)}: "
                                    f"{type(exc).__name__}: {_torch_reason(exc)}") from None
            parts.append((name, self._state_dict(loaded, name, lambda v: isinstance(v, torch.Tensor))))
        return parts

    # --- safetensors ------------------------------------------------------------------------------
    def _load_safetensors(self, files: dict[str, bytes], names: list[str]) -> list[tuple[str, dict[str, Any]]]:
        for name in names:
            self._check_header(files[name], name)
        if self.device == "cpu":
            torch = self._torch(None, _FIELD)
        else:
            torch = self._torch(f"device {self.device!r}: numpy arrays live on the CPU, so loading for it", "device")
        if torch is not None:
            self._check_device(torch)
        module = self._safetensors("torch" if torch is not None else "numpy")
        parts = []
        for name in names:
            try:
                tensors = module.load(files[name])
            except KeyError as exc:  # safetensors.numpy's dtype table: the file parsed, numpy has no such type
                raise TorchMissing(f"{self._label(name)} holds {shown(exc.args[0] if exc.args else '?')} tensors, "
                                   "which numpy cannot hold: loading them needs torch", **self._where,
                                   hint=_NO_TORCH_HINT) from None
            except Exception as exc:
                if _out_of_memory(exc):
                    raise
                raise self._invalid(f"safetensors refused {self._label(name)}: {type(exc).__name__}: "
                                    f"{_first_line(exc)}") from None
            if torch is not None and self.device != "cpu":
                tensors = {key: value.to(self.device) for key, value in tensors.items()}
            parts.append((name, tensors))
        return parts

    def _check_header(self, data: bytes, name: str) -> None:
        """The header safetensors reads first, checked here for a message that says what is wrong."""
        label = self._label(name)
        if len(data) < 8:
            raise self._invalid(f"{label} is {len(data)} bytes long: a safetensors file starts with an 8-byte "
                                "header length")
        size = int.from_bytes(data[:8], "little")
        if size > len(data) - 8:
            raise self._invalid(f"{label}: its header length {size} is larger than the {len(data) - 8} bytes after it "
                                "(a truncated or foreign file)")
        try:
            header = json.loads(data[8:8 + size].decode("utf-8"))
        except UnicodeDecodeError:
            raise self._invalid(f"{label}: its header is not UTF-8 (a foreign or corrupt file)") from None
        except (ValueError, RecursionError) as exc:
            raise self._invalid(f"{label}: its header is not JSON ({_first_line(exc)})") from None
        if not isinstance(header, dict):
            raise self._invalid(f"{label}: its header is a JSON {type(header).__name__}, not an object")

    def _safetensors(self, backend: str) -> ModuleType:
        try:
            return importlib.import_module(f"safetensors.{backend}")
        except ModuleNotFoundError as exc:
            if exc.name not in ("safetensors", f"safetensors.{backend}"):
                raise
            raise TorchMissing(f"loading {shown(self.weights_path)} needs the safetensors package, which is not "
                               "installed", **self._where, hint="install the `safetensors` extra "
                               "(pip install 'model-manager[safetensors]')") from None

    # --- torch, devices, results ------------------------------------------------------------------
    def _torch(self, needed_for: str | None, field: str) -> Any:
        """The torch module; None when it is not installed and ``needed_for`` is None, else ``torch_missing``.
        A torch that is installed but does not import is always ``torch_missing``: nothing falls back."""
        try:
            return importlib.import_module("torch")
        except ModuleNotFoundError as exc:
            if exc.name != "torch":
                problem = f"torch is installed but does not import (ModuleNotFoundError: {exc})"
            elif needed_for is None:
                return None
            else:
                problem = f"{needed_for} needs torch, which is not installed"
        except Exception as exc:  # a broken install: a CUDA library that does not load, a bad wheel
            problem = f"torch is installed but does not import ({type(exc).__name__}: {_first_line(exc)})"
        raise TorchMissing(problem, **{**self._where, "field": field}, hint=_NO_TORCH_HINT)

    def _check_device(self, torch: Any) -> None:
        if self.device == "cpu":
            return
        where = {**self._where, "field": "device"}
        hint = ("run on a machine with that GPU and a CUDA build of torch, or change the entry's device; nothing is "
                "moved to another device")
        version = getattr(torch, "__version__", "?")
        if not torch.cuda.is_available():
            raise DeviceUnavailable(f"device {self.device!r}: torch {version} sees no CUDA device "
                                    "(torch.cuda.is_available() is False); nothing was loaded", **where, hint=hint)
        index = self.device.partition(":")[2]
        count = int(torch.cuda.device_count())
        if index and int(index) >= count:
            raise DeviceUnavailable(f"device {self.device!r}: torch {version} sees {count} CUDA device(s) "
                                    f"(cuda:0 to cuda:{count - 1}); nothing was loaded", **where, hint=hint)

    def _state_dict(self, loaded: object, name: str, is_tensor: Callable[[object], bool]) -> dict[str, Any]:
        if not isinstance(loaded, dict):
            raise self._invalid(f"{self._label(name)} holds an object of type {type(loaded).__name__}, not a state "
                                "dict",
                                hint="save model.state_dict() (a flat dict of tensors) and pin its new digest")
        for key, value in loaded.items():
            if not isinstance(key, str) or not is_tensor(value):
                raise self._invalid(f"{self._label(name)} is not a flat state dict of tensors: its entry "
                                    f"{shown(key)} is of type {type(value).__name__}, not a tensor",
                                    hint="save model.state_dict() (a flat dict of tensors) and pin its new digest")
        return loaded

    def _merge(self, parts: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for name, tensors in parts:
            for key, value in tensors.items():
                if key in origin:
                    raise self._invalid(f"tensor {shown(key)} is in both {self._label(origin[key])} and "
                                        f"{self._label(name)}",
                                        hint="a sharded folder holds each tensor once: remove the stale shard and "
                                             "pin the folder's new digest")
                merged[key], origin[key] = value, name
        return merged

    def _label(self, name: str) -> str:
        """A file as messages name it: the weights file, or a file of the model folder."""
        return shown(os.path.join(self.weights_path, name) if self._folder else self.weights_path)

    def _invalid(self, message: str, hint: str | None = None) -> ModelArtifactInvalid:
        return ModelArtifactInvalid(message, **self._where, hint=hint)


def _file_format(name: str, path: str, where: Mapping[str, str | None]) -> WeightsFormat:
    lowered = name.lower()
    if lowered.endswith(SAFETENSORS_SUFFIX):
        return "safetensors"
    if lowered.endswith(PICKLE_SUFFIXES):
        return "torch"
    raise ModelArtifactInvalid(f"{shown(path)} is not a weights file a torch role loads ({_SUFFIXES})",
                               **{**where, "field": _FIELD},
                               hint=f"name a {_SUFFIXES} file, or a model folder holding them")


def _pick(names: list[str], path: str, where: Mapping[str, str | None]) -> tuple[WeightsFormat, list[str]]:
    """The files of a model folder that are loaded: its top-level ``*.safetensors``, or if there are none its
    top-level torch pickles; sorted by name. A folder with neither is ``model_artifact_invalid``."""
    top = [n for n in names if "/" not in n]
    found = sorted(n for n in top if n.lower().endswith(SAFETENSORS_SUFFIX))
    if found:
        return "safetensors", found
    found = sorted(n for n in top if n.lower().endswith(PICKLE_SUFFIXES))
    if found:
        return "torch", found
    raise ModelArtifactInvalid(f"the model folder {shown(path)} holds no weights file ({_SUFFIXES}) at its top "
                               "level (subfolders are not searched)", **{**where, "field": _FIELD},
                               hint="point weights_path at the folder or file that holds the weights")


def _top_level_files(folder: str) -> list[str]:
    with os.scandir(folder) as entries:
        return [entry.name for entry in entries if not entry.is_dir()]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 400 else line[:400] + "..."


def _torch_reason(exc: Exception) -> str:
    """torch.load's own reason: weights_only failures bury it below a paragraph about the default's change."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        detail = [line.strip() for line in text.split(marker, 1)[1].splitlines() if line.strip()]
        if detail:
            return f"the weights_only unpickler says: {detail[0][:400]}"
    return _first_line(exc)


def _out_of_memory(exc: Exception) -> bool:
    """An allocation that failed is no fault of the file: it is raised as it is."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
