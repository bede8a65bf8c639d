"""Artifact paths: relative to the models root, never leaving it (docs/mapping.md)."""

from __future__ import annotations

import os
import posixpath
import stat

from model_manager.errors import (
    EnvironmentFailure,
    InvalidModelSpec,
    ModelArtifactMissing,
    ModelsRootMissing,
    file_kind,
    shown,
)

MODELS_ROOT_ENV = "MM_MODELS_ROOT"


def models_root(component: str | None = None, role: str | None = None) -> str:
    """The real path of ``$MM_MODELS_ROOT``; an error if it is unset or not a folder."""
    value = os.environ.get(MODELS_ROOT_ENV)
    if not value:
        raise ModelsRootMissing(
            f"{MODELS_ROOT_ENV} is not set, but the mapping names in-process artifacts",
            component=component, role=role, field=MODELS_ROOT_ENV,
            hint=f"export {MODELS_ROOT_ENV}=/path/to/prepared/models",
        )
    real = os.path.realpath(value)
    if not os.path.isdir(real):
        raise ModelsRootMissing(
            f"{MODELS_ROOT_ENV}={shown(value)} is not an existing folder",
            component=component, role=role, field=MODELS_ROOT_ENV,
            hint="point it at the folder that holds the prepared weights",
        )
    return real


def check_relative(rel: str, *, component: str, role: str, field: str) -> str:
    """Refuse absolute paths, drive letters, backslashes, '..' and empty parts; return the normal form."""
    problem = None
    if "\x00" in rel:
        problem = "contains a NUL byte"
    elif rel.startswith(("/", "\\")) or (len(rel) > 1 and rel[1] == ":"):
        problem = "is absolute"
    elif "\\" in rel:
        problem = "uses backslashes"
    elif ".." in rel.split("/"):
        problem = "has a '..' part"
    if problem:
        raise InvalidModelSpec(
            f"artifact path {rel!r} {problem}", component=component, role=role, field=field,
            hint=f"write a POSIX path relative to {MODELS_ROOT_ENV}, inside it",
        )
    norm = posixpath.normpath(rel)
    if norm in (".", ""):
        raise InvalidModelSpec(f"artifact path {rel!r} names the models root itself",
                               component=component, role=role, field=field,
                               hint="name the model's file or folder below the root")
    return norm


def inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def resolve_artifact(root: str, rel: str, *, component: str, role: str, field: str) -> str:
    """The real, existing path of an artifact below ``root`` (itself a real path)."""
    norm = check_relative(rel, component=component, role=role, field=field)
    joined = os.path.join(root, norm)
    real = os.path.realpath(joined)
    if not inside(real, root):
        raise InvalidModelSpec(
            f"artifact path {rel!r} leads outside the models root through a symbolic link (to {real!r})",
            component=component, role=role, field=field,
            hint="copy the weights under the models root instead of linking out of it",
        )
    if not os.path.exists(real):
        raise ModelArtifactMissing(
            f"artifact {rel!r} is not under the models root {root!r}",
            component=component, role=role, field=field,
            hint="prepare the weights before the run; nothing is downloaded and there is no fallback",
        )
    return real


def check_plain_artifact(real: str, rel: str, *, component: str, role: str, field: str) -> None:
    """An artifact that is not digested (a tokenizer) must still be a regular file or a non-empty
    folder: never a FIFO, a device or a socket, which would hang or feed endless bytes to its reader."""
    where = {"component": component, "role": role, "field": field}
    try:
        st = os.stat(real)
        if stat.S_ISREG(st.st_mode):
            return
        if stat.S_ISDIR(st.st_mode):
            with os.scandir(real) as entries:
                if any(entry.name != ".git" for entry in entries):
                    return
            raise InvalidModelSpec(f"artifact {shown(rel)} is an empty folder", **where,
                                   hint="prepare the artifact's files under the models root")
    except OSError as exc:
        raise EnvironmentFailure(f"artifact {shown(rel)} cannot be read: {exc.strerror or exc}", **where,
                                 hint="check the file's permissions under the models root") from None
    raise InvalidModelSpec(f"artifact {shown(rel)} is {file_kind(st.st_mode)}, not a regular file or folder", **where,
                           hint="name a file or a folder of files, not a FIFO, device or socket")
