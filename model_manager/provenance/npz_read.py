"""Reading an NPZ's provenance without trusting the file.

An NPZ is a zip of ``.npy`` members. Its ``meta`` member is one 0-d unicode array of canonical
JSON holding exactly ``models_used`` and ``model_signature``. Everything read here is bounded
before it is read: the member count (from the zip's end record, before ``zipfile`` parses the
central directory), the meta's size (declared and actual), each ``.npy`` header; only stored or
deflated members are read (their decompression is bounded), and nothing is ever unpickled.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

from model_manager.errors import (
    ModelManagerError,
    ModelSignatureMismatch,
    OutputInvalid,
    OutputMissing,
    ProvenanceInvalid,
    shown,
)
from model_manager.provenance.files import NotRegular, open_folder, open_regular, os_failure
from model_manager.provenance.signature import encodable, model_signature

META_KEY = "meta"
#: the most bytes a ``meta.npy`` member may hold; real ones are a few KiB
MAX_META_BYTES = 1 << 20
#: the most members an NPZ may hold (each is one array), and the most bytes their central directory may take
MAX_MEMBERS = 1024
MAX_CENTRAL_DIRECTORY = 1 << 20
META_KEYS = frozenset({"models_used", "model_signature"})
ENTRY_KEYS = frozenset({"component", "role", "model_name", "model_version", "weights_digest", "runtime", "engine",
                        "precision", "device", "preprocess_preset"})
_WRITE_HINT = "write outputs with model_manager.provenance.save_output (or save_npz)"
# What a malformed zip or .npy can make zipfile and numpy raise; anything else is a bug here.
_PARSE_ERRORS = (zipfile.BadZipFile, zlib.error, struct.error, OSError, EOFError, ValueError, TypeError,
                 NotImplementedError, RuntimeError, OverflowError, SyntaxError, RecursionError, UnicodeError)


def check_meta(meta: object, where: str, *, writing: bool = False, component: str | None = None) -> None:
    """``meta`` is exactly {models_used, model_signature}, one component, and the signature matches.

    Raises OutputInvalid when ``writing``; otherwise ProvenanceInvalid, or ModelSignatureMismatch
    for a signature that is not the one of its models_used. ``component`` names where the meta was
    expected while its own cannot be read.
    """
    hint = "use mm.npz_meta_for(component): exactly models_used and model_signature"
    bad = OutputInvalid if writing else ProvenanceInvalid
    place = shown(where)
    if not isinstance(meta, dict) or set(meta) != META_KEYS:
        got = sorted(map(str, meta))[:6] if isinstance(meta, dict) else type(meta).__name__
        raise bad(f"{place}: meta must hold exactly {sorted(META_KEYS)}, not {shown(got)}", component=component,
                  field=META_KEY, hint=hint)
    used, signature = meta["models_used"], meta["model_signature"]
    if not isinstance(used, list) or not used or not all(_is_entry(e) for e in used):
        raise bad(f"{place}: meta.models_used is not a non-empty list of models_used entries (ten keys, "
                  "string values)", component=component, field="meta.models_used", hint=hint)
    if not encodable(used):
        raise bad(f"{place}: meta.models_used holds a string that is not valid Unicode", component=component,
                  field="meta.models_used", hint=hint)
    components = {e["component"] for e in used}
    if len(components) != 1:
        raise bad(f"{place}: meta.models_used mixes components {shown(sorted(components))}",
                  component=component, field="meta.models_used", hint=hint)
    roles = [e["role"] for e in used]
    if roles != sorted(set(roles)):
        raise bad(f"{place}: meta.models_used is not one entry per role sorted by role", field="meta.models_used",
                  component=used[0]["component"], hint=hint)
    if not isinstance(signature, str) or model_signature(used) != signature:
        error = OutputInvalid if writing else ModelSignatureMismatch
        raise error(f"{place}: meta.model_signature {shown(signature)} is not the signature of meta.models_used",
                    component=used[0]["component"], field="meta.model_signature",
                    hint="the meta was edited by hand or written by other code; re-run the component")


def _is_entry(entry: object) -> bool:
    return (isinstance(entry, dict) and set(entry) == ENTRY_KEYS
            and all(isinstance(v, str) or (k == "preprocess_preset" and v is None) for k, v in entry.items()))


def read_npz_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated ``meta`` of an NPZ written by :func:`save_npz`; never unpickles, never follows a link.

    Raises OutputMissing (no such regular file), ProvenanceInvalid or ModelSignatureMismatch (its
    meta), OutputInvalid (an array that needs pickle), EnvironmentFailure (the system failed).
    """
    where = os.fspath(path)
    target = Path(where)
    if not target.parent.is_dir():
        raise OutputMissing(f"{shown(where)} does not exist", field=META_KEY, hint=_WRITE_HINT)
    dir_fd = open_folder(target.parent, "the folder of")
    try:
        fd, _ = open_regular(dir_fd, [target.name])
    except FileNotFoundError:
        raise OutputMissing(f"{shown(where)} does not exist", field=META_KEY, hint=_WRITE_HINT) from None
    except NotRegular as exc:
        raise OutputMissing(f"{shown(where)} is {exc.kind}, not a regular file", field=META_KEY,
                            hint="outputs are regular files; links, FIFOs and devices are never read") from None
    except OSError as exc:
        raise os_failure("read", where, exc) from None
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as fh:
        meta, problems = inspect_npz(fh, where)
    if problems:
        raise problems[0]
    assert meta is not None
    return meta


