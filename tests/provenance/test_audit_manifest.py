"""An unreadable or hostile manifest is a problem in the report; only the run folder's own OS failure raises."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.privileges import drop_file_overrides
from provenance_helpers import codes

from model_manager.errors import ModelManagerError
from model_manager.provenance import AuditReport, audit_run_dir


@pytest.mark.parametrize("content", [
    b"", b"{", b"{}", b"[1]", b'{"run": {}}', b"\xff\xfe", b'"\\udc80"', b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 40 + b"1" + b"}" * 40, b'{"manifest_version": 2, "run": {}, "outputs": {}}',
    b'{"manifest_version": 1, "run": {}, "outputs": []}', b'{"manifest_version": true, "run": {}, "outputs": {}}',
])
def test_an_unreadable_manifest_is_one_problem(run_dir: Path, content: bytes) -> None:
    (run_dir / "manifest.json").write_bytes(content)
    report = audit_run_dir(run_dir)
    assert report.checked == 0 and codes(report.problems) == ["provenance_invalid"]
    assert len(str(report.problems[0])) < 800


def test_no_manifest(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    report = audit_run_dir(tmp_path / "run")
    assert report == AuditReport(0, report.problems) and codes(report.problems) == ["provenance_invalid"]
    assert "no manifest.json" in str(report.problems[0])


def test_a_manifest_over_the_size_bound(run_dir: Path) -> None:
    with open(run_dir / "manifest.json", "r+b") as fh:
        fh.truncate(65 << 20)
    problems = audit_run_dir(run_dir).problems
    assert codes(problems) == ["provenance_invalid"] and "larger than" in str(problems[0])


@pytest.mark.parametrize("edit", [
    lambda doc: doc.update(run=[]), lambda doc: doc["run"].pop("resolved_model_mapping"),
    lambda doc: doc["run"].update(resolved_model_mapping={"schema_version": 1, "components": {"c": {}}}),
    lambda doc: doc["run"].update(run_context={"video_id": "v"}), lambda doc: doc["run"].update(extra=1),
    lambda doc: doc["run"].update(model_signatures=["x"]), lambda doc: doc["run"].update(idempotency_keys={"a": 1}),
    lambda doc: doc["outputs"].update({"x.npz": {"component": "core_clip", "sha256": "md5:1", "size": 1}}),
    lambda doc: doc["outputs"].update({"x.npz": {"component": "core_clip", "sha256": "sha256:" + "0" * 64,
                                                 "size": True}}),
    lambda doc: doc["outputs"].update({"x.npz": []}),
])
def test_a_malformed_run_section_is_reported_not_raised(run_dir: Path, edit: Any) -> None:
    path = run_dir / "manifest.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    problems = audit_run_dir(run_dir).problems
    assert problems and all(isinstance(p, ModelManagerError) for p in problems)


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*at, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*at, index))


HOSTILE: list[Any] = [None, True, -1, 1e308, "", "x" * 200_000, "\udc80", [], {}, [[[[[[[[]]]]]]]],
                      {"a": {"b": {"c": {"d": {}}}}}, ["core_clip"], {"core_clip": ["x"]}]


def test_any_value_anywhere_in_the_manifest_is_a_coded_problem(run_dir: Path) -> None:
    path = run_dir / "manifest.json"
    good = json.loads(path.read_text())
    rng = random.Random(7)
    cases = [(at, value) for at in _paths(good) if at for value in HOSTILE]
    for at, value in rng.sample(cases, 300):
        doc = json.loads(json.dumps(good))
        parent = doc
        for key in at[:-1]:
            parent = parent[key]
        if parent[at[-1]] == value:
            continue
        parent[at[-1]] = value
        path.write_text(json.dumps(doc))
        problems = audit_run_dir(run_dir).problems
        assert problems, (at, value)
        for problem in problems:
            assert isinstance(problem, ModelManagerError) and len(str(problem)) < 2500, (at, value)
            str(problem).encode("utf-8")  # printable by the command line whatever was in the file


def test_odd_file_names_in_the_folder(run_dir: Path) -> None:
    os.close(os.open(os.fsencode(run_dir) + b"/\xff\n" + b"x" * 200 + b".npz", os.O_CREAT | os.O_WRONLY))
    problems = audit_run_dir(run_dir).problems
    assert codes(problems) == ["output_unrecorded"]
    assert len(str(problems[0])) < 600 and "\n" not in str(problems[0])
    str(problems[0]).encode("utf-8")


# --- the environment -------------------------------------------------------------------------------
def test_a_missing_run_folder_or_a_file_raises_environment_failure(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for path in (tmp_path / "nope", tmp_path / "file"):
        with pytest.raises(ModelManagerError) as info:
            audit_run_dir(path)
        assert info.value.code == "environment_failure"


def _audit_unprivileged(run_dir: Path) -> str:
    code = ("import sys\nfrom model_manager.provenance import audit_run_dir\n"
            "try:\n    r = audit_run_dir(sys.argv[1])\n    print('report', r.checked, *sorted(p.code for p in "
            "r.problems))\nexcept Exception as e:\n    print('raised', getattr(e, 'code', repr(e)))\n")
    out = subprocess.run([sys.executable, "-c", code, str(run_dir)], capture_output=True, text=True, timeout=30,
                         preexec_fn=drop_file_overrides if os.geteuid() == 0 else None)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_permission_denied(run_dir: Path) -> None:
    (run_dir / "core_clip.npz").chmod(0)
    assert _audit_unprivileged(run_dir) == "report 2 environment_failure"
    (run_dir / "core_clip.npz").chmod(0o644)
    run_dir.chmod(0)
    try:
        assert _audit_unprivileged(run_dir) == "raised environment_failure"
    finally:
        run_dir.chmod(0o755)
