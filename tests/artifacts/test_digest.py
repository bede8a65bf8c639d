"""weights_digest for files and folders, exactly as docs/mapping.md defines it; OS errors named, never raw."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.privileges import drop_file_overrides

from model_manager.artifacts.cache import DigestCache
from model_manager.artifacts.digest import sha256_hex_of_file, weights_digest
from model_manager.errors import ModelManagerError

NO_CACHE = DigestCache(None)


def test_file_digest_is_sha256_of_bytes(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 18) + 17)  # crosses several read chunks, ends mid-chunk
    (tmp_path / "w.bin").write_bytes(data)
    assert weights_digest(str(tmp_path / "w.bin"), str(tmp_path), NO_CACHE) == \
        "sha256:" + hashlib.sha256(data).hexdigest()


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e").write_bytes(b"")
    assert sha256_hex_of_file(str(tmp_path / "e")) == hashlib.sha256(b"").hexdigest()


def _repo(root: Path) -> Path:
    repo = root / "repo"
    (repo / "sub" / "deeper").mkdir(parents=True)
    (repo / "config.json").write_text('{"a": 1}\n')
    (repo / "sub" / "weights.bin").write_bytes(b"\x00\x01" * 1000)
    (repo / "sub" / "deeper" / "z.txt").write_text("z\n")
    (repo / "B-upper.txt").write_text("upper sorts before lower in byte order\n")
    (repo / "é-accent.txt").write_text("utf-8 name\n")
    return repo


def test_folder_digest_matches_sha256sum(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    listing = subprocess.run(
        "find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum",
        shell=True, cwd=repo, check=True, capture_output=True,
    ).stdout
    expected = "sha256:" + hashlib.sha256(listing).hexdigest()
    assert weights_digest(str(repo), str(tmp_path), NO_CACHE) == expected


def test_folder_digest_by_hand(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    files = sorted((p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()),
                   key=lambda s: s.encode())
    text = "".join(f"{hashlib.sha256((repo / f).read_bytes()).hexdigest()}  {f}\n" for f in files)
    assert weights_digest(str(repo), str(tmp_path), NO_CACHE) == \
        "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_git_folders_are_left_out(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    before = weights_digest(str(repo), str(tmp_path), NO_CACHE)
    (repo / ".git" / "objects").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / "sub" / ".git").mkdir()
    (repo / "sub" / ".git" / "x").write_text("x")
    assert weights_digest(str(repo), str(tmp_path), NO_CACHE) == before


def test_folder_digest_changes_with_a_rename(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    before = weights_digest(str(repo), str(tmp_path), NO_CACHE)
    (repo / "config.json").rename(repo / "config2.json")
    assert weights_digest(str(repo), str(tmp_path), NO_CACHE) != before


def test_symlink_inside_root_is_hashed_as_its_target(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    before = weights_digest(str(repo), str(tmp_path), NO_CACHE)
    shared = tmp_path / "shared.bin"
    shared.write_bytes((repo / "sub" / "weights.bin").read_bytes())
    (repo / "sub" / "weights.bin").unlink()
    (repo / "sub" / "weights.bin").symlink_to(shared)
    assert weights_digest(str(repo), str(tmp_path), NO_CACHE) == before


def test_symlink_leaving_root_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "root"
    repo = _repo(root)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"secret")
    (repo / "leak.bin").symlink_to(outside)
    with pytest.raises(ModelManagerError) as info:
        weights_digest(str(repo), str(root), NO_CACHE, component="c", role="r", field="artifacts.weights_path")
    assert info.value.code == "invalid_model_spec"
    assert "leak.bin" in str(info.value) and info.value.component == "c"


def test_dangling_symlink_in_folder(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "gone").symlink_to(tmp_path / "missing")
    with pytest.raises(ModelManagerError) as info:
        weights_digest(str(repo), str(tmp_path), NO_CACHE)
    assert info.value.code == "model_artifact_missing"


def test_symlinked_folder_in_a_model_folder_is_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "alias").symlink_to(repo / "sub", target_is_directory=True)
    with pytest.raises(ModelManagerError, match="regular file"):
        weights_digest(str(repo), str(tmp_path), NO_CACHE)


def test_fifo_in_folder_is_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    os.mkfifo(repo / "pipe")
    with pytest.raises(ModelManagerError, match="not a regular file"):
        weights_digest(str(repo), str(tmp_path), NO_CACHE)


def test_sha256sum_agrees_on_a_file(tmp_path: Path) -> None:
    if shutil.which("sha256sum") is None:  # coreutils is on every Debian image; fail loudly otherwise
        pytest.fail("sha256sum is missing on this machine")
    (tmp_path / "f").write_bytes(os.urandom(100_000))
    out = subprocess.run(["sha256sum", str(tmp_path / "f")], check=True, capture_output=True, text=True).stdout
    assert weights_digest(str(tmp_path / "f"), str(tmp_path), NO_CACHE) == "sha256:" + out.split()[0]


def test_large_files_hashed_on_threads_give_the_same_folder_digest(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    for i in range(3):  # at and above the threaded size, beside small files hashed inline
        (repo / f"shard-{i}.bin").write_bytes(os.urandom(1024) * (8 * 1024 + i))
    listing = subprocess.run(
        "find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum",
        shell=True, cwd=repo, check=True, capture_output=True,
    ).stdout
    assert weights_digest(str(repo), str(tmp_path), NO_CACHE) == "sha256:" + hashlib.sha256(listing).hexdigest()


def _error(path: Path | str, root: Path | str) -> ModelManagerError:
    with pytest.raises(ModelManagerError) as info:
        weights_digest(str(path), str(root), NO_CACHE, component="c", role="r", field="artifacts.weights_path")
    assert (info.value.component, info.value.role, info.value.field) == ("c", "r", "artifacts.weights_path")
    assert info.value.hint
    return info.value


@pytest.mark.parametrize("git", [False, True])
def test_empty_model_folder_is_refused(tmp_path: Path, git: bool) -> None:
    repo = tmp_path / "repo"
    (repo / "sub" / "deeper").mkdir(parents=True)  # folders, but no file
    if git:
        (repo / ".git").mkdir()
        (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")  # left out: still empty
    err = _error(repo, tmp_path)
    assert err.code == "invalid_model_spec" and "empty model folder" in err.message


def test_symlink_loop_in_a_folder_is_an_environment_failure(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "a").symlink_to(repo / "b")
    (repo / "b").symlink_to(repo / "a")
    err = _error(repo, tmp_path)
    assert err.code == "environment_failure" and "ELOOP" in err.message and str(repo) in err.message


def test_name_too_long_is_an_environment_failure(tmp_path: Path) -> None:
    err = _error(tmp_path / ("w" * 300), tmp_path)
    assert err.code == "environment_failure" and "ENAMETOOLONG" in err.message


def test_read_error_is_an_environment_failure() -> None:
    """A real EIO, as root or not: /proc/self/mem is a regular file whose offset 0 is never mapped."""
    proc = os.path.realpath("/proc/self")
    err = _error(f"{proc}/mem", proc)
    assert err.code == "environment_failure" and "EIO" in err.message and "/mem" in err.message


def test_missing_path_stays_artifact_missing(tmp_path: Path) -> None:
    assert _error(tmp_path / "gone.onnx", tmp_path).code == "model_artifact_missing"


def test_fifo_given_as_the_weights_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "w.onnx")
    assert _error(tmp_path / "w.onnx", tmp_path).code == "invalid_model_spec"


_CHILD = """
import json, sys
from model_manager.artifacts.cache import DigestCache
from model_manager.artifacts.digest import weights_digest
from model_manager.errors import ModelManagerError
out = {}
for name in sys.argv[2:]:
    try:
        weights_digest(name, sys.argv[1], DigestCache(None))
        out[name] = "no error"
    except ModelManagerError as exc:
        out[name] = [exc.code, exc.message]
    except BaseException as exc:  # what must never happen: a raw OSError
        out[name] = ["raw", repr(exc)]
print(json.dumps(out))
"""


def test_permission_denied_is_an_environment_failure(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    locked = tmp_path / "locked"
    shutil.copytree(repo, locked)
    (repo / "sub" / "weights.bin").chmod(0)  # a file nobody may read
    (locked / "sub").chmod(0)  # a folder nobody may list
    try:
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, str(tmp_path), str(repo), str(locked)], cwd=tmp_path,
            capture_output=True, text=True, timeout=60,
            preexec_fn=drop_file_overrides if os.geteuid() == 0 else None)
    finally:
        (locked / "sub").chmod(0o755)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for path, name in ((repo, "weights.bin"), (locked, "sub")):
        code, message = out[str(path)]
        assert code == "environment_failure" and "EACCES" in message and name in message, out
