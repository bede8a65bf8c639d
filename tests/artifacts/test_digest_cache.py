"""The digest cache: an unchanged file costs a stat, a changed one is re-hashed, a forged row is never trusted."""

from __future__ import annotations

import hashlib
import mmap
import multiprocessing
import os
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from model_manager.artifacts import cache as digest_cache
from model_manager.artifacts.cache import DigestCache, default_cache_dir, open_cache
from model_manager.artifacts.cache_files import STORE_NAME
from model_manager.artifacts.digest import file_hex, weights_digest
from model_manager.errors import ModelManagerError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def _no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files here are made a moment before they are hashed; they stand for weights prepared long before."""
    monkeypatch.setattr(digest_cache, "RACY_WINDOW_NS", 0)


def _statements(cache: DigestCache) -> list[str]:
    """Every SQL statement the cache's own connection runs from now on (SQLite's trace hook)."""
    cache.lookup(os.stat(__file__))  # opens the store
    conn = cache._conn
    assert conn is not None
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    return seen


def _folder(root: Path, files: int, size: int = 300) -> Path:
    folder = root / "model"
    for i in range(files):
        sub = folder / f"d{i % 7}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:04d}.bin").write_bytes(os.urandom(size))
    return folder


_OPENED: list[str] = []
_RECORDING: list[bool] = []  # the audit hook cannot be removed: it records only while a test asks


def _record_opens(event: str, args: tuple[Any, ...]) -> None:
    if _RECORDING and event == "open":
        _OPENED.append(str(args[0]))


@pytest.fixture
def opened() -> Iterator[list[str]]:
    """Paths the process opens while the test runs, seen through Python's audit hook (os.open raises "open")."""
    if not hasattr(_record_opens, "installed"):
        sys.addaudithook(_record_opens)
        _record_opens.installed = True  # type: ignore[attr-defined]
    _OPENED.clear()
    _RECORDING.append(True)
    yield _OPENED
    _RECORDING.clear()


def test_unchanged_file_is_read_once(tmp_path: Path, opened: list[str]) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    opened.clear()
    first = file_hex(str(f), DigestCache(str(tmp_path / "c")))
    for _ in range(3):
        assert file_hex(str(f), DigestCache(str(tmp_path / "c"))) == first == sha(b"weights")
    assert opened.count(str(f)) == 1


def test_changed_file_is_always_rehashed(tmp_path: Path) -> None:
    cache = DigestCache(str(tmp_path / "c"))
    f = tmp_path / "w.bin"
    f.write_bytes(b"aaaa")
    st = os.stat(f)
    file_hex(str(f), cache)
    time.sleep(0.05)  # past the filesystem's timestamp tick: the racy window covers closer writes
    f.write_bytes(b"bbbb")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime: only ctime tells
    assert file_hex(str(f), cache) == sha(b"bbbb")


def test_replaced_file_new_inode(tmp_path: Path) -> None:
    cache = DigestCache(str(tmp_path / "c"))
    f = tmp_path / "w.bin"
    f.write_bytes(b"one")
    file_hex(str(f), cache)
    (tmp_path / "new").write_bytes(b"two")
    os.replace(tmp_path / "new", f)
    assert file_hex(str(f), cache) == sha(b"two")


def test_folder_digest_through_the_cache(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 40)
    cold = weights_digest(str(folder), str(tmp_path), DigestCache(str(tmp_path / "c")))
    assert cold == weights_digest(str(folder), str(tmp_path), DigestCache(None))
    cache = DigestCache(str(tmp_path / "c"))
    assert weights_digest(str(folder), str(tmp_path), cache) == cold
    (folder / "d3" / "f0003.bin").write_bytes(b"changed")
    assert weights_digest(str(folder), str(tmp_path), cache) == \
        weights_digest(str(folder), str(tmp_path), DigestCache(None)) != cold


def test_a_row_signed_with_another_key_is_not_trusted(tmp_path: Path) -> None:
    """Whoever writes the store but lacks this cache's key cannot make tampered weights pass."""
    f = tmp_path / "w.bin"
    f.write_bytes(b"tampered weights")
    st = os.stat(f)
    forger = DigestCache(str(tmp_path / "forger"))  # the same code, its own key
    forger.store(st, sha(b"pinned weights"))
    assert forger.lookup(st) == sha(b"pinned weights")
    forger.close()
    victim = DigestCache(str(tmp_path / "victim"))
    assert victim.lookup(st) is None  # creates the victim's store and key
    rows = sqlite3.connect(tmp_path / "forger" / STORE_NAME).execute("SELECT * FROM digests_v1").fetchall()
    with sqlite3.connect(tmp_path / "victim" / STORE_NAME) as conn:
        conn.executemany("INSERT OR REPLACE INTO digests_v1 VALUES (?, ?, ?, ?)", rows)
    assert victim.lookup(st) is None
    assert weights_digest(str(f), str(tmp_path), victim) == "sha256:" + sha(b"tampered weights")


