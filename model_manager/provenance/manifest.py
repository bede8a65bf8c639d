"""manifest.json: written once per run, then updated by every writer of the run under one lock.

``write_manifest`` records the run (``mm.run_record()``); ``save_output`` writes an NPZ and records
it. Each change of the manifest is a read-modify-write under ``flock`` on ``.manifest.lock`` in the
run folder, finished by the atomic replace of ``atomic``: several processes (a Visual and an
Audio worker) can save into one run folder and no record is lost.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from model_manager.errors import (
    ModelManagerError,
    ModelMappingMissing,
    ModelSignatureMismatch,
    OutputInvalid,
    ProvenanceInvalid,
    RunContextMismatch,
    shown,
)
from model_manager.provenance.atomic import atomic_write_bytes, commit, make_folders, remove_quietly
from model_manager.provenance.files import NotRegular, open_folder, open_regular, os_failure, read_all
from model_manager.provenance.npz import file_digest, write_npz_temp
from model_manager.provenance.npz_read import check_meta
from model_manager.provenance.record import (
    MANIFEST_VERSION,
    OutputRecord,
    check_manifest_shape,
    check_run,
    output_parts,
)
from model_manager.provenance.signature import encodable

MANIFEST = "manifest.json"
LOCK = ".manifest.lock"
#: the largest manifest.json read back (a few hundred thousand outputs)
MAX_MANIFEST_BYTES = 64 << 20
#: the deepest JSON nesting a manifest may have; a real one is under 12 levels deep
MAX_JSON_DEPTH = 32
_SAME_RUN = "every writer of a run passes the same mm.run_record(); start a new run folder for a new run"


def write_manifest(run_dir: str | os.PathLike[str], record: dict[str, Any]) -> Path:
    """Record the run (``mm.run_record()``) in ``run_dir/manifest.json``; returns the manifest's path.

    Idempotent: a second writer of the same run (same record) changes nothing and keeps the
    outputs already recorded. A different record raises RunContextMismatch (another run_context)
    or ModelSignatureMismatch (other models); a record that is not consistent in itself raises
    the problem ``audit_run_dir`` would report for it.
    """
    folder = Path(run_dir)
    try:
        record = json.loads(json.dumps(record, allow_nan=False))  # plain JSON, exactly as it reads back
    except (TypeError, ValueError, RecursionError) as exc:
        raise ProvenanceInvalid(f"the run record is not JSON data ({shown(str(exc))})", field="run",
                                hint="pass mm.run_record()") from None
    if not encodable(record):
        raise ProvenanceInvalid("the run record holds a string that is not valid Unicode", field="run",
                                hint="pass mm.run_record()")
    problems = check_run(record, "the run record").problems
    if problems:
        raise problems[0]
    make_folders(folder)
    with run_lock(folder):
        existing = read_manifest_at(folder)
        if existing is None:
            doc = {"manifest_version": MANIFEST_VERSION, "run": record, "outputs": {}}
            atomic_write_bytes(folder / MANIFEST, dump(doc))
        elif existing["run"] != record:
            raise _other_run(folder, existing["run"], record)
    return folder / MANIFEST


def save_output(run_dir: str | os.PathLike[str], name: str, meta: dict[str, Any], /, **arrays: Any) -> OutputRecord:
    """Write ``run_dir/name`` (a relative POSIX path ending in ``.npz``) like ``save_npz`` and record it.

    The run must be recorded first (``write_manifest``) and ``meta`` must be one of its components'
    (``mm.npz_meta_for(component)``, same signature as the manifest's). The NPZ is written and
    fsynced under a temporary name first; then, under the run's lock, it replaces ``name`` and the
    manifest records its path, component, sha256 and size. Saving ``name`` again replaces the file
    and its record.
    """
    folder = Path(run_dir)
    parts = output_parts(name)
    if parts is None:
        raise OutputInvalid(f"output name {shown(name)} is not a relative path of plain names ending in .npz",
                            field="name", hint="name outputs like 'core_clip.npz' or 'visual/core_clip.npz'; no "
                                               "'..', no leading '/' or '.'")
    check_meta(meta, name, writing=True)
    component = meta["models_used"][0]["component"]
    _check_against_run(folder, name, component, meta["model_signature"])
    final = folder.joinpath(*parts)
    tmp = write_npz_temp(final, meta, arrays)
    try:
        digest, size = file_digest(tmp)
        record = OutputRecord(name, component, digest, size)
        with run_lock(folder):
            doc = read_manifest_at(folder)
            if doc is None:
                raise _no_manifest(folder)
            commit(tmp, final)
            doc["outputs"][name] = record.as_json()
            atomic_write_bytes(folder / MANIFEST, dump(doc))
    except BaseException:
        remove_quietly(tmp)  # already gone once committed
        raise
    return record


def _check_against_run(folder: Path, name: str, component: str, signature: str) -> None:
    # The run section never changes once written, so this read needs no lock.
    doc = read_manifest_at(folder)
    if doc is None:
        raise _no_manifest(folder)
    check = check_run(doc["run"], str(folder / MANIFEST))
    if check.problems:
        raise check.problems[0]
    expected = check.expected.get(component)
    if expected is None:
        raise ModelMappingMissing(f"output {shown(name)} is of a component the run's mapping does not have",
                                  component=component, field="meta.models_used",
                                  hint=f"the run's components: {shown(sorted(check.expected))}")
    if expected.model_signature != signature:
        raise ModelSignatureMismatch(f"output {shown(name)} was made by other models than the run recorded: "
                                     f"{shown(signature)}, not {expected.model_signature}",
                                     component=component, field="meta.model_signature",
                                     hint="use the meta of the run's own ModelManager: mm.npz_meta_for(component)")


@contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the run folder's lock file; the kernel drops it if the holder dies."""
    try:
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise os_failure("open the lock file", folder / LOCK, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_manifest_at(folder: Path) -> dict[str, Any] | None:
    if not folder.is_dir():
        return None
    dir_fd = open_folder(folder)
    try:
        return read_manifest(dir_fd, str(folder / MANIFEST))
    finally:
        os.close(dir_fd)


def read_manifest(dir_fd: int, where: str) -> dict[str, Any] | None:
    """manifest.json under ``dir_fd`` with its top level checked; None when there is none.

    Raises ProvenanceInvalid (not a regular file, too large, not JSON, too deep, wrong shape) or
    EnvironmentFailure (the system failed to read it).
    """
    place = shown(where)
    try:
        fd, _ = open_regular(dir_fd, [MANIFEST])
    except FileNotFoundError:
        return None
    except NotRegular as exc:
        raise ProvenanceInvalid(f"{place} is {exc.kind}, not a regular file", field="(top)",
                                hint="manifest.json is a regular file written by write_manifest") from None
    except OSError as exc:
        raise os_failure("read", where, exc) from None
    try:
        raw = read_all(fd, MAX_MANIFEST_BYTES)
    except OSError as exc:
        raise os_failure("read", where, exc) from None
    finally:
        os.close(fd)
    if raw is None:
        raise ProvenanceInvalid(f"{place} is larger than {MAX_MANIFEST_BYTES} bytes", field="(top)",
                                hint="a manifest holds one run; restore the one the run wrote")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ProvenanceInvalid(f"{place} is not JSON ({shown(str(exc))})", field="(top)",
                                hint="restore the manifest the run wrote, or re-run") from None
    if _depth_over(doc, MAX_JSON_DEPTH):
        raise ProvenanceInvalid(f"{place} nests deeper than {MAX_JSON_DEPTH} levels", field="(top)",
                                hint="restore the manifest the run wrote, or re-run")
    if not encodable(doc):
        raise ProvenanceInvalid(f"{place} holds a string that is not valid Unicode (a lone surrogate)",
                                field="(top)", hint="restore the manifest the run wrote, or re-run")
    problem = check_manifest_shape(doc, place)
    if problem is not None:
        raise problem
    return doc


def _depth_over(value: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def dump(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _no_manifest(folder: Path) -> ProvenanceInvalid:
    return ProvenanceInvalid(f"{shown(str(folder))} has no {MANIFEST}", field="(top)",
                             hint="record the run first: write_manifest(run_dir, mm.run_record())")


def _other_run(folder: Path, recorded: dict[str, Any], record: dict[str, Any]) -> ModelManagerError:
    where = shown(str(folder / MANIFEST))
    if recorded.get("run_context") != record.get("run_context"):
        return RunContextMismatch(f"{where} records run_context {shown(recorded.get('run_context'))}, not this "
                                  f"record's {shown(record.get('run_context'))}", field="run.run_context",
                                  hint=_SAME_RUN)
    return ModelSignatureMismatch(f"{where} records another resolved mapping (signatures "
                                  f"{shown(recorded.get('model_signatures'))}) than this record "
                                  f"({shown(record.get('model_signatures'))})", field="run.resolved_model_mapping",
                                  hint=_SAME_RUN)
