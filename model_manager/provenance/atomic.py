"""Crash-safe writes: a file under its final name is always a whole old one or a whole new one.

Every writer of this package goes through here. The steps:

0. create the final file's folder if needed, fsyncing the parent of each folder it creates;
1. create a temporary file with a unique name (``.<name>.<random>.tmp``, ``O_EXCL``) in the
   final file's folder, so the rename below stays on one filesystem;
2. write it and ``fsync`` it (the bytes are on disk before any name points at them);
3. ``os.replace`` it over the final name (atomic on POSIX: readers see old or new, never a mix);
4. ``fsync`` the folder (the rename itself survives a power cut).

On any failure (an exception, Ctrl-C) the temporary file is removed. A process killed with
SIGKILL between 1 and 3 leaves its temporary file behind, never a torn final file; such
``.*.tmp`` files are safe to delete once no writer runs.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from model_manager.provenance.files import os_failure

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# mode 0o666 through the umask, like open(): mkstemp's 0o600 would make outputs private to one user.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC


def write_temp(final: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Steps 1 and 2: a fsynced temporary file beside ``final`` holding what ``write`` wrote."""
    make_folders(final.parent)
    try:
        while True:
            tmp = final.parent / f".{final.name}.{secrets.token_hex(8)}.tmp"
            try:
                fd = os.open(tmp, _CREATE, 0o666)
                break
            except FileExistsError:
                continue
    except OSError as exc:
        raise os_failure("create a file beside", final, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException as exc:
        remove_quietly(tmp)
        if isinstance(exc, OSError):
            raise os_failure("write", final, exc) from None
        raise
    return tmp


def make_folders(folder: Path) -> None:
    """``mkdir -p``, with each new folder's entry fsynced in its parent: a file made durable inside a
    new folder must not vanish with the folder after a power cut."""
    missing: list[Path] = []
    at = folder
    while not at.is_dir():
        missing.append(at)
        at = at.parent
    for new in reversed(missing):
        try:
            new.mkdir()
        except FileExistsError:  # another writer made it first
            pass
        except OSError as exc:
            raise os_failure("create the folder", new, exc) from None
        fsync_folder(new.parent)


def commit(tmp: Path, final: Path) -> None:
    """Steps 3 and 4: put ``tmp`` under its final name and make the rename durable."""
    try:
        os.replace(tmp, final)
    except BaseException as exc:
        remove_quietly(tmp)
        if isinstance(exc, OSError):
            raise os_failure("replace", final, exc) from None
        raise
    fsync_folder(final.parent)


def atomic_write(final: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    path = Path(final)
    commit(write_temp(path, write), path)
    return path


def atomic_write_bytes(final: str | os.PathLike[str], data: bytes) -> Path:
    def write(fh: BinaryIO) -> None:
        fh.write(data)

    return atomic_write(final, write)


def fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise os_failure("sync the folder", folder, exc) from None


def remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
