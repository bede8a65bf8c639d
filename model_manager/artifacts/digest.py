"""weights_digest exactly as docs/mapping.md defines it, for files and for folders.

A folder is walked once (no stat of a file the cache knows nothing about),
its files are looked up in the cache with one query per 500, and only the
files without a valid row are opened: open, fstat, read, fstat, close. Files
of 8 MiB and more are hashed on worker threads (hashlib drops the GIL while
it hashes); small ones are not: a thread hand-off costs more than hashing a
few KiB on this kind of machine (bench/bench_folder_digest.py).
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import TYPE_CHECKING

from model_manager.artifacts.cache import DigestCache, Key
from model_manager.artifacts.paths import inside
from model_manager.errors import EnvironmentFailure, InvalidModelSpec, ModelArtifactMissing, os_failure, shown

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

# 256 KiB reads into one reused buffer: measured fastest here (fits L2, no
# per-read allocation); hashlib drops the GIL while it hashes.
_CHUNK = 1 << 18
_THREADED = 8 << 20  # files from this size up are hashed on worker threads
_OPEN = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC  # O_NONBLOCK: a FIFO never blocks the open
_Where = dict[str, str | None]


def _read_digest(fd: int, size: int) -> bytes:
    if size < _CHUNK:
        data = os.read(fd, size + 1)
        if len(data) == size:  # a short read of a regular file: its end
            return hashlib.sha256(data).digest()
        h = hashlib.sha256(data)  # the file changed under us: read on to its end
    else:
        h = hashlib.sha256()
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    while n := os.readv(fd, (buf,)):
        h.update(view[:n])
    return h.digest()


def _not_regular(path: str, where: _Where) -> InvalidModelSpec:
    return InvalidModelSpec(f"{shown(path)} is not a regular file", **where,
                            hint="model folders hold regular files only")


def _hash(path: str, flags: int, where: _Where, defer_from: int | None = None
          ) -> tuple[bytes, os.stat_result, bool] | None:
    """(SHA-256 digest, stat after reading, whether the stat held still while it was read); None when the file is
    at least ``defer_from`` bytes (the caller hashes it on a thread)."""
    fd = os.open(path, flags)
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise _not_regular(path, where)
        if defer_from is not None and before.st_size >= defer_from:
            return None
        digest = _read_digest(fd, before.st_size)
        after = os.fstat(fd)
    except OSError as exc:
        exc.filename = exc.filename or path  # os.read and os.fstat do not name the file
        raise
    finally:
        os.close(fd)
    still = (before.st_size, before.st_mtime_ns, before.st_ctime_ns) == (
        after.st_size, after.st_mtime_ns, after.st_ctime_ns)
    return digest, after, still


def sha256_hex_of_file(path: str) -> str:
    """Hex SHA-256 of a file's bytes, with no cache."""
    hashed = _hash(path, _OPEN, {})
    assert hashed is not None
    return hashed[0].hex()


def file_hex(path: str, cache: DigestCache, st: os.stat_result | None = None) -> str:
    """Hex SHA-256 of a file through the cache: an unchanged file costs a stat and one row lookup."""
    hit = cache.lookup(st or os.stat(path)) if cache.enabled else None
    if hit is not None:
        return hit
    hashed = _hash(path, _OPEN, {})
    assert hashed is not None
    digest, after, still = hashed
    if still:
        cache.store_many([((after.st_dev, after.st_ino), after, digest)])
    return digest.hex()


def _link_target_stat(path: str, root: str, rel: str, where: _Where) -> tuple[str, os.stat_result]:
    real = os.path.realpath(path)
    if not inside(real, root):
        raise InvalidModelSpec(f"symbolic link {shown(rel)} leads outside the models root (to {shown(real)})",
                               **where, hint="replace the link by the file, or link only within the models root")
    try:
        st = os.stat(real)
    except FileNotFoundError:
        raise ModelArtifactMissing(f"symbolic link {shown(rel)} points to a missing file", **where,
                                   hint="restore the file the link names") from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidModelSpec(f"symbolic link {shown(rel)} does not point to a regular file", **where,
                               hint="model folders may link to files only, not to folders")
    return real, st


# One file of a folder: UTF-8 name, path to open, cache key, stat if already known (link targets).
_File = tuple[bytes, str, Key, os.stat_result | None]


