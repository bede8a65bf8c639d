"""Audit a run folder: recompute everything manifest.json records and compare it with the folder.

Every difference is one coded problem in the report; nothing found in the run folder makes the
audit raise. Only an operating-system failure on the run folder itself (missing, not a folder,
EACCES) raises EnvironmentFailure; such a failure on one file is a problem of the report.
"""

from __future__ import annotations

import hashlib
import os
from typing import IO, NamedTuple

from model_manager.errors import (
    ModelManagerError,
    ModelSignatureMismatch,
    OutputDigestMismatch,
    OutputMissing,
    OutputUnrecorded,
    ProvenanceInvalid,
    shown,
)
from model_manager.provenance.files import MISSING_ERRNOS, NotRegular, open_folder, open_regular, os_failure, walk
from model_manager.provenance.manifest import MANIFEST, read_manifest
from model_manager.provenance.npz_read import inspect_npz
from model_manager.provenance.record import OutputRecord, RunCheck, check_output_entry, check_run

_RERUN = "restore the output, or re-run the component that wrote it"


class AuditReport(NamedTuple):
    """What ``audit_run_dir`` found; unpacks as ``checked, problems``."""

    #: outputs recorded in the manifest and checked against the folder
    checked: int
    #: every difference found, each a coded ModelManagerError (``str()`` starts with the code)
    problems: list[ModelManagerError]

    @property
    def ok(self) -> bool:
        return not self.problems


def audit_run_dir(run_dir: str | os.PathLike[str]) -> AuditReport:
    """Check ``run_dir`` against its manifest.json: the run record, every recorded output, every NPZ on disk."""
    root = open_folder(run_dir)
    try:
        return _audit(root)
    finally:
        os.close(root)


def _audit(root: int) -> AuditReport:
    try:
        doc = read_manifest(root, MANIFEST)
    except ModelManagerError as exc:
        return AuditReport(0, [exc])
    if doc is None:
        return AuditReport(0, [ProvenanceInvalid(f"the run folder has no {MANIFEST}", field="(top)",
                                                 hint="audit the folder write_manifest wrote, or re-run")])
    run = check_run(doc["run"], MANIFEST)
    problems = list(run.problems)
    records: list[OutputRecord] = []
    for path, value in sorted(doc["outputs"].items()):
        entry = check_output_entry(path, value, run.components, MANIFEST)
        if isinstance(entry, OutputRecord):
            records.append(entry)
        else:
            problems.append(entry)
    for record in records:
        problems.extend(_check_output(root, record, run))
    found, failed = walk(root, ".npz")
    for path, kind in found:
        if path not in doc["outputs"]:
            what = "an NPZ" if kind == "a regular file" else f"{kind} named like an NPZ"
            problems.append(OutputUnrecorded(f"{shown(path)} is {what} that {MANIFEST} does not record",
                                             field=path if len(path) <= 120 else None,
                                             hint="remove the stray file, or write outputs with save_output so "
                                                  "the manifest records them"))
    problems.extend(os_failure("read", path, error) for path, error in failed)
    return AuditReport(len(records), problems)


def _check_output(root: int, record: OutputRecord, run: RunCheck) -> list[ModelManagerError]:
    place = shown(record.path)
    where = {"component": record.component, "field": f"outputs[{record.path!r}]" if len(record.path) <= 100
             else "outputs"}
    try:
        fd, _ = open_regular(root, record.path.split("/"))
    except FileNotFoundError:
        return [OutputMissing(f"{place} is recorded in {MANIFEST} but not in the run folder", **where, hint=_RERUN)]
    except NotRegular as exc:
        return [OutputMissing(f"{place} is {exc.kind}, not a regular file; it was not read", **where,
                              hint="outputs are regular files in the run folder; links are never followed")]
    except OSError as exc:
        if exc.errno in MISSING_ERRNOS:
            return [OutputMissing(f"{place} is recorded in {MANIFEST} but not in the run folder", **where,
                                  hint=_RERUN)]
        return [os_failure("read", record.path, exc, **where)]
    problems: list[ModelManagerError] = []
    with os.fdopen(fd, "rb") as fh:
        try:
            digest, size = _digest(fh)
        except OSError as exc:
            return [os_failure("read", record.path, exc, **where)]
        if (digest, size) != (record.sha256, record.size):
            problems.append(OutputDigestMismatch(
                f"{place} has sha256 {digest} ({size} bytes); {MANIFEST} recorded {record.sha256} "
                f"({record.size} bytes)", **where, hint="the file was replaced or edited after the run; " + _RERUN))
        meta, issues = inspect_npz(fh, record.path, record.component)
    problems.extend(issues)
    if meta is None:
        return problems
    component, signature = meta["models_used"][0]["component"], meta["model_signature"]
    if component != record.component:
        problems.append(OutputDigestMismatch(
            f"{place} holds an output of component {shown(component)}; {MANIFEST} records it for "
            f"{shown(record.component)}", **where, hint="another output was copied over it; " + _RERUN))
    expected = run.expected.get(component)
    if expected is None and run.components is not None:
        problems.append(ProvenanceInvalid(f"{place} holds an output of component {shown(component)}, which is "
                                          "not in run.resolved_model_mapping", component=component,
                                          field="meta.models_used", hint="the output belongs to another run"))
    elif expected is not None and signature != expected.model_signature:
        problems.append(ModelSignatureMismatch(
            f"{place}: model_signature {shown(signature)} differs from {expected.model_signature}, recomputed "
            f"from {MANIFEST}'s resolved mapping", component=component, field="meta.model_signature",
            hint="the output was made by other models than this run recorded; re-run the component"))
    return problems


def _digest(fh: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := fh.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    return "sha256:" + digest.hexdigest(), size
