"""Writing NPZ outputs: arrays plus their provenance ``meta``, crash-safe, readable without pickle."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from model_manager.errors import OutputInvalid, shown
from model_manager.provenance.atomic import commit, write_temp
from model_manager.provenance.files import os_failure
from model_manager.provenance.npz_read import META_KEY, check_meta
from model_manager.provenance.signature import canonical_json


def save_npz(path: str | os.PathLike[str], meta: dict[str, Any], /, **arrays: Any) -> Path:
    """Write ``arrays`` plus ``meta`` (from ``mm.npz_meta_for(component)``) as a compressed NPZ, atomically.

    Records nothing in a manifest: inside a run folder use :func:`save_output`. Raises OutputInvalid,
    before anything is written, for bad meta, an array called ``meta`` or an array of Python objects.
    """
    out = Path(path)
    commit(write_npz_temp(out, meta, arrays), out)
    return out


def write_npz_temp(final: Path, meta: dict[str, Any], arrays: dict[str, Any]) -> Path:
    """The NPZ written and fsynced under a temporary name beside ``final`` (see ``atomic``)."""
    import numpy as np

    members = checked_arrays(meta, arrays, str(final))
    members[META_KEY] = np.array(canonical_json(meta).decode("utf-8"))
    return write_temp(final, lambda fh: np.savez_compressed(fh, **members))


def checked_arrays(meta: dict[str, Any], arrays: dict[str, Any], where: str) -> dict[str, Any]:
    """``arrays`` as numpy arrays, or OutputInvalid: nothing that needs pickle to be read back."""
    import numpy as np

    check_meta(meta, where, writing=True)
    out: dict[str, Any] = {}
    for name, value in arrays.items():
        if name == META_KEY:
            raise OutputInvalid(f"{shown(where)}: an output array may not be called {META_KEY!r}", field=META_KEY,
                                hint="rename the array; 'meta' holds the provenance")
        if not name or "/" in name or not name.isprintable():
            raise OutputInvalid(f"{shown(where)}: {shown(name)} is not an array name", field="arrays",
                                hint="name arrays with plain printable names without '/'")
        try:
            array = np.asanyarray(value)
        except (ValueError, TypeError) as exc:
            raise OutputInvalid(f"{shown(where)}: array {shown(name)} is not an array ({shown(str(exc))})",
                                field=name[:120], hint="pass numpy arrays") from None
        if array.dtype.hasobject:
            raise OutputInvalid(f"{shown(where)}: array {shown(name)} holds Python objects (dtype "
                                f"{shown(str(array.dtype))}); reading it back would need pickle", field=name[:120],
                                hint="convert it to a numeric, bool or fixed-width string dtype")
        out[name] = array
    return out


def file_digest(path: Path) -> tuple[str, int]:
    """(``sha256:<hex>``, size) of a file this process just wrote."""
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise os_failure("read back", path, exc) from None
    return "sha256:" + digest.hexdigest(), size