def walk(folder: str, dev: int, root: str, where: _Where) -> list[_File]:
    """Every regular file below ``folder`` as the folder digest counts it (.git left out; links to files
    inside ``root`` followed, any other link or kind refused)."""
    files: list[_File] = []
    stack = [("", folder, dev)]
    while stack:
        rel_dir, abs_dir, dir_dev = stack.pop()
        with os.scandir(abs_dir) as it:
            for entry in it:
                rel = rel_dir + entry.name
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != ".git":
                        stack.append((rel + "/", entry.path, entry.stat(follow_symlinks=False).st_dev))
                    continue
                try:
                    name = rel.encode("utf-8")
                except UnicodeEncodeError:
                    raise InvalidModelSpec(f"file name {shown(rel)} is not UTF-8", **where,
                                           hint="rename the file to a UTF-8 name") from None
                if entry.is_file(follow_symlinks=False):
                    # the folder's st_dev and the entry's d_ino: a lookup key without a stat of the file
                    files.append((name, entry.path, (dir_dev, entry.inode()), None))
                elif entry.is_symlink():
                    real, st = _link_target_stat(entry.path, root, rel, where)
                    files.append((name, real, (st.st_dev, st.st_ino), st))
                else:
                    raise _not_regular(rel, where)
    return files


def _folder_text(folder: str, dev: int, root: str, cache: DigestCache, where: _Where) -> bytes:
    files = walk(folder, dev, root, where)
    if not files:
        raise InvalidModelSpec(f"empty model folder {shown(folder)}: no regular file below it (.git left out)",
                               **where, hint="put the model's files in the folder, or name the weights file")
    rows = cache.rows([f[2] for f in files]) if cache.enabled else {}
    digests: list[bytes] = []
    to_store: list[tuple[Key, os.stat_result, bytes]] = []
    deferred: list[tuple[int, Key, Future[tuple[bytes, os.stat_result, bool] | None]]] = []
    pool: ThreadPoolExecutor | None = None
    flags = _OPEN | os.O_NOFOLLOW
    threads = min(4, os.cpu_count() or 1)
    threaded_from = _THREADED if threads > 1 else None
    try:
        for _name, path, key, known in files:
            entry = rows.get(key) if rows else None
            if entry is not None:
                hit = cache.check(entry, known or os.lstat(path))
                if hit is not None:
                    digests.append(hit)
                    continue
            hashed = _hash(path, flags, where, threaded_from)
            if hashed is None:
                if pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    pool = ThreadPoolExecutor(threads, thread_name_prefix="mm-digest")
                deferred.append((len(digests), key, pool.submit(_hash, path, flags, where)))
                digests.append(b"")
                continue
            if hashed[2]:
                to_store.append((key, hashed[1], hashed[0]))
            digests.append(hashed[0])
        for i, key, future in deferred:
            hashed = future.result()
            assert hashed is not None
            digests[i] = hashed[0]
            if hashed[2]:
                to_store.append((key, hashed[1], hashed[0]))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    cache.store_many(to_store)
    lines = sorted(zip([f[0] for f in files], digests, strict=True))
    return b"".join([b"%s  %s\n" % (digest.hex().encode(), name) for name, digest in lines])


def _os_failure(exc: OSError, path: str, where: _Where) -> EnvironmentFailure:
    return os_failure(exc, shown(exc.filename or path), **where,
                      hint="fix the file or folder named (its permissions, a symbolic-link loop, a failing disk); "
                           "the mapping is not at fault")


def weights_digest(
    path: str, root: str, cache: DigestCache, *, component: str | None = None,
    role: str | None = None, field: str | None = None,
) -> str:
    """``sha256:<hex>`` of a file or folder that lies (really) below ``root``.

    An OS error becomes EnvironmentFailure naming the path and the errno; a file that is not there,
    ModelArtifactMissing. The cache's writes for one call are one transaction.
    """
    where: _Where = {"component": component, "role": role, "field": field}
    try:
        with cache.batch():
            st = os.stat(path)
            if stat.S_ISREG(st.st_mode):
                return "sha256:" + file_hex(path, cache, st)
            if not stat.S_ISDIR(st.st_mode):
                raise InvalidModelSpec(f"{shown(path)} is neither a file nor a folder", **where,
                                       hint="name a weights file or a model folder")
            return "sha256:" + hashlib.sha256(_folder_text(path, st.st_dev, root, cache, where)).hexdigest()
    except FileNotFoundError as exc:
        raise ModelArtifactMissing(f"{shown(exc.filename or path)} is not there (ENOENT)", **where,
                                   hint="prepare the weights before the run; nothing is downloaded") from None
    except OSError as exc:
        raise _os_failure(exc, path, where) from None
