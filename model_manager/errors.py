"""Every failure a user can meet: one stable code, one subclass, one place.

This module imports nothing from third parties; it is loaded by everything,
including the network guard and the linter, and must stay cheap.
"""

from __future__ import annotations

import errno
import reprlib
import stat
from typing import Any, ClassVar, Final

# --- codes (stable: other systems match on them; docs/errors.md lists them) ---
MODEL_MAPPING_MISSING: Final = "model_mapping_missing"
INVALID_MODEL_SPEC: Final = "invalid_model_spec"
INVALID_RUN_CONTEXT: Final = "invalid_run_context"
MODELS_ROOT_MISSING: Final = "models_root_missing"
MODEL_ARTIFACT_MISSING: Final = "model_artifact_missing"
WEIGHTS_DIGEST_MISMATCH: Final = "weights_digest_mismatch"
TRITON_UNAVAILABLE: Final = "triton_unavailable"
TRITON_MODEL_NOT_FOUND: Final = "triton_model_not_found"
TRITON_INFER_FAILED: Final = "triton_infer_failed"
ONNXRUNTIME_MISSING: Final = "onnxruntime_missing"
PROVENANCE_INVALID: Final = "provenance_invalid"
MODEL_SIGNATURE_MISMATCH: Final = "model_signature_mismatch"
NETWORK_ACCESS_FORBIDDEN: Final = "network_access_forbidden"
LINT_CONFIG_INVALID: Final = "lint_config_invalid"
LICENSE_INVENTORY_INVALID: Final = "license_inventory_invalid"
LINT_FIX_UNAVAILABLE: Final = "lint_fix_unavailable"
DIGEST_CACHE_INSECURE: Final = "digest_cache_insecure"
ENVIRONMENT_FAILURE: Final = "environment_failure"
OUTPUT_INVALID: Final = "output_invalid"
OUTPUT_MISSING: Final = "output_missing"
OUTPUT_DIGEST_MISMATCH: Final = "output_digest_mismatch"
OUTPUT_UNRECORDED: Final = "output_unrecorded"
IDEMPOTENCY_KEY_MISMATCH: Final = "idempotency_key_mismatch"
RUN_CONTEXT_MISMATCH: Final = "run_context_mismatch"
USAGE_ERROR: Final = "usage_error"
INTERRUPTED: Final = "interrupted"
KERNEL_GUARD_UNAVAILABLE: Final = "kernel_guard_unavailable"