def test_a_row_moved_to_another_file_is_not_trusted(tmp_path: Path) -> None:
    """The tag binds the row to its file's device and inode, not only to size and times."""
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"aaaa")
    b.write_bytes(b"bbbb")
    cache = DigestCache(str(tmp_path / "c"))
    file_hex(str(a), cache)
    cache.close()
    sa, sb = os.stat(a), os.stat(b)
    os.utime(b, ns=(sa.st_atime_ns, sa.st_mtime_ns))
    with sqlite3.connect(tmp_path / "c" / STORE_NAME) as conn:  # a's row, under b's key
        conn.execute("UPDATE digests_v1 SET ino = ? WHERE ino = ?", (sb.st_ino, sa.st_ino))
    assert DigestCache(str(tmp_path / "c")).lookup(os.stat(b)) is None


@pytest.mark.parametrize("entry", [b"", b"short", bytes(range(80)), bytes(range(81))],
                         ids=["empty", "short", "80", "81"])
def test_garbled_row_is_ignored_and_rewritten(tmp_path: Path, entry: bytes) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    file_hex(str(f), DigestCache(str(tmp_path / "c")))
    with sqlite3.connect(tmp_path / "c" / STORE_NAME) as conn:
        conn.execute("UPDATE digests_v1 SET entry = ?", (entry,))
    cache = DigestCache(str(tmp_path / "c"))
    assert cache.lookup(os.stat(f)) is None
    assert file_hex(str(f), cache) == sha(b"weights")
    assert DigestCache(str(tmp_path / "c")).lookup(os.stat(f)) == sha(b"weights")


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
        assert file_hex(str(f), cache) == sha(content)


def test_file_changing_while_hashed_is_not_remembered(tmp_path: Path) -> None:
    """A writer rewrites the first byte every millisecond while 32 MiB are read: the stat after the read
    differs from the stat before it, so the digest (of no single state of the file) is not kept."""
    f = tmp_path / "w.bin"
    f.write_bytes(os.urandom(1 << 25))
    stop = threading.Event()

    def writer() -> None:
        with open(f, "r+b", buffering=0) as fh:
            while not stop.is_set():
                fh.seek(0)
                fh.write(os.urandom(1))
                time.sleep(0.001)

    thread = threading.Thread(target=writer)
    cache = DigestCache(str(tmp_path / "c"))
    thread.start()
    try:
        time.sleep(0.01)
        file_hex(str(f), cache)
    finally:
        stop.set()
        thread.join()
    cache.close()
    assert sqlite3.connect(tmp_path / "c" / STORE_NAME).execute("SELECT count(*) FROM digests_v1").fetchone() == (0,)


