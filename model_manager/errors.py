"""Every failure a user can meet: one stable code, one subclass, one place.

This module imports nothing from third parties; it is loaded by everything,
including the network guard and the linter, and must stay cheap.
"""

from __future__ import annotations

import errno
import reprlib
import stat
from typing import Any, ClassVar, Final

from model_manager import error_codes as _codes
from model_manager.error_codes import CODES

#: the longest message an error keeps; user values are shortened by ``shown`` before that.
MAX_MESSAGE = 2000

_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxstring, _repr.maxother = 3, 400, 80  # 400: a real path stays whole
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = _repr.maxfrozenset = 6


def shown(value: object) -> str:
    """A bounded ``repr`` of a user's value: at most ~500 characters whatever its size, depth or shared
    references (a 10 MB name, a billion-laughs structure); a path of a few hundred characters stays whole."""
    try:
        text = _repr.repr(value)
    except Exception:  # a user object whose __repr__ fails must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 480 else text[:440] + f"...<{len(text) - 440} more characters>"


class ModelManagerError(Exception):
    """Base of every error the model manager raises. ``str(e)`` starts with the code."""

    code: ClassVar[str] = "model_manager_error"
    #: what the command line exits with when this error ends it (1: a check failed)
    exit_status: ClassVar[int] = 1

    def __init__(
        self,
        message: str = "",
        *,
        component: str | None = None,
        role: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + f"...<{len(message) - MAX_MESSAGE} more characters>"
        self.message = message
        self.component = _bounded(component)
        self.role = _bounded(role)
        self.field = _bounded(field)
        self.hint = hint if hint is not None else CODES.get(self.code, ("", None))[1]
        super().__init__(self.__str__())

    def where(self) -> str:
        parts = [p for p in (self.component, self.role) if p]
        place = "/".join(parts)
        if self.field:
            place = f"{place} field {self.field!r}" if place else f"field {self.field!r}"
        return place

    def __str__(self) -> str:
        where = self.where()
        text = f"{self.code}: {where}: {self.message}" if where else f"{self.code}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the fields across pickling (multiprocessing workers, xdist).
        kwargs = {"component": self.component, "role": self.role, "field": self.field, "hint": self.hint}
        return (_rebuild, (type(self), self.message, kwargs))

    def to_dict(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "message": self.message,
            "component": self.component,
            "role": self.role,
            "field": self.field,
            "hint": self.hint,
        }


def _bounded(name: str | None) -> str | None:
    """Component, role and field names can come from user input: keep each one short and on one line."""
    if name is None or (len(name) <= 160 and name.isprintable()):
        return name
    return shown(name)


def _rebuild(cls: type[ModelManagerError], message: str, kwargs: dict[str, Any]) -> ModelManagerError:
    err = cls.__new__(cls)
    ModelManagerError.__init__(err, message, **kwargs)
    return err


class ModelMappingMissing(ModelManagerError):
    code = _codes.MODEL_MAPPING_MISSING


class InvalidModelSpec(ModelManagerError):
    code = _codes.INVALID_MODEL_SPEC


class InvalidRunContext(ModelManagerError):
    code = _codes.INVALID_RUN_CONTEXT


class ModelsRootMissing(ModelManagerError):
    code = _codes.MODELS_ROOT_MISSING
    exit_status = 3


class ModelArtifactMissing(ModelManagerError):
    code = _codes.MODEL_ARTIFACT_MISSING


class WeightsDigestMismatch(ModelManagerError):
    code = _codes.WEIGHTS_DIGEST_MISMATCH


class TritonUnavailable(ModelManagerError):
    code = _codes.TRITON_UNAVAILABLE
    exit_status = 3


class TritonModelNotFound(ModelManagerError):
    code = _codes.TRITON_MODEL_NOT_FOUND


class TritonInferFailed(ModelManagerError):
    code = _codes.TRITON_INFER_FAILED


class OnnxRuntimeMissing(ModelManagerError):
    code = _codes.ONNXRUNTIME_MISSING
    exit_status = 3


class ProvenanceInvalid(ModelManagerError):
    code = _codes.PROVENANCE_INVALID


class ModelSignatureMismatch(ModelManagerError):
    code = _codes.MODEL_SIGNATURE_MISMATCH


class NetworkAccessForbidden(ModelManagerError):
    code = _codes.NETWORK_ACCESS_FORBIDDEN

    def __init__(self, message: str = "", *, host: str | None = None, port: int | None = None,
                 library: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.host, self.port, self.library = host, port, library

    def __reduce__(self) -> tuple[Any, ...]:
        # host, port and library travel as state: xdist and multiprocessing pickle the refusal
        return (*super().__reduce__(), {"host": self.host, "port": self.port, "library": self.library})


class LintConfigInvalid(ModelManagerError):
    code = _codes.LINT_CONFIG_INVALID


class LicenseInventoryInvalid(ModelManagerError):
    code = _codes.LICENSE_INVENTORY_INVALID


class LintFixUnavailable(ModelManagerError):
    code = _codes.LINT_FIX_UNAVAILABLE
    exit_status = 3


class DigestCacheInsecure(ModelManagerError):
    code = _codes.DIGEST_CACHE_INSECURE
    exit_status = 3


class EnvironmentFailure(ModelManagerError):
    code = _codes.ENVIRONMENT_FAILURE
    exit_status = 3


class OutputInvalid(ModelManagerError):
    code = _codes.OUTPUT_INVALID


class OutputMissing(ModelManagerError):
    code = _codes.OUTPUT_MISSING


class OutputDigestMismatch(ModelManagerError):
    code = _codes.OUTPUT_DIGEST_MISMATCH


class OutputUnrecorded(ModelManagerError):
    code = _codes.OUTPUT_UNRECORDED


class IdempotencyKeyMismatch(ModelManagerError):
    code = _codes.IDEMPOTENCY_KEY_MISMATCH


class RunContextMismatch(ModelManagerError):
    code = _codes.RUN_CONTEXT_MISMATCH


class KernelGuardUnavailable(ModelManagerError):
    code = _codes.KERNEL_GUARD_UNAVAILABLE
    exit_status = 3


class DeviceUnavailable(ModelManagerError):
    code = _codes.DEVICE_UNAVAILABLE
    exit_status = 3


class ModelArtifactInvalid(ModelManagerError):
    code = _codes.MODEL_ARTIFACT_INVALID


class TorchMissing(ModelManagerError):
    code = _codes.TORCH_MISSING
    exit_status = 3


class InferenceFailed(ModelManagerError):
    code = _codes.INFERENCE_FAILED


class UsageError(ModelManagerError):
    code = _codes.USAGE_ERROR
    exit_status = 2


class Interrupted(ModelManagerError):
    code = _codes.INTERRUPTED
    exit_status = 130


#: code -> subclass; ``error_for(code, ...)`` builds the right one.
BY_CODE: Final[dict[str, type[ModelManagerError]]] = {cls.code: cls for cls in ModelManagerError.__subclasses__()}
for _cls in BY_CODE.values():
    _cls.__doc__ = CODES[_cls.code][0]  # the one text of when it is raised, as docs/errors.md shows it
#: codes whose cause lies outside the mapping and the code: the command line exits 3 for them.
ENVIRONMENT_CODES: Final = frozenset(code for code, cls in BY_CODE.items() if cls.exit_status == 3)


_FILE_KINDS: Final = {stat.S_IFREG: "a regular file", stat.S_IFDIR: "a folder", stat.S_IFLNK: "a symbolic link",
                      stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
                      stat.S_IFBLK: "a block device"}


def file_kind(mode: int) -> str:
    """What an ``st_mode`` is, for messages: "a FIFO", "a folder", ..."""
    return _FILE_KINDS.get(stat.S_IFMT(mode), "of an unknown kind")


def os_failure(exc: OSError, subject: str, *, hint: str | None = None, **where: str | None) -> EnvironmentFailure:
    """An operating-system error as the environment failure it is: ``<subject>: <ERRNO NAME> (<the system's
    words>)``. ``subject`` is already rendered (user values through ``shown``)."""
    name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    return EnvironmentFailure(f"{subject}: {name} ({exc.strerror or exc})", hint=hint, **where)


def error_for(code: str, message: str, **kwargs: str | None) -> ModelManagerError:
    return BY_CODE[code](message, **kwargs)
