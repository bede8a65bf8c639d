"""What manifest.json holds, and how each recorded value is recomputed from the rest.

The manifest is plain JSON::

    {"manifest_version": 1,
     "run": {"run_context": {...}, "run_context_digest": "sha256:...",
             "resolved_model_mapping": {...}, "resolved_model_mapping_digest": "sha256:...",
             "model_signatures": {C: "sha256:..."},
             "idempotency_keys": {C: "sha256:..."}},
     "outputs": {"<path relative to the run folder>": {"component": C, "sha256": "sha256:...", "size": N}}}

``run`` is built by ``ModelManager.run_record()``; ``outputs`` by ``save_output``. Nothing here
trusts its input: every check reports a coded problem instead of raising.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from model_manager.errors import (
    IdempotencyKeyMismatch,
    ModelManagerError,
    ModelSignatureMismatch,
    ProvenanceInvalid,
    RunContextMismatch,
    shown,
)
from model_manager.provenance.signature import (
    idempotency_key,
    json_digest,
    model_signature,
    models_used,
    run_context_digest,
)

MANIFEST_VERSION = 1
TOP_KEYS = ("manifest_version", "run", "outputs")
RUN_KEYS = ("run_context", "run_context_digest", "resolved_model_mapping", "resolved_model_mapping_digest",
            "model_signatures", "idempotency_keys")
OUTPUT_KEYS = ("component", "sha256", "size")
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
MAX_OUTPUT_PATH = 1024
_EDITED = "the manifest was edited after the run; restore it or re-run"
_HINT = "write the manifest with model_manager.provenance.write_manifest(run_dir, mm.run_record())"


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One output as manifest.json records it: ``path`` is POSIX and relative to the run folder."""

    path: str
    component: str
    sha256: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"component": self.component, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True, slots=True)
class Expected:
    """A component's signature and models_used, recomputed from the recorded mapping."""

    model_signature: str
    models_used: list[dict[str, Any]]


@dataclass(slots=True)
class RunCheck:
    #: the mapping's components, or None when the mapping could not be read
    components: set[str] | None = None
    expected: dict[str, Expected] = field(default_factory=dict)
    problems: list[ModelManagerError] = field(default_factory=list)


def check_manifest_shape(doc: object, where: str) -> ProvenanceInvalid | None:
    """The top level: exactly manifest_version 1, a run object and an outputs object."""
    if not isinstance(doc, dict):
        return ProvenanceInvalid(f"{where} holds {type(doc).__name__}, not an object", field="(top)", hint=_HINT)
    keys = sorted(map(str, doc))
    if keys != sorted(TOP_KEYS):
        return ProvenanceInvalid(f"{where} has keys {shown(keys)}; a manifest has exactly {list(TOP_KEYS)}",
                                 field="(top)", hint=_HINT)
    version = doc["manifest_version"]
    if type(version) is not int or version != MANIFEST_VERSION:
        return ProvenanceInvalid(f"{where}: manifest_version {shown(version)} is not {MANIFEST_VERSION}",
                                 field="manifest_version", hint="audit it with the model manager that wrote it")
    if not isinstance(doc["outputs"], dict):
        return ProvenanceInvalid(f"{where}: outputs is {type(doc['outputs']).__name__}, not an object",
                                 field="outputs", hint=_HINT)
    return None


