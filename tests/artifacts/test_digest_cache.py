"""The digest cache: an unchanged file costs a stat, a changed one is re-hashed, a bad entry is never trusted."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from model_manager.artifacts import cache as digest_cache
from model_manager.artifacts import digest as digest_mod
from model_manager.artifacts.cache import DigestCache, default_cache_dir
from model_manager.artifacts.digest import file_hex


def _settled(path: Path, data: bytes) -> os.stat_result:
    """Write a file; tests here turn the racy window off, as for weights prepared long before a run."""
    path.write_bytes(data)
    return os.stat(path)


@pytest.fixture(autouse=True)
def _no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest_cache, "RACY_WINDOW_NS", 0)


@pytest.fixture
def count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = digest_mod.sha256_hex_of_file

    def counting(path: str) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(digest_mod, "sha256_hex_of_file", counting)
    return calls


def test_unchanged_file_is_hashed_once(tmp_path: Path, count_hashes: list[str]) -> None:
    cache = DigestCache(str(tmp_path / "c"))
    f = tmp_path / "w.bin"
    _settled(f, b"weights")
    first = file_hex(str(f), cache)
    for _ in range(3):
        assert file_hex(str(f), DigestCache(str(tmp_path / "c"))) == first
    assert count_hashes == [str(f)]


def test_changed_file_is_always_rehashed(tmp_path: Path, count_hashes: list[str]) -> None:
    cache = DigestCache(str(tmp_path / "c"))
    f = tmp_path / "w.bin"
    _settled(f, b"aaaa")
    st = os.stat(f)
    file_hex(str(f), cache)
    time.sleep(0.05)  # past the filesystem's timestamp tick: the racy window covers closer writes
    f.write_bytes(b"bbbb")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime: only ctime tells
    assert file_hex(str(f), cache) == hashlib.sha256(b"bbbb").hexdigest()
    assert len(count_hashes) == 2


def test_replaced_file_same_content_new_inode(tmp_path: Path, count_hashes: list[str]) -> None:
    cache = DigestCache(str(tmp_path / "c"))
    f = tmp_path / "w.bin"
    _settled(f, b"one")
    file_hex(str(f), cache)
    tmp = tmp_path / "new"
    tmp.write_bytes(b"two")
    os.replace(tmp, f)
    assert file_hex(str(f), cache) == hashlib.sha256(b"two").hexdigest()


@pytest.mark.parametrize("garbage", [b"", b"mmdc1", b"\xff\xfe garbage", b"mmdc1 1 2 3 " + b"0" * 64 + b" bad\n"])
def test_corrupt_entry_is_ignored_and_rebuilt(tmp_path: Path, garbage: bytes, count_hashes: list[str]) -> None:
    cache = DigestCache(str(tmp_path / "c"))
    f = tmp_path / "w.bin"
    st = _settled(f, b"weights")
    file_hex(str(f), cache)
    entry = Path(cache._entry_path(st))
    entry.write_bytes(garbage)
    assert file_hex(str(f), cache) == hashlib.sha256(b"weights").hexdigest()
    assert file_hex(str(f), cache) == hashlib.sha256(b"weights").hexdigest()
    assert len(count_hashes) == 2  # rebuilt after the corrupt read, then trusted again


def test_tampered_digest_fails_its_checksum(tmp_path: Path, count_hashes: list[str]) -> None:
    cache = DigestCache(str(tmp_path / "c"))
    f = tmp_path / "w.bin"
    st = _settled(f, b"weights")
    real = file_hex(str(f), cache)
    entry = Path(cache._entry_path(st))
    entry.write_text(entry.read_text().replace(real, "0" * 64))
    assert file_hex(str(f), cache) == real


def test_killed_writer_leaves_only_a_stray_temporary(tmp_path: Path) -> None:
    cache = DigestCache(str(tmp_path / "c"))
    f = tmp_path / "w.bin"
    st = _settled(f, b"weights")
    os.makedirs(cache.directory or "", exist_ok=True)
    Path(cache.directory or "", ".tmp-half").write_bytes(b"mmdc1 1")  # what a kill mid-write leaves
    Path(cache._entry_path(st)).write_bytes(b"mmdc1 7 1")  # a torn entry (non-atomic writer)
    assert cache.lookup(st) is None
    assert file_hex(str(f), cache) == hashlib.sha256(b"weights").hexdigest()
    assert cache.lookup(os.stat(f)) == hashlib.sha256(b"weights").hexdigest()


def test_racy_fresh_file_is_not_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest_cache, "RACY_WINDOW_NS", 10_000_000_000)
    cache = DigestCache(str(tmp_path / "c"))
    f = tmp_path / "w.bin"
    f.write_bytes(b"fresh")
    file_hex(str(f), cache)
    assert cache.lookup(os.stat(f)) is None


def test_racy_window_protects_writes_within_one_tick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest_cache, "RACY_WINDOW_NS", 2_000_000_000)
    cache = DigestCache(str(tmp_path / "c"))
    f = tmp_path / "w.bin"
    for content in (b"aaaa", b"bbbb", b"cccc"):
        f.write_bytes(content)  # likely within one timestamp tick: stat may not change
        assert file_hex(str(f), cache) == hashlib.sha256(content).hexdigest()


def test_file_changing_while_hashed_is_not_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = DigestCache(str(tmp_path / "c"))
    f = tmp_path / "w.bin"
    st = _settled(f, b"before")
    real = digest_mod.sha256_hex_of_file

    def hash_then_modify(path: str) -> str:
        out = real(path)
        time.sleep(0.01)
        Path(path).write_bytes(b"after!")
        return out

    monkeypatch.setattr(digest_mod, "sha256_hex_of_file", hash_then_modify)
    file_hex(str(f), cache, st)
    assert cache.lookup(st) is None and cache.lookup(os.stat(f)) is None


def test_unwritable_cache_costs_speed_not_correctness(tmp_path: Path) -> None:
    blocker = tmp_path / "c"
    blocker.write_text("a file where the cache folder should be")
    cache = DigestCache(str(blocker))
    f = tmp_path / "w.bin"
    _settled(f, b"weights")
    assert file_hex(str(f), cache) == hashlib.sha256(b"weights").hexdigest()
    assert cache.directory is None


def test_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MM_CACHE_DIR", str(tmp_path / "x"))
    assert default_cache_dir() == str(tmp_path / "x")
    monkeypatch.delenv("MM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == str(tmp_path / "xdg" / "model_manager")


def _worker(args: tuple[str, str, int]) -> list[str]:
    cache_dir, folder, rounds = args
    digest_cache.RACY_WINDOW_NS = 0
    out = []
    for _ in range(rounds):
        for name in sorted(os.listdir(folder)):
            out.append(file_hex(os.path.join(folder, name), DigestCache(cache_dir)))
    return out


def test_many_processes_share_one_cache(tmp_path: Path) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    for i in range(20):
        (folder / f"{i:02d}.bin").write_bytes(os.urandom(4096))
    expected = [hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in sorted(os.listdir(folder))] * 5
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.map(_worker, [(str(tmp_path / "c"), str(folder), 5)] * 8)
    assert all(r == expected for r in results)
    cache = DigestCache(str(tmp_path / "c"))
    for name in os.listdir(folder):
        assert cache.lookup(os.stat(folder / name)) is not None
