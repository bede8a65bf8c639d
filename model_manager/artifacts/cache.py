"""The digest cache: an unchanged file costs one ``stat`` and one (batched) row lookup.

One SQLite store in WAL mode, ``<cache dir>/digests.sqlite3``, one row per
(st_dev, st_ino): the size, mtime_ns and ctime_ns the digest was taken at, the
digest, and a tag keyed with a per-cache secret (``digests.key``), so that a
row cannot be forged without the key. The folder, the key and the store must
belong to this user and be closed to others (as ssh treats a private key);
anything else raises DigestCacheInsecure. Every other cache problem (locked,
corrupt, full, read-only) logs one warning and the run hashes without it:
the cache costs speed, never correctness. docs/digest-cache.md says what it
trusts and what it cannot see.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import struct
import threading
import time
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

from model_manager.artifacts.cache_files import (
    STORE_NAME,
    TABLE,
    connect,
    is_corrupt,
    load_key,
    move_aside,
    open_private_dir,
)
from model_manager.errors import EnvironmentFailure, shown

if TYPE_CHECKING:
    import sqlite3

log = logging.getLogger(__name__)

# A file touched this recently may still change within the filesystem's
# timestamp granularity without its stat changing ("racy" in git's words):
# hash it, but do not remember the digest until it has settled.
RACY_WINDOW_NS = 2_000_000_000
#: rows kept; past it the oldest are dropped, down to three quarters of it
MAX_ROWS = 200_000
VERIFY_ENV = "MM_VERIFY"

_QUERY_CHUNK = 500  # keys per SELECT ... IN (...)
_HALF, _WRAP = 1 << 63, 1 << 64  # st_dev and st_ino are unsigned 64-bit, SQLite integers signed
_MIN_ROW_BYTES = 64  # no row takes less: below MAX_ROWS * this, the store cannot be over its bound
# What the tag signs: dev, ino, size, mtime_ns, ctime_ns, digest. A row's entry is the same bytes without dev
# and ino (they are its key), then the 16-byte tag: as long as what is signed, 72 bytes.
_SIGNED = struct.Struct("<QQQqq32s")

_INHERITED: list[sqlite3.Connection] = []

Key = tuple[int, int]  # (st_dev, st_ino); a folder walk uses (the folder's st_dev, the entry's d_ino)


def default_cache_dir() -> str:
    explicit = os.environ.get("MM_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "model_manager")


def open_cache(verify: str | None = None) -> DigestCache:
    """The digest cache at ``$MM_CACHE_DIR`` (else the user's cache folder), as ``verify`` or else
    ``$MM_VERIFY`` asks: unset or ``cache`` uses it, ``full`` re-hashes every artifact."""
    mode = os.environ.get(VERIFY_ENV, "") if verify is None else verify
    if mode in ("", "cache"):
        return DigestCache(default_cache_dir())
    if mode == "full":
        return DigestCache(None)
    raise EnvironmentFailure(f"{VERIFY_ENV}={shown(mode)} is not one of: cache, full",
                             field=VERIFY_ENV, hint=f"unset {VERIFY_ENV}, or set it to 'cache' (use the digest "
                             "cache) or 'full' (hash every artifact again)")


class DigestCache:
    """Remembered digests in ``directory`` (made 0700 on first use); ``DigestCache(None)`` remembers nothing.

    Nothing is opened until the first lookup or store. Stores are written at the end of the outermost
    ``batch()`` (one transaction), or at once outside a batch.
    """

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self._off = directory is None  # True: nothing looked up, nothing remembered
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._mac = hashlib.blake2b(digest_size=16)
        self._depth = 0
        self._pending: dict[Key, tuple[bytes, int]] = {}  # rows to write: (entry, day it was stored)
        self._real_dir: str | None = None  # the real path of the checked folder, once opened
        self._lock = threading.RLock()

    def __del__(self) -> None:
        # Python's sqlite3 connection sits in a reference cycle (its statement cache): without this, a dropped
        # cache would keep the store open until the cyclic garbage collector runs.
        try:
            self._close()
        except Exception:  # at interpreter exit, what it needs may be gone already
            pass

    def _close(self) -> None:
        if self._conn is not None and self._pid != os.getpid():
            _INHERITED.append(self._conn)  # a copy made by fork(): SQLite forbids using or closing it here
        elif self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    @property
    def enabled(self) -> bool:
        """False for ``DigestCache(None)`` and once a cache problem made this cache give up."""
        return not self._off

    def _give_up(self, exc: BaseException) -> None:
        """A locked, full, read-only or corrupt store: one warning, no cache for this run; a corrupt store is
        moved aside so that the next run starts a fresh one."""
        what = "not usable"
        if is_corrupt(exc) and self._real_dir is not None:
            what = f"is corrupt: moved aside to {STORE_NAME}.corrupt for the next run to start afresh"
            with contextlib.suppress(OSError):
                move_aside(self._real_dir)
        log.warning("model_manager: digest cache %s %s (%s: %s); hashing without it", self.directory, what,
                    type(exc).__name__, exc)
        self._off = True
        self._pending.clear()
        self._close()

    def _store(self) -> sqlite3.Connection | None:
        if self._off:
            return None
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        import sqlite3

        assert self.directory is not None
        self._close()
        dfd = -1
        try:
            directory, dfd = open_private_dir(self.directory)
            self._real_dir = directory
            self._mac = hashlib.blake2b(key=load_key(directory, dfd), digest_size=16, person=b"mm-digest-v1")
            self._conn = connect(directory, dfd)
            self._pid = os.getpid()
        except (OSError, sqlite3.Error) as exc:
            self._give_up(exc)
        finally:
            if dfd >= 0:
                os.close(dfd)
        return self._conn

    def _tag(self, signed: bytes) -> bytes:
        mac = self._mac.copy()  # keyed BLAKE2b, its key already absorbed
        mac.update(signed)
        return mac.digest()

    def rows(self, keys: Collection[Key]) -> dict[Key, bytes]:
        """The stored entries of these keys (one query per 500 keys), unchecked: pass each to ``check``."""
        if self._off or not keys:
            return {}
        import sqlite3

        with self._lock:
            conn = self._store()
            if conn is None:
                return {}
            by_dev: dict[int, list[int]] = {}
            for dev, ino in keys:
                by_dev.setdefault(dev, []).append(ino if ino < _HALF else ino - _WRAP)
            found: dict[Key, bytes] = {}
            try:
                for dev, inos in by_dev.items():
                    for i in range(0, len(inos), _QUERY_CHUNK):
                        part = inos[i:i + _QUERY_CHUNK]
                        marks = ",".join("?" * len(part))
                        sql = f"SELECT ino, entry FROM {TABLE} WHERE dev = ? AND ino IN ({marks})"
                        for ino, entry in conn.execute(sql, (dev if dev < _HALF else dev - _WRAP, *part)):
                            found[(dev, ino if ino >= 0 else ino + _WRAP)] = entry
            except sqlite3.Error as exc:
                self._give_up(exc)
                return {}
            for key in self._pending.keys() & keys:
                found[key] = self._pending[key][0]
            return found

    def check(self, entry: bytes, st: os.stat_result) -> bytes | None:
        """The entry's digest if it was stored (with this cache's key) for exactly this stat, else None."""
        if len(entry) != _SIGNED.size or self._off:
            return None
        signed = _SIGNED.pack(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, entry[24:56])
        if signed[16:] != entry[:56] or not hmac.compare_digest(entry[56:], self._tag(signed)):
            return None
        return entry[24:56]

    def lookup(self, st: os.stat_result) -> str | None:
        """The hex digest remembered for exactly this stat, or None."""
        key = (st.st_dev, st.st_ino)
        entry = self.rows((key,)).get(key)
        digest = None if entry is None else self.check(entry, st)
        return None if digest is None else digest.hex()

    def store(self, st: os.stat_result, hexdigest: str, key: Key | None = None) -> None:
        """Remember a digest taken at this stat (under ``key``, else the stat's own), unless the file is too
        fresh to trust its stat. Written at the end of the outermost batch, or at once outside one."""
        self.store_many([(key or (st.st_dev, st.st_ino), st, bytes.fromhex(hexdigest))])

    def store_many(self, items: Collection[tuple[Key, os.stat_result, bytes]]) -> None:
        """``store`` for many (key, stat, raw SHA-256 digest)."""
        settled = time.time_ns() - RACY_WINDOW_NS
        items = [item for item in items if max(item[1].st_mtime_ns, item[1].st_ctime_ns) <= settled]
        if self._off or not items:
            return
        with self._lock:
            if self._store() is None:
                return
            today, pending, pack, tag = int(time.time()) // 86400, self._pending, _SIGNED.pack, self._tag
            for key, st, digest in items:
                signed = pack(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, digest)
                pending[key] = (signed[16:] + tag(signed), today)
            if self._depth == 0:
                self._flush()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Stores inside are written in one transaction when the outermost batch ends."""
        with self._lock:
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._flush()

    def close(self) -> None:
        with self._lock:
            self._flush()
            self._close()

    def _flush(self) -> None:
        if self._off or not self._pending or self._conn is None or self._pid != os.getpid():
            return
        import sqlite3

        pending, self._pending, conn = self._pending, {}, self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = [(dev if dev < _HALF else dev - _WRAP, ino if ino < _HALF else ino - _WRAP, entry, used)
                        for (dev, ino), (entry, used) in pending.items()]
                conn.executemany(f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?)", rows)
                _prune(conn)
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self._give_up(exc)


def _prune(conn: sqlite3.Connection) -> None:
    """Past MAX_ROWS rows, drop the oldest (by the day they were stored) down to three quarters of it."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
    if pages * conn.execute("PRAGMA page_size").fetchone()[0] < MAX_ROWS * _MIN_ROW_BYTES:
        return
    (count,) = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
    if count > MAX_ROWS:
        conn.execute(f"DELETE FROM {TABLE} WHERE (dev, ino) IN (SELECT dev, ino FROM {TABLE} ORDER BY used LIMIT ?)",
                     (count - MAX_ROWS * 3 // 4,))