def inspect_npz(fh: IO[bytes], where: str,
                component: str | None = None) -> tuple[dict[str, Any] | None, list[ModelManagerError]]:
    """(the validated meta or None, every problem found) for the open NPZ ``fh``; raises only for bugs.

    ``component`` (the one the manifest records for the file) is named in the problems.
    """
    problems: list[ModelManagerError] = []
    place = shown(where)

    def bad(message: str, *, hint: str = _WRITE_HINT) -> None:
        problems.append(ProvenanceInvalid(f"{place} {message}", component=component, field=META_KEY, hint=hint))

    try:
        size = os.fstat(fh.fileno()).st_size
        cd_size = central_directory_size(fh, size)
    except OSError as exc:
        return None, [os_failure("read", where, exc, component=component)]
    if cd_size is None:
        bad("is not a zip archive (an NPZ is one)")
        return None, problems
    if cd_size > MAX_CENTRAL_DIRECTORY:
        bad(f"declares a {cd_size}-byte zip directory; an NPZ output's takes at most {MAX_CENTRAL_DIRECTORY}")
        return None, problems
    try:
        fh.seek(0)
        archive = zipfile.ZipFile(fh)
    except _PARSE_ERRORS as exc:
        bad(f"is not a readable zip archive ({shown(str(exc))})")
        return None, problems
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            bad(f"holds {len(infos)} members; an NPZ output holds at most {MAX_MEMBERS}")
            return None, problems
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            bad("holds the same member twice")
        meta_info = None
        for info in infos:
            if info.flag_bits & 0x1:
                bad(f"member {shown(info.filename)} is encrypted")
            elif info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                bad(f"member {shown(info.filename)} uses compression method {info.compress_type}; "
                    "NPZ members are stored or deflated")
            elif info.filename == META_KEY + ".npy":
                meta_info = info
            else:
                problem = _member_problem(archive, info, where, component)
                if problem is not None:
                    problems.append(problem)
        if meta_info is None:
            if META_KEY + ".npy" not in names:
                bad(f"has no {META_KEY!r} array")
            return None, problems
        try:
            meta = _read_meta(archive, meta_info, where, component)
        except ModelManagerError as exc:
            problems.append(exc)
            return None, problems
    return meta, problems


