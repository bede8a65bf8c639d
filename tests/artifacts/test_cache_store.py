"""A cache problem that is not a security problem costs speed, never correctness: one warning, then no cache."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from model_manager.artifacts import cache as digest_cache
from model_manager.artifacts import cache_files
from model_manager.artifacts.cache import DigestCache
from model_manager.artifacts.cache_files import KEY_NAME, STORE_NAME
from model_manager.artifacts.digest import weights_digest

ALLOWED = {KEY_NAME, STORE_NAME, STORE_NAME + "-wal", STORE_NAME + "-shm"}


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest_cache, "RACY_WINDOW_NS", 0)
    monkeypatch.setattr(cache_files, "BUSY_TIMEOUT_S", 0.2)


def _folder(tmp_path: Path, files: int = 30) -> tuple[Path, str]:
    folder = tmp_path / "model"
    folder.mkdir()
    for i in range(files):
        (folder / f"f{i:03d}.bin").write_bytes(os.urandom(200 + i))
    return folder, weights_digest(str(folder), str(tmp_path), DigestCache(None))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def _hits(cache_dir: Path, folder: Path) -> int:
    cache = DigestCache(str(cache_dir))
    return sum(cache.lookup(os.stat(p)) is not None for p in folder.iterdir())


@pytest.mark.parametrize("lock", ["exclusive", "writer"])
def test_locked_store_never_hangs_a_run(tmp_path: Path, caplog: pytest.LogCaptureFixture, lock: str) -> None:
    folder, expected = _folder(tmp_path)
    cache_dir = tmp_path / "c"
    DigestCache(str(cache_dir)).lookup(os.stat(folder))  # makes the store
    holder = sqlite3.connect(cache_dir / STORE_NAME, isolation_level=None)
    if lock == "exclusive":  # nobody may even read
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
    else:  # another process in the middle of a long write: reads go on, writes wait
        holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO digests_v1 VALUES (1, 1, x'00', 0)")
    try:
        cache = DigestCache(str(cache_dir))
        start = time.monotonic()
        assert weights_digest(str(folder), str(tmp_path), cache) == expected
        assert weights_digest(str(folder), str(tmp_path), cache) == expected  # gave up: no second wait
        assert time.monotonic() - start < 2
    finally:
        holder.close()
    messages = _warnings(caplog)
    assert len(messages) == 1 and "locked" in messages[0] and str(cache_dir) in messages[0]
    assert not cache.enabled
    assert weights_digest(str(folder), str(tmp_path), DigestCache(str(cache_dir))) == expected  # lock gone: fine
    assert _hits(cache_dir, folder) == 30


def test_store_that_is_not_a_database_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder, expected = _folder(tmp_path)
    cache_dir = tmp_path / "c"
    cache_dir.mkdir(mode=0o700)
    garbage = os.urandom(8192)
    (cache_dir / STORE_NAME).write_bytes(garbage)
    (cache_dir / STORE_NAME).chmod(0o600)
    assert weights_digest(str(folder), str(tmp_path), DigestCache(str(cache_dir))) == expected
    messages = _warnings(caplog)
    assert len(messages) == 1 and "corrupt" in messages[0] and "moved aside" in messages[0]
    assert (cache_dir / f"{STORE_NAME}.corrupt").read_bytes() == garbage
    assert _hits(cache_dir, folder) == 30  # the fresh store took this run's digests


def test_store_corrupted_in_its_pages_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder, expected = _folder(tmp_path, files=300)
    cache_dir = tmp_path / "c"
    cache = DigestCache(str(cache_dir))
    weights_digest(str(folder), str(tmp_path), cache)
    cache.close()
    store = cache_dir / STORE_NAME
    data = store.read_bytes()
    assert len(data) > 4 * 4096 and not (cache_dir / (STORE_NAME + "-wal")).exists()
    store.write_bytes(data[:4096] + os.urandom(len(data) - 4096))  # the header and schema survive
    cache = DigestCache(str(cache_dir))
    assert weights_digest(str(folder), str(tmp_path), cache) == expected
    messages = _warnings(caplog)
    assert len(messages) == 1 and "corrupt" in messages[0]
    assert (cache_dir / f"{STORE_NAME}.corrupt").exists() and not cache.enabled
    assert weights_digest(str(folder), str(tmp_path), DigestCache(str(cache_dir))) == expected  # a fresh store
    assert _hits(cache_dir, folder) == 300


_FULL = """
import json, os, resource, signal, sys
from model_manager.artifacts import cache as digest_cache
from model_manager.artifacts.cache import DigestCache
from model_manager.artifacts.digest import weights_digest
digest_cache.RACY_WINDOW_NS = 0
folder, cache_dir, tmpfile = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if not tmpfile:
    del os.O_TMPFILE
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
cache = DigestCache(cache_dir)
print(json.dumps([weights_digest(folder, os.path.dirname(folder), cache), cache.enabled]))
"""


@pytest.mark.parametrize("state", ["no key, unnamed temporary", "no key, named temporary", "key, no store",
                                   "key and store"])
def test_a_disk_that_refuses_writes_leaves_no_temporary_file(tmp_path: Path, state: str) -> None:
    """RLIMIT_FSIZE=0 makes every write of file data fail (EFBIG) for any user, as a full disk does (ENOSPC)."""
    folder, expected = _folder(tmp_path)
    cache_dir = tmp_path / "c"
    if state.startswith("key"):
        cache = DigestCache(str(cache_dir))
        cache.lookup(os.stat(folder))
        cache.close()
        if state == "key, no store":
            (cache_dir / STORE_NAME).unlink()
    result = subprocess.run([sys.executable, "-c", _FULL, str(folder), str(cache_dir),
                             "0" if "named" in state and "unnamed" not in state else "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [expected, False]
    assert result.stderr.count("digest cache") == 1 and "not usable" in result.stderr, result.stderr
    assert set(os.listdir(cache_dir)) <= ALLOWED, os.listdir(cache_dir)
    assert weights_digest(str(folder), str(tmp_path), DigestCache(str(cache_dir))) == expected  # usable again
