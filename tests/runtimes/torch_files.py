"""Torch weights files made by hand, without torch: pickles assembled opcode by opcode as torch.save (protocol 2)
writes them, torch's zip and legacy layouts, safetensors with any header, hostile pickles, and a stand-in torch.

bench/check_torch_handle.py loads the files built here with the real torch.load(weights_only=True), so these
builders are checked against torch itself.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import pickle
import struct
import sys
import types
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pytest

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# --- pickle opcodes, protocol 2 ----------------------------------------------------------------------------
PROTO2, STOP, MARK, TUPLE, EMPTY_TUPLE, EMPTY_DICT = b"\x80\x02", b".", b"(", b"t", b")", b"}"
REDUCE, BUILD, BINPERSID, SETITEMS, SETITEM, NEWFALSE, NONE = b"R", b"b", b"Q", b"u", b"s", b"\x89", b"N"


def unicode(text: str) -> bytes:
    data = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data


def binint(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def ints(values: tuple[int, ...]) -> bytes:
    return MARK + b"".join(binint(v) for v in values) + TUPLE


def global_op(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


@dataclass
class Tensor:
    """One tensor of a hand-made state dict: its own storage, contiguous, on the CPU."""

    name: str
    values: np.ndarray
    storage: str = field(default="")  # torch's storage class, from the dtype when left empty

    def __post_init__(self) -> None:
        self.storage = self.storage or {"float32": "FloatStorage", "int64": "LongStorage", "float16": "HalfStorage",
                                        "float64": "DoubleStorage", "uint8": "ByteStorage"}[self.values.dtype.name]


class _Writer:
    """Memoizes every global as pickle does (BINPUT on first use, BINGET after)."""

    def __init__(self) -> None:
        self.memo: dict[tuple[str, str], int] = {}

    def glob(self, module: str, name: str) -> bytes:
        if (module, name) in self.memo:
            return b"h" + bytes([self.memo[(module, name)]])
        self.memo[(module, name)] = index = len(self.memo)
        return global_op(module, name) + b"q" + bytes([index])


def state_dict_pickle(tensors: list[Tensor], *, legacy: bool = False, metadata: bool = True) -> bytes:
    """The pickle of an OrderedDict of tensors as torch.save writes it: each tensor a _rebuild_tensor_v2 call on
    the persistent id ('storage', torch.<T>Storage, key, 'cpu', numel[, view_metadata]); key = its index."""
    w = _Writer()
    out = bytearray(PROTO2 + w.glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + MARK)
    for key, t in enumerate(tensors):
        shape = tuple(t.values.shape)
        strides = tuple(math.prod(shape[i + 1:]) for i in range(len(shape)))
        persistent = (MARK + unicode("storage") + w.glob("torch", t.storage) + unicode(str(key)) + unicode("cpu")
                      + binint(t.values.size) + (NONE if legacy else b"") + TUPLE + BINPERSID)
        out += unicode(t.name) + w.glob("torch._utils", "_rebuild_tensor_v2")
        out += MARK + persistent + binint(0) + ints(shape) + ints(strides) + NEWFALSE
        out += w.glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + TUPLE + REDUCE
    out += SETITEMS
    if metadata:  # the state dict's _metadata attribute, set by BUILD
        out += EMPTY_DICT + unicode("_metadata") + w.glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
        out += SETITEM + BUILD
    return bytes(out + STOP)


def torch_zip(data_pkl: bytes, storages: list[bytes], *, archive: str = "archive",
              extra: dict[str, bytes] | None = None, compress_pkl: bool = False) -> bytes:
    """torch.save's zip layout: <archive>/data.pkl, the storages as <archive>/data/<key>, version and byteorder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{archive}/data.pkl", data_pkl, zipfile.ZIP_DEFLATED if compress_pkl else zipfile.ZIP_STORED)
        z.writestr(f"{archive}/.format_version", b"1")
        z.writestr(f"{archive}/.storage_alignment", b"64")
        z.writestr(f"{archive}/byteorder", b"little")
        for key, raw in enumerate(storages):
            z.writestr(f"{archive}/data/{key}", raw)
        for name, raw in (extra or {}).items():
            z.writestr(name, raw)
        z.writestr(f"{archive}/version", b"3\n")
    return buffer.getvalue()