#: code -> (when it is raised, what usually fixes it). docs/errors.md is built from this.
CODES: Final[dict[str, tuple[str, str]]] = {
    MODEL_MAPPING_MISSING: (
        "No mapping was given, or the component or role asked for is not in it.",
        "Pass a resolved mapping or a profile path; check the component and role names.",
    ),
    INVALID_MODEL_SPEC: (
        "The mapping breaks its contract (docs/mapping.md): a missing pinned field, an unknown key, "
        "a bad value, a duplicate YAML key, a path that leaves the models root.",
        "Fix the field the message names; nothing is defaulted.",
    ),
    INVALID_RUN_CONTEXT: (
        "The run context lacks a required field, has an unknown one, or a value is not a string.",
        "Pass all six run_context fields as non-empty strings (docs/mapping.md).",
    ),
    MODELS_ROOT_MISSING: (
        "In-process artifacts are named but MM_MODELS_ROOT is unset or not a folder.",
        "Set MM_MODELS_ROOT to the folder that holds the prepared weights.",
    ),
    MODEL_ARTIFACT_MISSING: (
        "An artifact named in the mapping is not on the local filesystem.",
        "Prepare the weights under MM_MODELS_ROOT before the run; nothing is downloaded.",
    ),
    WEIGHTS_DIGEST_MISMATCH: (
        "The local artifact's sha256 differs from the pinned weights_digest.",
        "Restore the pinned weights, or pin the new digest (`model-manager digest PATH`).",
    ),
    TRITON_UNAVAILABLE: (
        "The Triton server at the mapped endpoint cannot be reached or is not ready.",
        "Start the local Triton server; there are no retries.",
    ),
    TRITON_MODEL_NOT_FOUND: (
        "The Triton server does not serve the mapped model name and version, or its I/O differs.",
        "Load the model into Triton's repository, or fix triton.model_name/model_version.",
    ),
    TRITON_INFER_FAILED: (
        "Triton refused or failed an inference request, or answered with something that is not a valid answer.",
        "Read Triton's own message in the error: a model error, a bad input, a server that stopped answering.",
    ),
    ONNXRUNTIME_MISSING: (
        "An ONNX model runs in-process but onnxruntime (or the provider for its device) is absent.",
        "Install the `onnx` extra (CPU) or `onnx-gpu` extra (CUDA).",
    ),
    PROVENANCE_INVALID: (
        "A manifest.json or an NPZ output lacks readable provenance (models_used, model_signature).",
        "Write outputs through model_manager.provenance so every file carries its meta.",
    ),
    MODEL_SIGNATURE_MISMATCH: (
        "An output's model_signature differs from what the run's manifest says for its component.",
        "The output was produced by other models than the run recorded; re-run the component.",
    ),
    NETWORK_ACCESS_FORBIDDEN: (
        "Code tried to reach the network outside loopback and the mapped Triton endpoints.",
        "Prepare weights locally and load them by path; see docs/forbidden-calls.md.",
    ),
    LINT_CONFIG_INVALID: (
        "The [tool.mm-lint] table of pyproject.toml has an unknown key or a value of the wrong type.",
        "Fix the key the message names; see docs/mm-lint.md#configuration.",
    ),
    LICENSE_INVENTORY_INVALID: (
        "The licence inventory cannot be read or has no table with model_name and licence columns.",
        "Keep docs/MODEL_LICENSES.md a Markdown table: model_name | model_version | licence | source.",
    ),
    LINT_FIX_UNAVAILABLE: (
        "mm-lint --fix or --diff was asked for but libcst is not installed.",
        "Install libcst (the dev extra, or the mm-lint-fix pre-commit hook's dependencies).",
    ),
    DIGEST_CACHE_INSECURE: (
        "The digest cache folder, its key or its store can be written by another user, or is not "
        "a plain folder or file owned by this user.",
        "`chmod go-w` the folder (or point MM_CACHE_DIR at a private one); MM_VERIFY=full skips the cache.",
    ),
    ENVIRONMENT_FAILURE: (
        "The operating system refused or failed an operation: a read error (EIO), a permission, a "
        "symbolic-link loop, a full disk, a closed output pipe.",
        "Fix the file, folder or device the message names; the run itself was not at fault.",
    ),
    OUTPUT_INVALID: (
        "An output to be written breaks the rules of outputs: an object array (needs pickle to read), "
        "an array called 'meta', or meta that is not models_used and model_signature.",
        "Write plain numeric or string arrays with the meta from mm.npz_meta_for(component).",
    ),
    OUTPUT_MISSING: (
        "The run's manifest records an output that is not in the run folder (or is not a regular file).",
        "Restore the output, or re-run the component that wrote it.",
    ),
    OUTPUT_DIGEST_MISMATCH: (
        "An output's bytes (sha256) or component differ from what the run's manifest recorded.",
        "The file was replaced or edited after the run; restore it or re-run its component.",
    ),
    OUTPUT_UNRECORDED: (
        "An NPZ in the run folder is not recorded in the run's manifest.",
        "Remove the stray file, or write outputs with save_output so the manifest records them.",
    ),
    IDEMPOTENCY_KEY_MISMATCH: (
        "A recorded idempotency key differs from the one recomputed from the manifest's run_context "
        "and signatures.",
        "The manifest was edited after the run; restore it or re-run.",
    ),
    RUN_CONTEXT_MISMATCH: (
        "The manifest's run_context differs from the digest recorded when the run was written.",
        "The manifest was edited after the run; restore it or re-run.",
    ),
    USAGE_ERROR: (
        "The command line is malformed: an unknown option, a missing argument, a bad value.",
        "Run the command with --help.",
    ),
    INTERRUPTED: (
        "The command was interrupted (Ctrl-C, SIGINT) before it finished.",
        "Run it again; nothing it wrote is left half-written.",
    ),
    KERNEL_GUARD_UNAVAILABLE: (
        "The network guard's kernel mode was asked for, but this kernel or process cannot apply it "
        "(no Landlock network rules, no seccomp, another architecture, or threads it cannot cover).",
        "Run on Linux 6.7+ with Landlock enabled, activate kernel mode before starting threads, or "
        "leave MM_GUARD_KERNEL unset and accept the documented limits of the default mode.",
    ),
}


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
    code = MODEL_MAPPING_MISSING


