"""audit_run_dir recomputes what the manifest records and reports each difference as its own coded problem."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from provenance_helpers import codes, edit_manifest, record_as_is

from model_manager import ModelManager
from model_manager.errors import ModelManagerError
from model_manager.provenance import AuditReport, audit_run_dir, save_npz, save_output


def test_a_clean_run_passes(run_dir: Path) -> None:
    report = audit_run_dir(run_dir)
    assert report == AuditReport(2, []) and report.ok
    checked, problems = report
    assert (checked, problems) == (2, [])


# --- what the review found: tampering that passed -------------------------------------------------
def test_deleting_every_output(run_dir: Path) -> None:
    for npz in run_dir.glob("*.npz"):
        npz.unlink()
    report = audit_run_dir(run_dir)
    assert report.checked == 2 and codes(report.problems) == ["output_missing", "output_missing"]
    assert {p.component for p in report.problems} == {"core_clip", "core_optical_flow"}
    assert all("core_" in str(p) and "hint:" in str(p) for p in report.problems)


def test_copying_one_components_output_over_anothers(run_dir: Path) -> None:
    shutil.copyfile(run_dir / "core_clip.npz", run_dir / "core_optical_flow.npz")
    problems = audit_run_dir(run_dir).problems
    assert codes(problems) == ["output_digest_mismatch", "output_digest_mismatch"]
    assert {p.component for p in problems} == {"core_optical_flow"}
    assert any("sha256" in str(p) for p in problems) and any("'core_clip'" in str(p) for p in problems)


def test_editing_run_context(run_dir: Path) -> None:
    edit_manifest(run_dir, lambda doc: doc["run"]["run_context"].update(video_id="another-video"))
    problems = audit_run_dir(run_dir).problems
    assert codes(problems) == ["idempotency_key_mismatch", "idempotency_key_mismatch", "run_context_mismatch"]


def test_editing_the_run_id_alone(run_dir: Path) -> None:
    # The idempotency key ignores run_id by design; the run_context digest does not.
    edit_manifest(run_dir, lambda doc: doc["run"]["run_context"].update(run_id="r2"))
    assert codes(audit_run_dir(run_dir).problems) == ["run_context_mismatch"]


def test_editing_run_context_and_its_digest(run_dir: Path) -> None:
    from model_manager.provenance.signature import run_context_digest

    def edit(doc: dict[str, Any]) -> None:
        doc["run"]["run_context"]["config_hash"] = "c2"
        doc["run"]["run_context_digest"] = run_context_digest(doc["run"]["run_context"])

    edit_manifest(run_dir, edit)
    assert codes(audit_run_dir(run_dir).problems) == ["idempotency_key_mismatch", "idempotency_key_mismatch"]


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda run: run["model_signatures"].update(core_clip="sha256:" + "1" * 64), ["model_signature_mismatch"]),
    (lambda run: run["model_signatures"].pop("core_clip"), ["model_signature_mismatch"]),
    (lambda run: run["model_signatures"].update(core_ghost="sha256:" + "1" * 64), ["model_signature_mismatch"]),
    (lambda run: run["idempotency_keys"].update(core_clip="sha256:" + "1" * 64), ["idempotency_key_mismatch"]),
    (lambda run: run.update(run_context_digest=run["run_context_digest"].upper()), ["run_context_mismatch"]),
])
def test_editing_recorded_values(run_dir: Path, edit: Any, expected: list[str]) -> None:
    edit_manifest(run_dir, lambda doc: edit(doc["run"]))
    assert codes(audit_run_dir(run_dir).problems) == expected


def test_editing_the_resolved_mapping(run_dir: Path) -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["run"]["resolved_model_mapping"]["components"]["core_clip"]["image_encoder"]["precision"] = "fp32"

    edit_manifest(run_dir, edit)
    problems = audit_run_dir(run_dir).problems
    # the mapping's digest, and the recorded signature, the recorded key and the output's meta all differ
    # from what the edited mapping gives
    assert codes(problems) == ["idempotency_key_mismatch", "model_signature_mismatch", "model_signature_mismatch",
                               "provenance_invalid"]
    assert {p.component for p in problems} == {"core_clip", None}


def test_editing_the_mapping_outside_the_signature(run_dir: Path) -> None:
    # an endpoint is not part of models_used (the signature); the mapping's digest still covers it
    def edit(doc: dict[str, Any]) -> None:
        doc["run"]["resolved_model_mapping"]["components"]["core_clip"]["image_encoder"]["triton"]["http_url"] = \
            "elsewhere:8000"

    edit_manifest(run_dir, edit)
    problems = audit_run_dir(run_dir).problems
    assert codes(problems) == ["provenance_invalid"] and problems[0].field == "run.resolved_model_mapping"


def test_editing_an_output_record(run_dir: Path) -> None:
    edit_manifest(run_dir, lambda doc: doc["outputs"]["core_clip.npz"].update(size=1))
    assert codes(audit_run_dir(run_dir).problems) == ["output_digest_mismatch"]
    edit_manifest(run_dir, lambda doc: doc["outputs"]["core_clip.npz"].update(component="core_optical_flow"))
    problems = audit_run_dir(run_dir).problems
    assert codes(problems) == ["output_digest_mismatch", "output_digest_mismatch"]


@pytest.mark.parametrize("path", ["../outside.npz", "/etc/passwd.npz", "a/./b.npz", "core_clip.npy", ".x.npz"])
def test_a_recorded_path_outside_the_folder_is_not_opened(run_dir: Path, path: str) -> None:
    (run_dir.parent / "outside.npz").write_bytes((run_dir / "core_clip.npz").read_bytes())
    edit_manifest(run_dir, lambda doc: doc["outputs"].__setitem__(path, doc["outputs"]["core_clip.npz"]))
    report = audit_run_dir(run_dir)
    assert report.checked == 2 and codes(report.problems) == ["provenance_invalid"]


# --- the folder holds more, or other, than the manifest says ---------------------------------------
def test_an_npz_the_manifest_does_not_record(run_dir: Path, mm: ModelManager) -> None:
    save_npz(run_dir / "sub" / "late.npz", mm.npz_meta_for("core_clip"), x=np.zeros(1))
    problems = audit_run_dir(run_dir).problems
    assert codes(problems) == ["output_unrecorded"] and "sub/late.npz" in str(problems[0])


def test_an_output_of_other_models_recorded_by_hand(run_dir: Path, models_root: object, mapping: dict[str, Any],
                                                    run_context: dict[str, str]) -> None:
    mapping["components"]["core_clip"]["image_encoder"]["device"] = "cuda:1"
    save_npz(run_dir / "late.npz", ModelManager(run_context, mapping).npz_meta_for("core_clip"), x=np.zeros(1))
    record_as_is(run_dir, "late.npz", "core_clip")
    problems = audit_run_dir(run_dir).problems
    assert codes(problems) == ["model_signature_mismatch"] and problems[0].component == "core_clip"


def test_an_output_of_a_component_not_in_the_run(run_dir: Path, models_root: object, mapping: dict[str, Any],
                                                  run_context: dict[str, str]) -> None:
    mapping["components"]["core_new"] = mapping["components"].pop("core_clip")
    save_npz(run_dir / "new.npz", ModelManager(run_context, mapping).npz_meta_for("core_new"), x=np.zeros(1))
    record_as_is(run_dir, "new.npz", "core_clip")
    problems = audit_run_dir(run_dir).problems
    assert codes(problems) == ["output_digest_mismatch", "provenance_invalid"]


def _audit_in_child(run_dir: Path) -> list[str]:
    """Audit in a child process with a timeout: a FIFO opened for reading would hang it."""
    code = ("import sys; from model_manager.provenance import audit_run_dir; "
            "print('\\n'.join(str(p) for p in audit_run_dir(sys.argv[1]).problems))")
    out = subprocess.run([sys.executable, "-c", code, str(run_dir)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return sorted(line for line in out.stdout.splitlines() if line)


def test_fifos_are_never_opened(run_dir: Path) -> None:
    os.mkfifo(run_dir / "stray.npz")
    (run_dir / "core_clip.npz").unlink()
    os.mkfifo(run_dir / "core_clip.npz")
    lines = _audit_in_child(run_dir)
    assert [line.split(":")[0] for line in lines] == ["output_missing", "output_unrecorded"]
    assert "FIFO" in lines[0] and "FIFO" in lines[1]


def test_a_fifo_manifest_is_never_opened(run_dir: Path) -> None:
    (run_dir / "manifest.json").unlink()
    os.mkfifo(run_dir / "manifest.json")
    lines = _audit_in_child(run_dir)
    assert len(lines) == 1 and lines[0].startswith("provenance_invalid") and "FIFO" in lines[0]


def test_symbolic_links_are_not_followed_out_of_the_folder(run_dir: Path, mm: ModelManager) -> None:
    outside = run_dir.parent / "outside"
    save_output(run_dir, "sub/flow.npz", mm.npz_meta_for("core_optical_flow"), x=np.zeros(1))
    shutil.move(run_dir / "sub", outside)
    (run_dir / "sub").symlink_to(outside)  # a linked folder holding the right bytes
    shutil.move(run_dir / "core_clip.npz", outside / "clip.npz")
    (run_dir / "core_clip.npz").symlink_to(outside / "clip.npz")  # a linked file holding the right bytes
    (run_dir / "stray.npz").symlink_to(outside / "clip.npz")
    problems = audit_run_dir(run_dir).problems
    assert codes(problems) == ["output_missing", "output_missing", "output_unrecorded"]
    assert all("link" in str(p) for p in problems)


# --- hostile content: always a coded problem, never a traceback ------------------------------------
def test_a_truncated_output(run_dir: Path) -> None:
    path = run_dir / "core_clip.npz"
    path.write_bytes(path.read_bytes()[:100])
    assert codes(audit_run_dir(run_dir).problems) == ["output_digest_mismatch", "provenance_invalid"]


def _hostile(run_dir: Path, meta_text: str | None = None, **arrays: Any) -> list[str]:
    """Write ``bad.npz`` with this meta text and these arrays, record it as it is, audit."""
    if meta_text is not None:
        arrays["meta"] = np.array(meta_text)
    np.savez(run_dir / "bad.npz", **arrays)
    record_as_is(run_dir, "bad.npz", "core_clip")
    return codes(audit_run_dir(run_dir).problems)


def test_meta_with_a_list_where_a_string_belongs(run_dir: Path, mm: ModelManager) -> None:
    for key, value in [("component", ["core_clip"]), ("device", {"a": 1}), ("preprocess_preset", 3)]:
        meta = mm.npz_meta_for("core_clip")
        meta["models_used"][0][key] = value
        assert _hostile(run_dir, json.dumps(meta)) == ["provenance_invalid"]
    meta = mm.npz_meta_for("core_clip")
    meta["model_signature"] = [meta["model_signature"]]
    assert _hostile(run_dir, json.dumps(meta)) == ["model_signature_mismatch"]


@pytest.mark.parametrize("meta_text", ["[" * 100_000 + "]" * 100_000, '{"a": ' * 50_000 + "1" + "}" * 50_000,
                                       "not json", "", '"a string"', "null", "1e999999"])
def test_malformed_meta_json(run_dir: Path, meta_text: str) -> None:
    assert _hostile(run_dir, meta_text) == ["provenance_invalid"]


def test_meta_of_the_wrong_array_kind(run_dir: Path) -> None:
    assert _hostile(run_dir, meta=np.zeros(3)) == ["provenance_invalid"]
    assert _hostile(run_dir, meta=np.array(["{}", "{}"])) == ["provenance_invalid"]
    assert _hostile(run_dir, x=np.zeros(1)) == ["provenance_invalid"]  # no meta at all


def test_a_meta_over_the_size_bound(run_dir: Path) -> None:
    assert _hostile(run_dir, '"' + "x" * (300 << 10) + '"') == ["provenance_invalid"]


def test_object_arrays(run_dir: Path, mm: ModelManager) -> None:
    assert _hostile(run_dir, meta=np.array([{"models_used": []}], dtype=object)) == ["provenance_invalid"]
    meta = json.dumps(mm.npz_meta_for("core_clip"))
    assert _hostile(run_dir, meta, data=np.array([{"evil": 1}], dtype=object)) == ["output_invalid"]


def test_not_a_zip_and_an_empty_file(run_dir: Path) -> None:
    for content in (b"not a zip", b"", b"PK\x05\x06" + b"\0" * 18, b"\0" * 100_000):
        (run_dir / "bad.npz").write_bytes(content)
        record_as_is(run_dir, "bad.npz", "core_clip")
        assert codes(audit_run_dir(run_dir).problems) == ["provenance_invalid"], content[:8]


def _zip(path: Path, members: dict[str, bytes], method: int = 8) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _npy(value: Any) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, value, allow_pickle=False)
    return buf.getvalue()


def test_zip_bomb_sizes(run_dir: Path, mm: ModelManager) -> None:
    import zipfile

    meta = _npy(np.array(json.dumps(mm.npz_meta_for("core_clip"))))
    bomb = run_dir / "bad.npz"
    # a 64 MiB meta that deflates to ~64 KiB: refused from its declared size, never inflated
    _zip(bomb, {"meta.npy": meta[:128] + b"\0" * (64 << 20)})
    record_as_is(run_dir, "bad.npz", "core_clip")
    assert codes(audit_run_dir(run_dir).problems) == ["provenance_invalid"]
    # the same member declaring 100 bytes in the central directory: reading stops at the bound
    data = bytearray(bomb.read_bytes())
    central = data.rindex(b"PK\x01\x02")
    data[central + 24:central + 28] = (100).to_bytes(4, "little")
    bomb.write_bytes(bytes(data))
    record_as_is(run_dir, "bad.npz", "core_clip")
    assert codes(audit_run_dir(run_dir).problems) == ["provenance_invalid"]
    # too many members
    _zip(bomb, {"meta.npy": meta, **{f"a{i}.npy": b"" for i in range(1100)}}, zipfile.ZIP_STORED)
    record_as_is(run_dir, "bad.npz", "core_clip")
    assert codes(audit_run_dir(run_dir).problems) == ["provenance_invalid"]
    # bzip2 inflates without a bound in zipfile: refused unread
    _zip(bomb, {"meta.npy": meta}, zipfile.ZIP_BZIP2)
    record_as_is(run_dir, "bad.npz", "core_clip")
    assert codes(audit_run_dir(run_dir).problems) == ["provenance_invalid"]


def test_a_meta_whose_header_claims_a_huge_string(run_dir: Path) -> None:
    header = _npy(np.array("x"))
    forged = header.replace(b"'<U1'", b"'<U999999999999'")
    _zip(run_dir / "bad.npz", {"meta.npy": forged})
    record_as_is(run_dir, "bad.npz", "core_clip")
    assert codes(audit_run_dir(run_dir).problems) == ["provenance_invalid"]


def test_an_encrypted_member(run_dir: Path) -> None:
    path = run_dir / "core_clip.npz"
    data = bytearray(path.read_bytes())
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = -1
        while (at := data.find(sig, at + 1)) >= 0:
            data[at + flag_at] |= 1
    path.write_bytes(bytes(data))
    record_as_is(run_dir, "core_clip.npz", "core_clip")
    problems = audit_run_dir(run_dir).problems
    assert problems and set(codes(problems)) == {"provenance_invalid"}


def test_random_corruption_never_raises(run_dir: Path) -> None:
    import random

    rng = random.Random(1234)
    path = run_dir / "core_clip.npz"
    good = path.read_bytes()
    for _ in range(300):
        data = bytearray(good)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        for _ in range(rng.randint(1, 8)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        problems = audit_run_dir(run_dir).problems
        assert all(isinstance(p, ModelManagerError) and len(str(p)) < 2500 for p in problems)
        if bytes(data) != good:
            assert "output_digest_mismatch" in codes(problems)
