"""Every way the command line can fail: one line starting with its code, the documented exit status,
never a traceback. 1: a check failed; 2: usage; 3: the environment; 130: interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.privileges import drop_file_overrides

from model_manager.cli import main
from model_manager.version import version

EXE = [sys.executable, "-m", "model_manager.cli"]


def run(*argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *argv], capture_output=True, text=True, timeout=60, **kwargs)


def assert_one_line(stream: str, code: str) -> None:
    assert "Traceback" not in stream, stream
    lines = stream.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{code}: "), stream


@pytest.fixture
def profile(tmp_path: Path, mapping: dict[str, Any], models_root: Path) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(mapping))
    return path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"model-manager {version()}"


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["resolve"], ["signature", "--profile", "p"],
                                  ["resolve", "--profile", "p", "--role", "r"], ["verify", "--format", "xml"],
                                  ["digest"]])
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_line(captured.err, "usage_error")


def test_a_usage_error_asked_for_as_json_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["exit"] == 2 and doc["error"]["code"] == "usage_error"


def test_an_empty_component_is_not_every_component(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", "--profile", str(profile), "--component", ""]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_line(captured.err, "model_mapping_missing")


def test_a_huge_component_name_is_echoed_short(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["signature", "--profile", str(profile), "--component", "c" * 1_000_000]) == 1
    err = capsys.readouterr().err
    assert_one_line(err, "model_mapping_missing")
    assert len(err) < 3000


@pytest.mark.parametrize("target", ["/dev/zero", "folder"])
def test_a_profile_that_is_not_a_file_fails_fast(tmp_path: Path, target: str) -> None:
    result = run("verify", "--profile", str(tmp_path) if target == "folder" else target)
    assert result.returncode == 1
    assert_one_line(result.stderr, "model_mapping_missing")


def test_a_symlink_loop_is_an_environment_failure(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for argv in (["digest", str(loop)], ["verify", "--profile", str(loop)]):
        result = run(*argv)
        assert result.returncode == 3, result
        combined = result.stdout + result.stderr
        assert "environment_failure" in combined and "ELOOP" in combined and "Traceback" not in combined


def test_a_symlink_loop_inside_a_model_folder_is_an_environment_failure(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w")
    (model / "loop").symlink_to(model / "loop")
    result = run("digest", str(model))
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert result.stdout.startswith("environment_failure") or result.stderr.startswith("environment_failure")


def test_an_unreadable_file_is_an_environment_failure(tmp_path: Path) -> None:
    """As root the test drops the capabilities that bypass file modes, so the EACCES is the kernel's."""
    secret = tmp_path / "weights.bin"
    secret.write_bytes(b"w" * 100)
    os.chown(secret, 65534, 65534)
    secret.chmod(0o600)
    result = run("digest", str(secret), preexec_fn=drop_file_overrides)
    assert result.returncode == 3, result
    assert "environment_failure" in result.stdout and "EACCES" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_closed_pipe_on_stdout_is_one_line_on_stderr(profile: Path) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written, as after `| head -0`
    try:
        proc = subprocess.run([*EXE, "resolve", "--profile", str(profile)], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write)
    assert proc.returncode == 3
    assert_one_line(proc.stderr, "environment_failure")
    assert "EPIPE" in proc.stderr


def test_a_full_disk_on_stdout_is_one_line_on_stderr(profile: Path) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*EXE, "resolve", "--profile", str(profile), "--format", "json"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 3
    assert_one_line(proc.stderr, "environment_failure")
    assert "ENOSPC" in proc.stderr


def test_ctrl_c_is_one_line_and_exit_130(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        fh.truncate(64 << 30)  # sparse: hashing it takes far longer than the test waits
    proc = subprocess.Popen([*EXE, "digest", str(big)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "MM_VERIFY": "full"})
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert_one_line(err, "interrupted")


def test_every_subcommand_speaks_json(profile: Path, tmp_path: Path, models_root: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    weights = str(models_root / "optical_flow" / "raft_small.onnx")
    for argv in (["resolve", "--profile", str(profile)], ["digest", weights],
                 ["signature", "--profile", str(profile), "--component", "core_clip"],
                 ["verify", "--profile", str(profile)], ["verify", "--profile", str(profile), "--no-cache"]):
        assert main([*argv, "--format", "json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["ok"] is True and doc["exit"] == 0 and doc["command"] == argv[0]
    (tmp_path / "run").mkdir()
    assert main(["audit", str(tmp_path / "run"), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["problems"] and doc["problems"][0]["code"] == "provenance_invalid"


def test_a_failure_in_json_mode_is_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--profile", str(tmp_path / "nope.yaml"), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"ok": False, "exit": 1, "error": doc["error"]} and doc["error"]["code"] == "model_mapping_missing"


def test_digest_of_a_folder_the_manager_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A link from a model folder to a sibling inside the models root: the manager accepts it, so must digest."""
    root = tmp_path / "models"
    (root / "shared").mkdir(parents=True)
    (root / "shared" / "vocab.txt").write_text("v")
    (root / "model").mkdir()
    (root / "model" / "w.bin").write_bytes(b"w")
    (root / "model" / "vocab.txt").symlink_to(root / "shared" / "vocab.txt")
    assert main(["digest", str(root / "model")]) == 1  # no models root known: the folder itself bounds links
    assert "leads outside" in capsys.readouterr().out
    assert main(["digest", str(root / "model"), "--models-root", str(root)]) == 0
    explicit = capsys.readouterr().out
    monkeypatch.setenv("MM_MODELS_ROOT", str(root))
    assert main(["digest", str(root / "model")]) == 0
    assert capsys.readouterr().out == explicit and explicit.startswith("sha256:")