def legacy_file(main: bytes, storages: list[tuple[int, bytes]]) -> bytes:
    """torch's legacy format: magic, protocol version, system info, the object, its storage keys (pickles), then
    each storage as its element count (int64) and its bytes."""
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    out = b"".join(pickle.dumps(v, protocol=2) for v in (LEGACY_MAGIC, 1001, sys_info))
    out += main + pickle.dumps([str(k) for k in range(len(storages))], protocol=2)
    return out + b"".join(struct.pack("<q", numel) + raw for numel, raw in storages)


def zip_state_dict(tensors: list[Tensor]) -> bytes:
    return torch_zip(state_dict_pickle(tensors), [t.values.tobytes() for t in tensors])


def legacy_state_dict(tensors: list[Tensor]) -> bytes:
    return legacy_file(state_dict_pickle(tensors, legacy=True), [(t.values.size, t.values.tobytes()) for t in tensors])


TENSORS = [Tensor("weight", np.arange(6, dtype=np.float32).reshape(2, 3)), Tensor("bias", np.array([1, -2]))]

# --- torch.save's own output, recorded with torch 2.13 (zlib, base64) ----------------------------------------
# nn.Linear(3, 2).state_dict() with weight = arange(6).reshape(2, 3), bias = [0.5, -1.5]
REAL_ZIP_B64 = (
    "eNqlVD1v00AYPtup47qQfkBJW6QOTEYqqe00cUsFrSzkxQMhCClisRzHxBZO3LMvrUCqVAm1UjdgYQLxL2CDv9ClYmBjQEysSCzc"
    "2W2wHZKq5ZTLKfE9H/f6ea+mMzkAOA4MjCkwA8zActxte7llIrO09dTT1AJ4nBp7tGX5nmdbyPW7IX8/aNmB3brnWoiH4GYdUkKD"
    "xWQ7ttt2EKQt5GPKktFDrhfyRmA3e67XMpDdDf3A2JZ5yAhCI48RId5ptm2YiyG85vkmehj/ycOxBoX3iJBtMHi1tnowr7MIcg90"
    "oNM6cwDHdUanDiB/6BAXEwheqsPLDXxU0HTNEBYcrOPknJhHgpNOXqcRnIrw+3Bap/bhTIy9guDVOpzt7cJrjXG82ejYyCQFgcXo"
    "+VyDVAvO78KFyPi2HYS4FvC6ToVh2CzV9DwnhB/f3sBKZNaGVrwI5vsVLz3xg46JjBM2TZ3NFP5kSIT+w8+vL8g5yBxOvwCUv/Qn"
    "5TVMz213O3YXaWr53wqjR3WFGNjYgT9oLEGPNDANNvoGms+Q7ZOwaOr6RXRPh+ci5NnEw/6db/MkauxIDwVwN5XqZVFTb/+HgZh1"
    "bwN/beIPnnt4vt8kjoovv7+aww/mznC0lHYkaaoAzqGPtT9/Inqdw51jIsCN1JsE6329frqUi5agzBPlo3ftR2e//0Ug/w1gdNTQ"
    "DlycwOcmuT0Mt6WppXMaEStVSRJXK3K5Kq1VFbEir62IiqKISkUWK6sVaUWursrlqE3evP49LmAfQuSSImb7PpMdOjXgPHsPZtHJ"
    "BiymkAEFhvV0liTZRAspkqMkyUDnZnmSjTCd4qnTYLABs/Bkagsp+DENMr2TxSYTmMY6TAYrZbHJDE2msF8S2CG1S77axfSZc+CM"
    "0NV0ll06jShzq4/kMusEHa+/cvGKceS+B0w+/h3fvmNsjOGi/fHeP5mYmSE="
)
REAL_LEGACY_B64 = (
    "eNptUc1O20AQttdOAlv+oaXAhaO5RBBCRE7lUHFZtaXpZS+V5direCvXm/GOQSBFygUEfQYOHHmL9nX6CJV66NhRxQFWOyPt/Hzf"
    "NztT9oNnf+9P/+x+ezzbak/Zh98e+Qk4gVxxHGdcGDSxycJzVVhtcnCpQC5SJtOImQpVnugoB3YrOQXxcqxCq6+UBW8CfiAbFLSp"
    "KRAagkmPXjpHaApf+hWGyUfQEn5ZEmdMNJmKkVgs/1QkqlDJex0jB2dvAG4gm9RxofQoRWAxmiJO22GJOrM8LNSw1FkSosqtKcLz"
    "DgcvCGSrYqfKaKTAn7Xw08xE+GUW5NCQS1TT7/b63W6n1z/eP+wdQ7MWGo9L0tb8iDD3WTiCCe8G5oUn3Bvgd2ml6RXCwgAW61GG"
    "OrKwlBJr6qfPUI8OOrCctgQjtJUa7RpWhXsNazOkdYSNAbwuJ/BGzlNr+F1hlEQYwWadfysp6MDWBLbrof5vY0e41toh/d7XamMv"
    "zOK+JIWpdvWZT2f6jtwJXbIp2cMJe0pS7tfPf7xwjq0="
)

