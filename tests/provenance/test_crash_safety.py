"""Every write is unique temporary file, fsync, os.replace, folder fsync: tested with real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pytest
from provenance_helpers import codes

from model_manager import ModelManager
from model_manager.provenance import audit_run_dir, read_npz_meta, save_npz, write_manifest
from model_manager.provenance.atomic import atomic_write

CHILD = Path(__file__).with_name("child.py")


def _spawn(tmp_path: Path, mode: str, args: dict[str, Any], tag: str) -> subprocess.Popen[bytes]:
    path = tmp_path / f"args-{tag}.json"
    path.write_text(json.dumps(args))
    return subprocess.Popen([sys.executable, str(CHILD), mode, str(path)], stderr=subprocess.PIPE)


def test_sigkill_mid_write_leaves_the_old_output_whole(tmp_path: Path, mm: ModelManager) -> None:
    folder = tmp_path / "out"
    meta = mm.npz_meta_for("core_clip")
    target = save_npz(folder / "o.npz", meta, x=np.arange(10))
    good = target.read_bytes()
    child = _spawn(tmp_path, "big_npz", {"path": str(target), "meta": meta, "mb": 48}, "big")
    deadline = time.monotonic() + 60
    while True:
        if sum(p.stat().st_size for p in folder.iterdir()) > len(good) + (256 << 10):
            break  # the new NPZ is being written, wherever it is written
        assert child.poll() is None, "the writer finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert target.read_bytes() == good  # the old output, whole
    assert read_npz_meta(target) == meta
    leftovers = [p.name for p in folder.iterdir() if p.name != "o.npz"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".o.npz.") and leftovers[0].endswith(".tmp")


def test_a_failed_write_removes_its_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def write(fh: BinaryIO) -> None:
        fh.write(b"half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, write)
    assert os.listdir(tmp_path) == ["f.bin"] and target.read_bytes() == b"old"


def test_an_os_failure_mid_write_is_an_environment_failure(tmp_path: Path) -> None:
    def write(fh: BinaryIO) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(Exception) as info:
        atomic_write(tmp_path / "f.bin", write)
    assert getattr(info.value, "code", None) == "environment_failure" and "ENOSPC" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_four_processes_writing_manifests_at_once(tmp_path: Path, mm: ModelManager) -> None:
    record = mm.run_record()
    folders = [str(tmp_path / f"run{i}") for i in range(50)]
    go = tmp_path / "go"
    children = [_spawn(tmp_path, "write_manifest", {"folders": folders, "record": record, "go": str(go)}, str(i))
                for i in range(4)]
    go.touch()
    for child in children:
        _, err = child.communicate(timeout=60)
        assert child.returncode == 0, err.decode()
    for folder in folders:
        doc = json.loads((Path(folder) / "manifest.json").read_text())
        assert doc == {"manifest_version": 1, "run": record, "outputs": {}}
        assert sorted(os.listdir(folder)) == [".manifest.lock", "manifest.json"]


def test_two_workers_each_saving_their_component_lose_no_record(tmp_path: Path, mm: ModelManager) -> None:
    run_dir = tmp_path / "run"
    write_manifest(run_dir, mm.run_record())
    go = tmp_path / "go"
    jobs = [("visual", "core_clip"), ("visual2", "core_clip"), ("flow", "core_optical_flow"),
            ("flow2", "core_optical_flow")]
    children = [_spawn(tmp_path, "save_output", {
        "run_dir": str(run_dir), "meta": mm.npz_meta_for(component), "prefix": f"{worker}/", "count": 12,
        "name": None, "size": 3, "seed": n, "go": str(go)}, worker) for n, (worker, component) in enumerate(jobs)]
    go.touch()
    for child in children:
        _, err = child.communicate(timeout=60)
        assert child.returncode == 0, err.decode()
    outputs = json.loads((run_dir / "manifest.json").read_text())["outputs"]
    assert sorted(outputs) == sorted(f"{w}/{i}.npz" for w, _ in jobs for i in range(12))
    assert {outputs[f"{w}/0.npz"]["component"] for w, _ in jobs} == {"core_clip", "core_optical_flow"}
    report = audit_run_dir(run_dir)
    assert report == (48, [])


def test_racing_writers_of_one_output_leave_its_record_true(tmp_path: Path, mm: ModelManager) -> None:
    """The replace of the file and the update of its record happen under one lock: the last writer wins both."""
    run_dir = tmp_path / "run"
    write_manifest(run_dir, mm.run_record())
    go = tmp_path / "go"
    children = [_spawn(tmp_path, "save_output", {
        "run_dir": str(run_dir), "meta": mm.npz_meta_for("core_clip"), "name": "shared.npz", "count": 15,
        "prefix": "", "size": 100 * n, "seed": n, "go": str(go)}, str(n)) for n in range(4)]
    go.touch()
    for child in children:
        _, err = child.communicate(timeout=60)
        assert child.returncode == 0, err.decode()
    checked, problems = audit_run_dir(run_dir)
    assert (checked, codes(problems)) == (1, [])
    assert sorted(os.listdir(run_dir)) == [".manifest.lock", "manifest.json", "shared.npz"]