def test_mmap_write_is_a_known_blind_spot_that_full_verification_sees(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/digest-cache.md: a write through a shared mapping to a page already dirty changes the bytes but
    neither mtime nor ctime (Linux stamps the file only at the first write fault after writeback)."""
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 8192)
    with open(f, "r+b") as fh, mmap.mmap(fh.fileno(), 8192) as mapped:
        mapped[0:1] = b"b"  # dirties the page: this write is stamped
        cached = weights_digest(str(f), str(tmp_path), open_cache())
        stamp = os.stat(f)
        mapped[1:2] = b"c"  # the page is dirty already: no new stamp
        after = os.stat(f)
        assert (after.st_mtime_ns, after.st_ctime_ns, after.st_size) == \
            (stamp.st_mtime_ns, stamp.st_ctime_ns, stamp.st_size), "the kernel stamped the write after all"
        assert weights_digest(str(f), str(tmp_path), open_cache()) == cached  # the known limit
        monkeypatch.setenv("MM_VERIFY", "full")
        assert weights_digest(str(f), str(tmp_path), open_cache()) == "sha256:" + sha(b"bc" + b"a" * 8190)


def test_verify_full_remembers_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       _isolated_cache: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    monkeypatch.setenv("MM_VERIFY", "full")
    cache = open_cache()
    assert not cache.enabled
    assert file_hex(str(f), cache) == sha(b"weights")
    assert list(_isolated_cache.iterdir()) == []
    monkeypatch.setenv("MM_VERIFY", "cache")
    assert open_cache().enabled and open_cache("full").enabled is False


@pytest.mark.parametrize("value", ["FULL", "none", " cache", "0"])
def test_verify_other_values_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MM_VERIFY", value)
    with pytest.raises(ModelManagerError) as info:
        open_cache()
    assert info.value.code == "environment_failure" and info.value.field == "MM_VERIFY"
    assert "cache" in info.value.message and "full" in info.value.message


def test_no_cache_remembers_nothing(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    cache = DigestCache(None)
    cache.store(os.stat(f), sha(b"weights"))
    assert cache.lookup(os.stat(f)) is None and cache.rows([(1, 2)]) == {} and not cache.enabled


def test_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MM_CACHE_DIR", str(tmp_path / "x"))
    assert default_cache_dir() == str(tmp_path / "x") == open_cache().directory
    monkeypatch.delenv("MM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == str(tmp_path / "xdg" / "model_manager")


def test_one_query_and_one_transaction_per_folder(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 1200)
    cache = DigestCache(str(tmp_path / "c"))
    seen = _statements(cache)
    weights_digest(str(folder), str(tmp_path), cache)
    selects = [s for s in seen if s.startswith("SELECT")]
    assert len(selects) == 3  # 1200 keys, 500 per query
    assert [s for s in seen if s.split()[0] in ("BEGIN", "COMMIT")] == ["BEGIN IMMEDIATE", "COMMIT"]
    seen.clear()
    with cache.batch():  # a caller's batch spans several artifacts: still one transaction
        weights_digest(str(folder), str(tmp_path), cache)
        (tmp_path / "one.bin").write_bytes(b"x")
        weights_digest(str(tmp_path / "one.bin"), str(tmp_path), cache)
        assert not [s for s in seen if s.startswith("BEGIN")]
    assert [s for s in seen if s.split()[0] in ("BEGIN", "COMMIT")] == ["BEGIN IMMEDIATE", "COMMIT"]


def test_store_stays_small(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 2000, size=16)
    cache = DigestCache(str(tmp_path / "c"))
    weights_digest(str(folder), str(tmp_path), cache)
    cache.close()  # the last connection folds the WAL into the store
    size = sum(p.stat().st_size for p in (tmp_path / "c").iterdir())
    assert size / 2000 < 200, size


def test_old_rows_are_pruned_past_the_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest_cache, "MAX_ROWS", 20)
    old, mid, new = (_folder(tmp_path / n, k) for n, k in (("old", 10), ("mid", 10), ("new", 5)))
    cache_dir = str(tmp_path / "c")
    for folder, days_ago in ((old, 5), (mid, 3)):
        cache = DigestCache(cache_dir)
        weights_digest(str(folder), str(tmp_path), cache)
        cache.close()
        with sqlite3.connect(Path(cache_dir) / STORE_NAME) as conn:
            conn.execute("UPDATE digests_v1 SET used = used - ? WHERE used = (SELECT max(used) FROM digests_v1)",
                         (days_ago,))
    weights_digest(str(new), str(tmp_path), DigestCache(cache_dir))  # 25 rows > 20: down to 15
    cache = DigestCache(cache_dir)

    def hits(folder: Path) -> int:
        return sum(cache.lookup(os.stat(p)) is not None for p in folder.rglob("*.bin"))

    assert (hits(old), hits(mid), hits(new)) == (0, 10, 5)


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
    expected = [sha((folder / n).read_bytes()) for n in sorted(os.listdir(folder))] * 5
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.map(_worker, [(str(tmp_path / "c"), str(folder), 5)] * 8)
    assert all(r == expected for r in results)
    cache = DigestCache(str(tmp_path / "c"))
    for name in os.listdir(folder):
        assert cache.lookup(os.stat(folder / name)) is not None


def test_a_cache_opened_before_fork_reopens_in_the_child(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    cache = DigestCache(str(tmp_path / "c"))
    assert cache.lookup(os.stat(f)) is None  # opened here
    pid = os.fork()
    if pid == 0:  # the child uses the inherited object
        ok = file_hex(str(f), cache) == sha(b"weights") and cache.lookup(os.stat(f)) == sha(b"weights")
        os._exit(0 if ok else 1)
    assert os.waitpid(pid, 0)[1] == 0
    assert cache.lookup(os.stat(f)) == sha(b"weights")


def test_a_copied_tree_is_hashed_again(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 10)
    first = weights_digest(str(folder), str(tmp_path), DigestCache(str(tmp_path / "c")))
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / "d1" / "f0001.bin").write_bytes(b"different")
    assert weights_digest(str(copy), str(tmp_path), DigestCache(str(tmp_path / "c"))) != first
