"""Every failure a user can meet: one stable code, one subclass, one place.

This module imports nothing from third parties; it is loaded by everything,
including the network guard and the linter, and must stay cheap.
"""

from __future__ import annotations

from typing import Final

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

#: code -> (when it is raised, what usually fixes it). docs/errors.md is built from this.
CODES: Final[dict[str, tuple[str, str]]] = {
    MODEL_MAPPING_MISSING: (
        "No mapping was given, or the component or role asked for is not in it.",
        "Pass a resolved mapping or a profile path; check the component and role names.",
    ),
    INVALID_MODEL_SPEC: (
        "The mapping breaks the contract of MAPPING.md: a missing pinned field, an unknown key, "
        "a bad value, a duplicate YAML key, a path that leaves the models root.",
        "Fix the field the message names; nothing is defaulted.",
    ),
    INVALID_RUN_CONTEXT: (
        "The run context lacks a required field, has an unknown one, or a value is not a string.",
        "Pass all six fields of MAPPING.md's run_context as strings.",
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
        "Triton refused or failed an inference request.",
        "Check the inputs' names, dtypes and shapes against the mapping.",
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
}


class ModelManagerError(Exception):
    """Base of every error the model manager raises. ``str(e)`` starts with the code."""

    code: str = "model_manager_error"

    def __init__(
        self,
        code: str | None = None,
        message: str = "",
        *,
        component: str | None = None,
        role: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        self.message = message
        self.component = component
        self.role = role
        self.field = field
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

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Keep the code and fields across pickling (multiprocessing workers).
        kwargs = dict(component=self.component, role=self.role, field=self.field, hint=self.hint)
        return (_rebuild, (type(self), self.code, self.message, kwargs))

    def to_dict(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "message": self.message,
            "component": self.component,
            "role": self.role,
            "field": self.field,
            "hint": self.hint,
        }


def _rebuild(cls: type[ModelManagerError], code: str, message: str, kwargs: dict) -> ModelManagerError:  # type: ignore[type-arg]
    err = cls.__new__(cls)
    ModelManagerError.__init__(err, code, message, **kwargs)
    return err


def _subclass(name: str, code: str) -> type[ModelManagerError]:
    doc = CODES[code][0]

    def __init__(self: ModelManagerError, message: str = "", **kwargs: str | None) -> None:
        ModelManagerError.__init__(self, code, message, **kwargs)

    return type(name, (ModelManagerError,), {"code": code, "__doc__": doc, "__init__": __init__})


ModelMappingMissing = _subclass("ModelMappingMissing", MODEL_MAPPING_MISSING)
InvalidModelSpec = _subclass("InvalidModelSpec", INVALID_MODEL_SPEC)
InvalidRunContext = _subclass("InvalidRunContext", INVALID_RUN_CONTEXT)
ModelsRootMissing = _subclass("ModelsRootMissing", MODELS_ROOT_MISSING)
ModelArtifactMissing = _subclass("ModelArtifactMissing", MODEL_ARTIFACT_MISSING)
WeightsDigestMismatch = _subclass("WeightsDigestMismatch", WEIGHTS_DIGEST_MISMATCH)
TritonUnavailable = _subclass("TritonUnavailable", TRITON_UNAVAILABLE)
TritonModelNotFound = _subclass("TritonModelNotFound", TRITON_MODEL_NOT_FOUND)
TritonInferFailed = _subclass("TritonInferFailed", TRITON_INFER_FAILED)
OnnxRuntimeMissing = _subclass("OnnxRuntimeMissing", ONNXRUNTIME_MISSING)
ProvenanceInvalid = _subclass("ProvenanceInvalid", PROVENANCE_INVALID)
ModelSignatureMismatch = _subclass("ModelSignatureMismatch", MODEL_SIGNATURE_MISMATCH)
NetworkAccessForbidden = _subclass("NetworkAccessForbidden", NETWORK_ACCESS_FORBIDDEN)
LintConfigInvalid = _subclass("LintConfigInvalid", LINT_CONFIG_INVALID)
LicenseInventoryInvalid = _subclass("LicenseInventoryInvalid", LICENSE_INVENTORY_INVALID)
LintFixUnavailable = _subclass("LintFixUnavailable", LINT_FIX_UNAVAILABLE)

#: code -> subclass; ``error_for(code, ...)`` builds the right one.
BY_CODE: Final[dict[str, type[ModelManagerError]]] = {
    cls.code: cls
    for cls in (
        ModelMappingMissing, InvalidModelSpec, InvalidRunContext, ModelsRootMissing,
        ModelArtifactMissing, WeightsDigestMismatch, TritonUnavailable, TritonModelNotFound,
        TritonInferFailed, OnnxRuntimeMissing, ProvenanceInvalid, ModelSignatureMismatch,
        NetworkAccessForbidden, LintConfigInvalid, LicenseInventoryInvalid, LintFixUnavailable,
    )
}


def error_for(code: str, message: str, **kwargs: str | None) -> ModelManagerError:
    return BY_CODE[code](message, **kwargs)