def _member_problem(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str,
                    component: str | None) -> ModelManagerError | None:
    """An array member must be a ``.npy`` whose dtype reads without pickle; only its header is read."""
    import numpy as np

    name = info.filename
    hint = "write plain numeric or string arrays; object arrays need pickle to read"
    if not name.endswith(".npy"):
        return OutputInvalid(f"{shown(where)} member {shown(name)} is not a .npy array", component=component,
                             field=name[:120], hint=_WRITE_HINT)
    try:
        with archive.open(info) as member:
            dtype = _npy_header(member)[2]
    except _PARSE_ERRORS as exc:
        return OutputInvalid(f"{shown(where)} member {shown(name)} is not a readable .npy ({shown(str(exc))})",
                             component=component, field=name[:120], hint=_WRITE_HINT)
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        return OutputInvalid(f"{shown(where)} array {shown(name[:-4])} holds Python objects", component=component,
                             field=name[:120], hint=hint)
    return None


def _npy_header(stream: IO[bytes]) -> tuple[tuple[int, ...], bool, Any]:
    from numpy.lib import format as npy

    version = npy.read_magic(stream)
    if version == (1, 0):
        return npy.read_array_header_1_0(stream)
    if version in ((2, 0), (3, 0)):  # 3.0 differs only in allowing UTF-8 field names
        return npy.read_array_header_2_0(stream)
    raise ValueError(f"unknown .npy format version {version}")


def _read_meta(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, component: str | None) -> dict[str, Any]:
    import numpy as np

    place = shown(where)

    def invalid(message: str) -> ProvenanceInvalid:
        return ProvenanceInvalid(f"{place}: {META_KEY!r} {message}", component=component, field=META_KEY,
                                 hint=_WRITE_HINT)

    too_big = invalid(f"is larger than {MAX_META_BYTES} bytes; a meta holds models_used and model_signature")
    if info.file_size > MAX_META_BYTES:
        raise too_big
    try:
        with archive.open(info) as member:
            data = member.read(MAX_META_BYTES + 1)  # bounded even if the declared size lies
        if len(data) > MAX_META_BYTES:
            raise too_big
        stream = io.BytesIO(data)
        shape, _, dtype = _npy_header(stream)
        if shape != () or not isinstance(dtype, np.dtype) or dtype.kind != "U":
            raise invalid(f"is not a JSON string (a 0-d unicode array), but shape {shown(shape)} dtype "
                          f"{shown(str(dtype))}")
        body = data[stream.tell():]
        if len(body) != dtype.itemsize:
            raise invalid(f"holds {len(body)} bytes of string data; its header says {dtype.itemsize}")
        text = str(np.frombuffer(body, dtype=dtype, count=1)[0])
    except ModelManagerError:
        raise
    except _PARSE_ERRORS as exc:
        raise invalid(f"is not a readable .npy without pickle ({shown(str(exc))})") from None
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise invalid(f"is not JSON ({shown(str(exc))})") from None
    check_meta(meta, where, component=component)
    return meta


def central_directory_size(fh: IO[bytes], size: int) -> int | None:
    """The size of a zip's central directory as ``zipfile`` will find it (zip64 too); None if no end record.

    ``zipfile`` reads that many bytes and makes one object per entry in them, so this is what bounds
    its memory, whatever the member count claims.
    """
    tail_len = min(size, (1 << 16) + 22)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    if tail[-22:-18] == b"PK\x05\x06" and tail[-2:] == b"\x00\x00":
        at = len(tail) - 22
    else:
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return None
    cd_size = int(struct.unpack_from("<L", tail, at + 12)[0])
    end_at = size - tail_len + at
    if end_at >= 76:  # a zip64 locator right before the end record points at the zip64 record before it
        fh.seek(end_at - 76)
        before = fh.read(76)
        if before[56:60] == b"PK\x06\x07" and before[:4] == b"PK\x06\x06":
            cd_size = int(struct.unpack_from("<Q", before, 40)[0])
    return cd_size
