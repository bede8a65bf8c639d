"""Read an artifact for loading and check the bytes read, not the file's name, against the pinned digest.

The manager verified each artifact at construction (through the digest cache). A runtime that then
opened the path again could load other bytes: a file swapped in between, or a change the cache did not
see. So a loader reads the file once, hashes exactly the bytes it read, refuses on a mismatch and builds
the model from those bytes: what runs is what was verified.
"""

from __future__ import annotations

import hashlib
import os
import stat

from model_manager.artifacts.digest import walk
from model_manager.errors import (
    EnvironmentFailure,
    InvalidModelSpec,
    ModelArtifactMissing,
    WeightsDigestMismatch,
    os_failure,
    shown,
)

_OPEN = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_Where = dict[str, str | None]


def _read(path: str, where: _Where, follow: bool = True) -> bytes:
    fd = os.open(path, _OPEN if follow else _OPEN | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidModelSpec(f"{shown(path)} is not a regular file", **where,
                                   hint="name a weights file or a model folder of regular files")
        chunks: list[bytes] = []
        while chunk := os.read(fd, max(st.st_size + 1, 1 << 16) if not chunks else 1 << 24):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _mismatch(path: str, actual: str, pinned: str, where: _Where) -> WeightsDigestMismatch:
    return WeightsDigestMismatch(
        f"the bytes read from {shown(path)} to load it hash to {actual}, but the mapping pins {pinned} "
        "(the artifact changed after the manager verified it)",
        **{**where, "field": "weights_digest"},
        hint="restore the pinned weights and build a new ModelManager; nothing was loaded")


def _failure(exc: OSError, path: str, where: _Where) -> EnvironmentFailure | ModelArtifactMissing:
    if isinstance(exc, FileNotFoundError):
        return ModelArtifactMissing(f"{shown(exc.filename or path)} is gone (ENOENT) since the manager verified it",
                                    **where, hint="restore the weights; nothing is downloaded")
    return os_failure(exc, shown(exc.filename or path), **where,
                      hint="fix the file or folder named (its permissions, a failing disk)")


def read_verified_file(path: str, pinned: str, *, component: str | None = None, role: str | None = None,
                       field: str | None = None) -> bytes:
    """The bytes of the file ``path``, whose SHA-256 is the pinned ``sha256:<hex>`` digest."""
    where: _Where = {"component": component, "role": role, "field": field}
    try:
        data = _read(path, where)
    except OSError as exc:
        raise _failure(exc, path, where) from None
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != pinned:
        raise _mismatch(path, actual, pinned, where)
    return data


def read_verified_folder(path: str, root: str, pinned: str, *, component: str | None = None,
                         role: str | None = None, field: str | None = None) -> dict[str, bytes]:
    """Every file of the model folder ``path`` (relative POSIX name -> bytes), whose folder digest
    (docs/mapping.md) computed from exactly these bytes is ``pinned``."""
    where: _Where = {"component": component, "role": role, "field": field}
    try:
        files = walk(path, os.stat(path).st_dev, root, where)
        contents = {name: _read(real, where, follow=known is not None) for name, real, _key, known in files}
    except OSError as exc:
        raise _failure(exc, path, where) from None
    lines = [b"%s  %s\n" % (hashlib.sha256(data).hexdigest().encode(), name)
             for name, data in sorted(contents.items())]
    actual = "sha256:" + hashlib.sha256(b"".join(lines)).hexdigest()
    if actual != pinned:
        raise _mismatch(path, actual, pinned, where)
    return {name.decode("utf-8"): data for name, data in contents.items()}


def read_verified(path: str, root: str, pinned: str, *, component: str | None = None, role: str | None = None,
                  field: str | None = None) -> bytes | dict[str, bytes]:
    """A file's bytes, or a folder's files by relative name; either way checked against ``pinned``."""
    try:
        is_folder = stat.S_ISDIR(os.stat(path).st_mode)
    except OSError as exc:
        raise _failure(exc, path, {"component": component, "role": role, "field": field}) from None
    if is_folder:
        return read_verified_folder(path, root, pinned, component=component, role=role, field=field)
    return read_verified_file(path, pinned, component=component, role=role, field=field)
