"""Reading a run folder without trusting it: regular files only, no symbolic links, bounded reads.

Every path below the run folder is opened relative to a folder descriptor, one
component at a time with ``O_NOFOLLOW``, after an ``lstat``: a FIFO, a device or
a link is described and never opened, and a link cannot lead out of the folder.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence

from model_manager import errors
from model_manager.errors import EnvironmentFailure, file_kind, shown

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
# O_NONBLOCK: should a FIFO be swapped in after the lstat, opening it must not wait for a writer.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
#: errno values that mean "the path is not there as a file" rather than "the system failed"
MISSING_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR})


class NotRegular(Exception):
    """The path exists but is not a regular file (or one of its folders is a link or not a folder)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def os_failure(action: str, path: object, exc: OSError, **where: str | None) -> EnvironmentFailure:
    return errors.os_failure(exc, f"cannot {action} {shown(str(path))}", **where,
                             hint="fix the permissions, the disk or the device the message names")


def open_folder(path: str | os.PathLike[str], what: str = "the run folder") -> int:
    """The folder the caller named (the run folder): the only path here whose links are followed."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    except OSError as exc:
        raise os_failure(f"open {what}", path, exc) from None


def open_regular(dir_fd: int, parts: Sequence[str]) -> tuple[int, os.stat_result]:
    """Open ``parts`` (a relative path split in components) under ``dir_fd`` for reading.

    Raises FileNotFoundError, NotRegular, or OSError for anything else the system says.
    """
    if not parts:
        raise NotRegular("the run folder itself")
    fds: list[int] = []
    try:
        at = dir_fd
        for name in parts[:-1]:
            try:
                at = os.open(name, _DIR_FLAGS, dir_fd=at)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise NotRegular(f"below a symbolic link ({shown(name)})") from None
                if exc.errno == errno.ENOTDIR:
                    raise NotRegular(f"below something that is not a folder ({shown(name)})") from None
                raise
            fds.append(at)
        st = os.stat(parts[-1], dir_fd=at, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(file_kind(st.st_mode))
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=at)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # swapped for a link since the lstat
                raise NotRegular("a symbolic link") from None
            raise
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            os.close(fd)
            raise NotRegular("replaced while it was being opened")
        return fd, opened
    finally:
        for fd_ in fds:
            os.close(fd_)


def read_all(fd: int, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of ``fd`` from where it stands; None if there are more."""
    chunks: list[bytes] = []
    total = 0
    while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            return None
    return b"".join(chunks)


def walk(dir_fd: int, suffix: str) -> tuple[list[tuple[str, str]], list[tuple[str, OSError]]]:
    """Every entry named ``*suffix`` below ``dir_fd`` as (relative POSIX path, what it is).

    Folders are entered with ``O_NOFOLLOW``: a link to a folder is never walked into. Only one
    folder is open at a time, however wide the tree. Returns the entries found and the folders
    that could not be read (with the error).
    """
    found: list[tuple[str, str]] = []
    failed: list[tuple[str, OSError]] = []
    stack: list[tuple[str, ...]] = [()]
    while stack:
        parts = stack.pop()
        prefix = "".join(p + "/" for p in parts)
        try:
            fd = _open_folder_at(dir_fd, parts)
        except OSError as exc:
            failed.append((prefix.rstrip("/"), exc))
            continue
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError as exc:
                        failed.append((prefix + entry.name, exc))
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        stack.append((*parts, entry.name))
                    if entry.name.endswith(suffix):
                        found.append((prefix + entry.name, file_kind(st.st_mode)))
        except OSError as exc:
            failed.append((prefix.rstrip("/") or ".", exc))
        finally:
            os.close(fd)
    found.sort()
    return found, failed


def _open_folder_at(dir_fd: int, parts: Sequence[str]) -> int:
    at = os.dup(dir_fd)
    try:
        for name in parts:
            below = os.open(name, _DIR_FLAGS, dir_fd=at)
            os.close(at)
            at = below
    except BaseException:
        os.close(at)
        raise
    return at
