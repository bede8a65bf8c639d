"""On-disk cache of file digests, so an unchanged file costs one ``stat``.

One small entry file per (device, inode), holding the size, mtime_ns and
ctime_ns the digest was taken at, plus a checksum of the entry itself. Entries
are written to a temporary file and renamed over the old one (atomic on
POSIX), so concurrent workers never read a half-written entry, and a process
killed mid-write leaves at worst a stray temporary file. An entry that does
not parse, fails its checksum or describes another stat is ignored and
rewritten: the cache is never trusted over the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time

log = logging.getLogger(__name__)

_FORMAT = "mmdc1"
# A file touched this recently may still change within the filesystem's
# timestamp granularity without its stat changing ("racy" in git's words):
# hash it, but do not remember the digest until it has settled.
RACY_WINDOW_NS = 2_000_000_000


def default_cache_dir() -> str:
    explicit = os.environ.get("MM_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "model_manager")


def _stat_key(st: os.stat_result) -> str:
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


def _checksum(key: str, hexdigest: str) -> str:
    return hashlib.sha256(f"{_FORMAT} {key} {hexdigest}".encode()).hexdigest()[:16]


class DigestCache:
    """A digest cache in ``directory``; ``DigestCache(None)`` remembers nothing."""

    def __init__(self, directory: str | None) -> None:
        self.directory = os.path.join(directory, _FORMAT) if directory else None
        self._made = False

    def _entry_path(self, st: os.stat_result) -> str:
        assert self.directory is not None
        return os.path.join(self.directory, f"{st.st_dev:x}-{st.st_ino:x}")

    def lookup(self, st: os.stat_result) -> str | None:
        """The hex digest stored for exactly this stat, or None."""
        if self.directory is None:
            return None
        try:
            with open(self._entry_path(st), "rb") as fh:
                raw = fh.read(256)
        except OSError:
            return None
        parts = raw.decode("ascii", "replace").split()
        if len(parts) != 6 or parts[0] != _FORMAT:
            return None
        key, hexdigest, check = " ".join(parts[1:4]), parts[4], parts[5]
        if key != _stat_key(st) or check != _checksum(key, hexdigest) or len(hexdigest) != 64:
            return None
        return hexdigest

    def store(self, st: os.stat_result, hexdigest: str) -> None:
        """Remember a digest for this stat, unless the file is too fresh to trust its stat."""
        if self.directory is None:
            return
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_WINDOW_NS:
            return
        key = _stat_key(st)
        line = f"{_FORMAT} {key} {hexdigest} {_checksum(key, hexdigest)}\n".encode()
        try:
            if not self._made:
                os.makedirs(self.directory, exist_ok=True)
                self._made = True
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
            os.replace(tmp, self._entry_path(st))
        except OSError as exc:
            # A read-only or full cache costs speed, never correctness.
            log.warning("model_manager: digest cache %s not writable (%s); hashing without it",
                        self.directory, exc)
            self.directory = None
