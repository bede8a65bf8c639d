"""The digest cache's files: the private folder, the key and the SQLite store, each checked before use.

The folder, the key and the store must belong to this user and be closed to others (as ssh treats
a private key), and nothing is opened that could block (a FIFO) or lead elsewhere (a link):
anything else raises DigestCacheInsecure. A corrupt store is moved aside and a fresh one started.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from typing import TYPE_CHECKING

from model_manager.errors import DigestCacheInsecure, file_kind, shown

if TYPE_CHECKING:
    import sqlite3

log = logging.getLogger("model_manager.artifacts.cache")

#: how long to wait for another process's lock on the store before running without it
BUSY_TIMEOUT_S = 1.0
STORE_NAME = "digests.sqlite3"
KEY_NAME = "digests.key"
TABLE = "digests_v1"  # a new row format gets a new table
KEY_BYTES = 32
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_HINT = ("make it yours and `chmod go-w` it, point MM_CACHE_DIR at a private folder, "
         "or set MM_VERIFY=full to hash every artifact without the cache")


def insecure(path: str, problem: str) -> DigestCacheInsecure:
    return DigestCacheInsecure(f"digest cache {shown(path)} {problem}", field="MM_CACHE_DIR", hint=_HINT)



def check_file(path: str, st: os.stat_result, private: bool) -> None:
    """The key (``private``: no group/other access at all) or the store: a regular file of ours, closed to writers."""
    if not stat.S_ISREG(st.st_mode):
        raise insecure(path, f"is {file_kind(st.st_mode)}, not a regular file")
    if st.st_uid != os.geteuid():
        raise insecure(path, f"belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()})")
    if st.st_mode & (0o077 if private else 0o022):
        raise insecure(path, f"is open to {'other users' if private else 'writers other than its owner'} "
                              f"(mode {stat.S_IMODE(st.st_mode):04o})")


def open_private_dir(directory: str) -> tuple[str, int]:
    """The cache folder's real path and an open descriptor of it, made (mode 0700) if missing, and checked."""
    real = os.path.realpath(directory)  # a linked cache folder is judged by the folder it leads to
    missing, probe = [], real
    while not os.path.lexists(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
    st = os.lstat(real)
    if not stat.S_ISDIR(st.st_mode):
        raise insecure(real, f"is {file_kind(st.st_mode)}, not a folder")
    dfd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st, parent = os.fstat(dfd), os.path.dirname(real)
        if st.st_uid != os.geteuid():
            raise insecure(real, f"belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()})")
        if st.st_mode & 0o022:
            raise insecure(real, f"can be written by its group or others (mode {stat.S_IMODE(st.st_mode):04o})")
        pst = os.stat(parent)
        others_write = pst.st_mode & 0o022 or (pst.st_uid not in (os.geteuid(), 0) and pst.st_mode & 0o200)
        if others_write and not pst.st_mode & stat.S_ISVTX:
            raise insecure(real, f"lies in {shown(parent)}, which others can write and which is not sticky "
                                  f"(mode {stat.S_IMODE(pst.st_mode):04o}): they could replace the cache")
    except BaseException:
        os.close(dfd)
        raise
    return real, dfd


def _publish_key(dfd: int) -> None:
    """Write a new key and give it its name in one step, link(): of racing processes only the first wins (the
    others get FileExistsError). The file is unnamed (O_TMPFILE) where the system allows; a random name else,
    removed before returning."""
    name, fd = None, -1
    if hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd"):  # linking an unnamed file goes through /proc
        with contextlib.suppress(OSError):  # a file system without unnamed files
            fd = os.open(".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=dfd)
    if fd < 0:
        name = f".{KEY_NAME}.{os.urandom(8).hex()}"
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
    try:
        if os.write(fd, os.urandom(KEY_BYTES)) != KEY_BYTES:
            raise OSError(errno.EIO, "short write")
        if name is None:
            os.link(f"/proc/self/fd/{fd}", KEY_NAME, dst_dir_fd=dfd)
        else:
            os.link(name, KEY_NAME, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
    finally:
        os.close(fd)
        if name is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dfd)


def load_key(directory: str, dfd: int) -> bytes:
    """The folder's key, made on first use. Never follows a link, never blocks on a FIFO."""
    path = os.path.join(directory, KEY_NAME)
    for _ in range(3):
        try:
            st = os.stat(KEY_NAME, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                _publish_key(dfd)
            continue
        check_file(path, st, private=True)
        fd = os.open(KEY_NAME, _FILE_FLAGS, dir_fd=dfd)
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
                raise insecure(path, "was replaced while it was opened")
            key = os.read(fd, KEY_BYTES + 1)
        finally:
            os.close(fd)
        if len(key) == KEY_BYTES:
            return key
        log.warning("model_manager: digest cache key %s is damaged; replacing it (the digests it signed will "
                    "be hashed again)", path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(KEY_NAME, dir_fd=dfd)
    raise OSError(errno.EIO, "no usable key could be made", path)


def move_aside(directory: str) -> None:
    """A corrupt store goes to digests.sqlite3.corrupt (its WAL beside it); the next open starts a fresh one."""
    store = os.path.join(directory, STORE_NAME)
    for suffix in ("", "-wal"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(store + suffix, f"{store}.corrupt{suffix}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(store + "-shm")


def is_corrupt(exc: BaseException) -> bool:
    return getattr(exc, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def connect(directory: str, dfd: int, retry: bool = True) -> sqlite3.Connection:
    """The store, made (0600) if missing. It and SQLite's -wal and -shm beside it are checked before SQLite
    opens them: SQLite follows links and would block on a FIFO (O_EXCL opens nothing that exists)."""
    import sqlite3

    with contextlib.suppress(FileExistsError):
        os.close(os.open(STORE_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=dfd))
    for name in (STORE_NAME + "-wal", STORE_NAME + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            check_file(os.path.join(directory, name), os.stat(name, dir_fd=dfd, follow_symlinks=False), False)
    path = os.path.join(directory, STORE_NAME)
    before = os.stat(STORE_NAME, dir_fd=dfd, follow_symlinks=False)
    check_file(path, before, False)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        after = os.stat(STORE_NAME, dir_fd=dfd, follow_symlinks=False)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise insecure(path, "was replaced while it was opened")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash may lose the last commits, never corrupts
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (dev INTEGER NOT NULL, ino INTEGER NOT NULL, "
                     "entry BLOB NOT NULL, used INTEGER NOT NULL, PRIMARY KEY (dev, ino)) WITHOUT ROWID")
        return conn
    except BaseException as exc:
        conn.close()
        if not (retry and isinstance(exc, sqlite3.DatabaseError) and is_corrupt(exc)):
            raise
    log.warning("model_manager: digest cache store %s is corrupt; moved aside to %s.corrupt, starting a fresh one",
                path, STORE_NAME)
    move_aside(directory)
    return connect(directory, dfd, retry=False)
