"""The cache refuses what others could write, as ssh refuses a loose key; its key is made once, atomically."""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import signal
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from model_manager import ModelManager
from model_manager.artifacts import cache as digest_cache
from model_manager.artifacts.cache import DigestCache
from model_manager.artifacts.cache_files import KEY_NAME, STORE_NAME
from model_manager.artifacts.digest import file_hex, weights_digest
from model_manager.errors import ModelManagerError

NOBODY = 65534
ALLOWED = {KEY_NAME, STORE_NAME, STORE_NAME + "-wal", STORE_NAME + "-shm"}


@pytest.fixture(autouse=True)
def _no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest_cache, "RACY_WINDOW_NS", 0)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail instead of hanging: a blocking open() is interrupted by SIGALRM."""
    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"blocked for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _weights(tmp_path: Path) -> Path:
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    return f


def _refused(cache_dir: Path, tmp_path: Path) -> ModelManagerError:
    f = _weights(tmp_path)
    with deadline(5), pytest.raises(ModelManagerError) as info:
        weights_digest(str(f), str(tmp_path), DigestCache(str(cache_dir)), component="c", role="r",
                       field="artifacts.onnx_path")
    err = info.value
    assert err.code == "digest_cache_insecure", str(err)
    assert "chmod go-w" in str(err.hint) and "MM_CACHE_DIR" in str(err.hint) and "MM_VERIFY=full" in str(err.hint)
    return err


def _ready(tmp_path: Path) -> Path:
    """A cache folder with its key and store, as a first run leaves it."""
    cache_dir = tmp_path / "c"
    file_hex(str(_weights(tmp_path)), DigestCache(str(cache_dir)))
    assert {KEY_NAME, STORE_NAME} <= set(os.listdir(cache_dir))
    return cache_dir


def test_first_use_makes_private_folders_key_and_store(tmp_path: Path) -> None:
    cache_dir = tmp_path / "a" / "b" / "c"
    old = os.umask(0)  # the modes are the code's, not the umask's
    try:
        file_hex(str(_weights(tmp_path)), DigestCache(str(cache_dir)))
    finally:
        os.umask(old)
    for folder in (tmp_path / "a", tmp_path / "a" / "b", cache_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((cache_dir / KEY_NAME).stat().st_mode) == 0o600
    assert (cache_dir / KEY_NAME).stat().st_size == 32
    assert stat.S_IMODE((cache_dir / STORE_NAME).stat().st_mode) == 0o600
    assert set(os.listdir(cache_dir)) <= ALLOWED


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702, 0o1777])
def test_cache_folder_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    cache_dir = _ready(tmp_path)
    cache_dir.chmod(mode)
    err = _refused(cache_dir, tmp_path)
    assert str(cache_dir) in err.message and "written by its group or others" in err.message


def test_cache_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    cache_dir = _ready(tmp_path)
    os.chown(cache_dir, NOBODY, -1)
    assert f"belongs to uid {NOBODY}" in _refused(cache_dir, tmp_path).message


def test_cache_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c").write_text("a file where the cache folder should be")
    assert "not a folder" in _refused(tmp_path / "c", tmp_path).message


def test_parent_others_can_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    parent = tmp_path / "shared"
    parent.mkdir()
    parent.chmod(0o777)
    err = _refused(parent / "c", tmp_path)
    assert str(parent) in err.message and "not sticky" in err.message
    parent.chmod(0o1777)  # like /tmp: others cannot rename what is ours
    assert file_hex(str(_weights(tmp_path)), DigestCache(str(parent / "c"))) == hashlib.sha256(b"weights").hexdigest()


def test_parent_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    parent = tmp_path / "theirs"
    parent.mkdir(mode=0o755)
    os.chown(parent, NOBODY, -1)
    assert "not sticky" in _refused(parent / "c", tmp_path).message


def test_linked_cache_folder_is_judged_by_its_target(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(private, target_is_directory=True)
    file_hex(str(_weights(tmp_path)), DigestCache(str(tmp_path / "link")))
    assert KEY_NAME in os.listdir(private)
    private.chmod(0o777)
    assert str(private) in _refused(tmp_path / "link", tmp_path).message


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o610, 0o700 | 0o020])
def test_key_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    cache_dir = _ready(tmp_path)
    (cache_dir / KEY_NAME).chmod(mode)
    err = _refused(cache_dir, tmp_path)
    assert KEY_NAME in err.message and "open to other users" in err.message


@pytest.mark.parametrize("name", [KEY_NAME, STORE_NAME])
def test_key_or_store_of_another_user_is_refused(tmp_path: Path, name: str) -> None:
    cache_dir = _ready(tmp_path)
    os.chown(cache_dir / name, NOBODY, -1)
    assert name in _refused(cache_dir, tmp_path).message


def test_store_others_can_write_is_refused_but_readable_is_fine(tmp_path: Path) -> None:
    cache_dir = _ready(tmp_path)
    (cache_dir / STORE_NAME).chmod(0o644)
    assert DigestCache(str(cache_dir)).lookup(os.stat(tmp_path / "w.bin")) is not None
    (cache_dir / STORE_NAME).chmod(0o666)
    assert "writers other than its owner" in _refused(cache_dir, tmp_path).message


@pytest.mark.parametrize("name", [KEY_NAME, STORE_NAME, STORE_NAME + "-wal", STORE_NAME + "-shm"])
def test_links_are_never_followed(tmp_path: Path, name: str) -> None:
    cache_dir = _ready(tmp_path)
    decoy = tmp_path / "decoy"
    decoy.write_bytes(b"x" * 32)
    decoy.chmod(0o600)
    (cache_dir / name).unlink(missing_ok=True)
    (cache_dir / name).symlink_to(decoy)
    assert "symbolic link" in _refused(cache_dir, tmp_path).message
    assert decoy.read_bytes() == b"x" * 32


@pytest.mark.parametrize("name", [KEY_NAME, STORE_NAME, STORE_NAME + "-wal", STORE_NAME + "-shm"])
@pytest.mark.parametrize("kind", ["FIFO", "socket"])
def test_fifo_or_socket_in_place_of_a_cache_file_never_blocks(tmp_path: Path, name: str, kind: str) -> None:
    cache_dir = tmp_path / "c"
    cache_dir.mkdir(mode=0o700)
    if kind == "FIFO":
        os.mkfifo(cache_dir / name, 0o600)
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(cache_dir / name))
        sock.close()
    assert f"is a {kind}, not a regular file" in _refused(cache_dir, tmp_path).message


def test_fifos_elsewhere_in_the_cache_folder_are_never_opened(tmp_path: Path) -> None:
    cache_dir = tmp_path / "c"
    (cache_dir / "mmdc1").mkdir(parents=True, mode=0o700)  # the old format's entries
    os.mkfifo(cache_dir / "mmdc1" / "803-1a2b")
    os.mkfifo(cache_dir / "stray")
    f = _weights(tmp_path)
    with deadline(5):
        assert file_hex(str(f), DigestCache(str(cache_dir))) == hashlib.sha256(b"weights").hexdigest()
        assert DigestCache(str(cache_dir)).lookup(os.stat(f)) is not None


def test_damaged_key_is_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache_dir = _ready(tmp_path)
    (cache_dir / KEY_NAME).write_bytes(b"short")
    f = tmp_path / "w.bin"
    cache = DigestCache(str(cache_dir))
    assert cache.lookup(os.stat(f)) is None  # rows signed with the old key are not trusted
    assert "key" in caplog.text and "damaged" in caplog.text
    assert (cache_dir / KEY_NAME).stat().st_size == 32
    file_hex(str(f), cache)
    assert DigestCache(str(cache_dir)).lookup(os.stat(f)) is not None


def test_insecure_cache_stops_the_manager_unless_verify_full(models_root: Path, mapping: dict[str, Any],
                                                               run_context: dict[str, str], _isolated_cache: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _isolated_cache.chmod(0o777)
    with pytest.raises(ModelManagerError) as info:
        ModelManager(run_context, mapping)
    assert info.value.code == "digest_cache_insecure" and info.value.exit_status == 3
    monkeypatch.setenv("MM_VERIFY", "full")
    assert "core_optical_flow" in ModelManager(run_context, mapping).components


def _race(args: tuple[str, str, Any]) -> str | None:
    cache_dir, weights, barrier = args
    digest_cache.RACY_WINDOW_NS = 0
    barrier.wait()
    cache = DigestCache(cache_dir)
    file_hex(weights, cache)
    cache.close()
    return None


def test_racing_first_uses_make_one_key_and_leave_no_temporary(tmp_path: Path) -> None:
    cache_dir = tmp_path / "c"
    files = []
    for i in range(8):
        files.append(tmp_path / f"w{i}.bin")
        files[-1].write_bytes(os.urandom(100))
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(8)
    procs = [ctx.Process(target=_race, args=((str(cache_dir), str(f), barrier),)) for f in files]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert set(os.listdir(cache_dir)) <= ALLOWED
    cache = DigestCache(str(cache_dir))  # every process signed with the one key that won
    assert all(cache.lookup(os.stat(f)) == hashlib.sha256(f.read_bytes()).hexdigest() for f in files)


def test_key_without_unnamed_files_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where O_TMPFILE is missing the key is written under a random name, linked, and the name removed."""
    monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    cache_dir = _ready(tmp_path)
    assert set(os.listdir(cache_dir)) <= ALLOWED
    assert (cache_dir / KEY_NAME).stat().st_nlink == 1
