"""The stable error codes and what each means: the one table that errors.py, the command line and
docs/errors.md (``docs/generate.py``) are built from. Standard library only."""

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
DEVICE_UNAVAILABLE: Final = "device_unavailable"
MODEL_ARTIFACT_INVALID: Final = "model_artifact_invalid"
TORCH_MISSING: Final = "torch_missing"
INFERENCE_FAILED: Final = "inference_failed"

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
    DEVICE_UNAVAILABLE: (
        "An in-process model asked for a device its runtime cannot use (no GPU, no such GPU, CUDA libraries "
        "that do not load, a CPU-only onnxruntime): the runtime would have fallen back to another device.",
        "Run on a machine with the device, install the runtime that drives it (onnxruntime-gpu and its CUDA "
        "libraries), or change the entry's device; nothing is moved to another device.",
    ),
    MODEL_ARTIFACT_INVALID: (
        "A verified artifact cannot be loaded as the model its engine expects: an empty, truncated, corrupt "
        "or foreign file, or a torch pickle that holds more than tensors.",
        "Re-export the model (onnx.save, safetensors, torch.save of a plain state dict) and pin its new digest.",
    ),
    TORCH_MISSING: (
        "A torch weights file (.pt, .pth, .bin) must be loaded but torch is not installed.",
        "Install torch in the worker's environment, or ship the weights as .safetensors (they load without "
        "torch).",
    ),
    INFERENCE_FAILED: (
        "An in-process model refused or failed an inference: inputs that do not match its signature "
        "(names, element types, ranks, fixed sizes), or an error inside the runtime.",
        "Feed the inputs the handle lists (handle.inputs); the message names each mismatch.",
    ),
}