class InvalidModelSpec(ModelManagerError):
    code = INVALID_MODEL_SPEC


class InvalidRunContext(ModelManagerError):
    code = INVALID_RUN_CONTEXT


class ModelsRootMissing(ModelManagerError):
    code = MODELS_ROOT_MISSING
    exit_status = 3


class ModelArtifactMissing(ModelManagerError):
    code = MODEL_ARTIFACT_MISSING


class WeightsDigestMismatch(ModelManagerError):
    code = WEIGHTS_DIGEST_MISMATCH


class TritonUnavailable(ModelManagerError):
    code = TRITON_UNAVAILABLE
    exit_status = 3


class TritonModelNotFound(ModelManagerError):
    code = TRITON_MODEL_NOT_FOUND


class TritonInferFailed(ModelManagerError):
    code = TRITON_INFER_FAILED


class OnnxRuntimeMissing(ModelManagerError):
    code = ONNXRUNTIME_MISSING
    exit_status = 3


class ProvenanceInvalid(ModelManagerError):
    code = PROVENANCE_INVALID


class ModelSignatureMismatch(ModelManagerError):
    code = MODEL_SIGNATURE_MISMATCH


class NetworkAccessForbidden(ModelManagerError):
    code = NETWORK_ACCESS_FORBIDDEN

    def __init__(self, message: str = "", *, host: str | None = None, port: int | None = None,
                 library: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.host, self.port, self.library = host, port, library

    def __reduce__(self) -> tuple[Any, ...]:
        # host, port and library travel as state: xdist and multiprocessing pickle the refusal
        return (*super().__reduce__(), {"host": self.host, "port": self.port, "library": self.library})


class LintConfigInvalid(ModelManagerError):
    code = LINT_CONFIG_INVALID


class LicenseInventoryInvalid(ModelManagerError):
    code = LICENSE_INVENTORY_INVALID


class LintFixUnavailable(ModelManagerError):
    code = LINT_FIX_UNAVAILABLE
    exit_status = 3


class DigestCacheInsecure(ModelManagerError):
    code = DIGEST_CACHE_INSECURE
    exit_status = 3


class EnvironmentFailure(ModelManagerError):
    code = ENVIRONMENT_FAILURE
    exit_status = 3


class OutputInvalid(ModelManagerError):
    code = OUTPUT_INVALID


class OutputMissing(ModelManagerError):
    code = OUTPUT_MISSING


class OutputDigestMismatch(ModelManagerError):
    code = OUTPUT_DIGEST_MISMATCH


class OutputUnrecorded(ModelManagerError):
    code = OUTPUT_UNRECORDED


class IdempotencyKeyMismatch(ModelManagerError):
    code = IDEMPOTENCY_KEY_MISMATCH


class RunContextMismatch(ModelManagerError):
    code = RUN_CONTEXT_MISMATCH


class KernelGuardUnavailable(ModelManagerError):
    code = KERNEL_GUARD_UNAVAILABLE
    exit_status = 3


class UsageError(ModelManagerError):
    code = USAGE_ERROR
    exit_status = 2


class Interrupted(ModelManagerError):
    code = INTERRUPTED
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