def check_run(run: object, where: str) -> RunCheck:
    """Recompute both digests, every model signature and every idempotency key of a ``run`` section.

    Returns the expected signature per component (for checking outputs) and one problem per difference.
    """
    from model_manager.mapping.loader import parse_mapping, parse_run_context
    from model_manager.mapping.resolve import unverified_specs

    out = RunCheck()

    def invalid(key: str, message: str, **where_: str | None) -> None:
        out.problems.append(ProvenanceInvalid(f"{where}: run.{key} {message}", field=f"run.{key}", hint=_HINT,
                                              **where_))

    if not isinstance(run, dict):
        out.problems.append(ProvenanceInvalid(f"{where}: run is {type(run).__name__}, not an object", field="run",
                                              hint=_HINT))
        return out
    for key in RUN_KEYS:
        if key not in run:
            invalid(key, "is missing")
    unknown = sorted(str(k) for k in run if k not in RUN_KEYS)
    if unknown:
        invalid(unknown[0][:100], f"is not a run field (unknown keys {shown(unknown)})")

    raw_context = run.get("run_context")
    context: dict[str, Any] | None = None
    if isinstance(raw_context, dict):
        try:
            context = parse_run_context(raw_context).model_dump()
        except ModelManagerError as exc:
            invalid("run_context", f"is not a run context: {exc.message}")
    elif "run_context" in run:
        invalid("run_context", f"is {type(raw_context).__name__}, not an object")
    if isinstance(raw_context, dict) and "run_context_digest" in run:
        recorded, actual = run["run_context_digest"], run_context_digest(raw_context)
        if recorded != actual:
            out.problems.append(RunContextMismatch(
                f"{where}: run.run_context hashes to {actual}, not to the recorded run.run_context_digest "
                f"{shown(recorded)}", field="run.run_context", hint=_EDITED))

    if "resolved_model_mapping" in run and "resolved_model_mapping_digest" in run:
        recorded, actual = run["resolved_model_mapping_digest"], json_digest(run["resolved_model_mapping"])
        if recorded != actual:
            out.problems.append(ProvenanceInvalid(
                f"{where}: run.resolved_model_mapping hashes to {actual}, not to the recorded "
                f"run.resolved_model_mapping_digest {shown(recorded)}", field="run.resolved_model_mapping",
                hint=_EDITED))
    if "resolved_model_mapping" in run:
        try:
            specs = unverified_specs(parse_mapping(run["resolved_model_mapping"], source=where))
        except ModelManagerError as exc:
            invalid("resolved_model_mapping", f"is not a valid mapping: {exc.message}", component=exc.component,
                    role=exc.role)
        else:
            out.components = set(specs)
            for component, roles in specs.items():
                used = models_used(roles.values())
                out.expected[component] = Expected(model_signature(used), used)

    signatures = _string_map(run, "model_signatures", invalid)
    if signatures is not None and out.components is not None:
        recomputed = {c: e.model_signature for c, e in out.expected.items()}
        _compare(signatures, recomputed, ModelSignatureMismatch, "run.model_signatures", where, out.problems)
    keys = _string_map(run, "idempotency_keys", invalid)
    if keys is not None and out.components is not None and context is not None:
        recomputed = {c: idempotency_key(context, c, e.model_signature) for c, e in out.expected.items()}
        _compare(keys, recomputed, IdempotencyKeyMismatch, "run.idempotency_keys", where, out.problems)
    return out


def _string_map(run: dict[str, Any], key: str, invalid: Callable[..., None]) -> dict[str, Any] | None:
    value = run.get(key)
    if key not in run:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        invalid(key, "must map component names to sha256 strings")
        return None
    return value


def _compare(recorded: dict[str, Any], recomputed: dict[str, str], error: type[ModelManagerError], name: str,
             where: str, problems: list[ModelManagerError]) -> None:
    for component, want in recomputed.items():
        got = recorded.get(component)
        if got is None:
            problems.append(error(f"{where}: {name} records nothing for the component; recomputed {want}",
                                  component=component, field=name, hint=_EDITED))
        elif got != want:
            problems.append(error(f"{where}: {name} records {shown(got)}; recomputed from the manifest: {want}",
                                  component=component, field=name, hint=_EDITED))
    for component in sorted(set(recorded) - set(recomputed)):
        problems.append(error(f"{where}: {name} records {shown(component)}, a component that is not in "
                              "run.resolved_model_mapping", component=component, field=name, hint=_EDITED))


def output_parts(path: object) -> tuple[str, ...] | None:
    """The components of a valid output path, or None.

    Valid: a relative POSIX path of printable names, no ``.``/``..``/empty parts, no part starting
    with ``.`` (those are the writers' temporary and lock files), ending in ``.npz``.
    """
    if not isinstance(path, str) or not 0 < len(path) <= MAX_OUTPUT_PATH or not path.isprintable():
        return None
    parts = tuple(path.split("/"))
    if any(not p or p.startswith(".") or len(p.encode("utf-8", "surrogatepass")) > 255 for p in parts):
        return None
    if not parts[-1].endswith(".npz") or parts[-1] == ".npz":
        return None
    return parts


def check_output_entry(path: str, value: object, components: set[str] | None,
                       where: str) -> OutputRecord | ProvenanceInvalid:
    """One ``outputs`` entry of the manifest as an OutputRecord, or the problem with it."""
    field_name = f"outputs[{path!r}]" if len(path) <= 100 else "outputs"

    def invalid(message: str) -> ProvenanceInvalid:
        return ProvenanceInvalid(f"{where}: output {shown(path)} {message}", field=field_name, hint=_HINT)

    if output_parts(path) is None:
        return invalid("is not a relative path of plain names ending in .npz inside the run folder")
    if not isinstance(value, dict) or sorted(map(str, value)) != sorted(OUTPUT_KEYS):
        return invalid(f"must record exactly {list(OUTPUT_KEYS)}")
    component, digest, size = value["component"], value["sha256"], value["size"]
    if not isinstance(component, str) or not isinstance(digest, str) or not SHA256.fullmatch(digest):
        return invalid("must record a component name and a sha256:<64 hex> digest")
    if type(size) is not int or size < 0:
        return invalid(f"records size {shown(size)}, not a byte count")
    if components is not None and component not in components:
        return ProvenanceInvalid(f"{where}: output {shown(path)} is recorded for a component that is not in "
                                 "run.resolved_model_mapping", component=component, field=field_name, hint=_EDITED)
    return OutputRecord(path, component, digest, size)