def real_torch_save(kind: str) -> bytes:
    """torch 2.13's torch.save of a Linear(3, 2) state dict: kind "zip" (the default) or "legacy"."""
    return zlib.decompress(base64.b64decode(REAL_ZIP_B64 if kind == "zip" else REAL_LEGACY_B64))


# --- hostile pickles ----------------------------------------------------------------------------------------
class Reduce:
    """Pickles as a call of ``fn(*args)``: how a hostile file runs code when it is unpickled."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.fn, self.args


def hostile_payloads(marker: Path) -> dict[str, Reduce]:
    """Three ways to run code at unpickling time; each would create ``marker``."""
    import os
    import subprocess

    return {
        "os.system": Reduce(os.system, f"touch {marker}"),
        "builtins.eval": Reduce(eval, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": Reduce(subprocess.Popen, ["touch", str(marker)]),
    }


def hostile_state_dict(payload: Reduce, protocol: int = 2) -> bytes:
    """A state dict-looking pickle with the payload as one of its values."""
    return pickle.dumps({"weight": payload}, protocol=protocol)


# --- safetensors --------------------------------------------------------------------------------------------
def safetensors_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save(tensors)


def raw_safetensors(header: bytes, body: bytes = b"", length: int | None = None) -> bytes:
    return struct.pack("<Q", len(header) if length is None else length) + header + body


# --- digests ------------------------------------------------------------------------------------------------
def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_of(path: Path) -> str:
    """The pinned digest of a file or a model folder (docs/mapping.md)."""
    if path.is_file():
        return sha(path.read_bytes())
    files = sorted((p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()), key=lambda s: s.encode())
    text = "".join(f"{hashlib.sha256((path / f).read_bytes()).hexdigest()}  {f}\n" for f in files)
    return sha(text.encode("utf-8"))


# --- a stand-in torch: the torch-present code paths, without torch ------------------------------------------
class FakeTensor:
    def __init__(self, value: Any, device: str = "cpu") -> None:
        self.value, self.device = value, device

    def to(self, device: str) -> FakeTensor:
        return FakeTensor(self.value, device)


@dataclass
class FakeTorch:
    """What the handle asked of torch: every torch.load call (the bytes it read, its keyword arguments)."""

    module: types.ModuleType
    loads: list[tuple[bytes, dict[str, Any]]]


def install_fake_torch(monkeypatch: pytest.MonkeyPatch, *, gpus: int = 0,
                       result: Callable[[], Any] | None = None) -> FakeTorch:
    """Put a stand-in ``torch`` (and ``safetensors.torch``) in sys.modules: ``gpus`` CUDA devices, and a
    torch.load that records its call and returns ``result()`` (default: a dict of two FakeTensors)."""
    torch = types.ModuleType("torch")
    loads: list[tuple[bytes, dict[str, Any]]] = []

    def load(f: io.BytesIO, **kwargs: Any) -> Any:
        loads.append((f.read(), kwargs))
        if result is not None:
            return result()
        return {"weight": FakeTensor(1, kwargs["map_location"]), "bias": FakeTensor(2, kwargs["map_location"])}

    torch.__version__ = "0.0+fake"  # type: ignore[attr-defined]
    torch.Tensor = FakeTensor  # type: ignore[attr-defined]
    torch.load = load  # type: ignore[attr-defined]
    torch.cuda = types.SimpleNamespace(is_available=lambda: gpus > 0, device_count=lambda: gpus)  # type: ignore[attr-defined]
    st_torch = types.ModuleType("safetensors.torch")

    def st_load(data: bytes) -> dict[str, FakeTensor]:
        from safetensors.numpy import load as np_load

        return {k: FakeTensor(v) for k, v in np_load(data).items()}

    st_torch.load = st_load  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "safetensors.torch", st_torch)
    return FakeTorch(torch, loads)


def block_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import torch`` fails as it does where torch is not installed (even where it is)."""
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
