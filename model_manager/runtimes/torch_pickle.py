"""A static allow-list check of torch pickles: what ``torch.save`` writes for a plain state dict passes,
anything else is refused before a byte of it is unpickled.

``torch.load(weights_only=True)`` is the loader; this scan runs before it, with or without torch installed
(defence in depth, and the refusal of a hostile file where torch is absent). It reads the opcodes with
``pickletools.genops`` and replays them on a symbolic stack that knows of each value only whether it is a
named global, a string or something else: nothing is imported, called or built. Standard library only.

The allow-list was recorded from torch 2.13 (``torch.save`` of state dicts holding every dtype, in both
formats): ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` (``_rebuild_tensor_v3`` for dtypes
with no storage class, uint16 and float8 among them), ``torch._utils._rebuild_parameter`` (a dict of
``nn.Parameter``) may be called; the storage classes (``torch.FloatStorage``, ...,
``torch.storage.UntypedStorage``) and the dtypes (``torch.float32``, ...) may only be named, in the
storages' persistent ids and ``_rebuild_tensor_v3``'s arguments.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from collections.abc import Iterator
from typing import Any, Final

from model_manager.errors import shown

__all__ = ["CALLABLES", "LEGACY_MAGIC", "VALUES", "ZIP_MAGIC", "PickleRefused", "check_torch_file", "scan_pickle"]

#: torch.save's zip format (torch >= 1.6) starts with a zip local-file header; torch.load tells formats so too
ZIP_MAGIC: Final = b"PK\x03\x04"
#: the first pickle of torch's legacy format (``_use_new_zipfile_serialization=False``)
LEGACY_MAGIC: Final = 0x1950A86A20F9469CFC6C
#: the legacy format: magic, protocol version, system info, the object, its storage keys; then raw storages
_LEGACY_PICKLES: Final = 5

#: what a plain state dict calls while it is rebuilt
CALLABLES: Final = frozenset({
    "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
})
_STORAGES = ("Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool", "ComplexDouble",
             "ComplexFloat")
# canonical names only: a dtype pickles as its canonical name (torch.float, an alias, never appears)
_DTYPES = ("float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "uint16",
           "uint32", "uint64", "bool", "complex32", "complex64", "complex128", "float8_e4m3fn", "float8_e4m3fnuz",
           "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2")
#: what a plain state dict names but never calls: storage classes and dtypes
VALUES: Final = frozenset({"torch.storage.UntypedStorage", *(f"torch.{s}Storage" for s in _STORAGES),
                           *(f"torch.{d}" for d in _DTYPES)})

_STRINGS = frozenset({"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
                      "BINUNICODE8"})
#: calling opcodes and how many stack items lie above the callable
_CALLS = {"REDUCE": 1, "NEWOBJ": 1, "NEWOBJ_EX": 2}
_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_MEMO_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})


class PickleRefused(Exception):
    """Why a torch weights file is refused; the message names what was found."""


class _Global:
    """A global the pickle named (and the allow-list admitted)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


_MARK = object()  # a MARK opcode's place on the stack
_ANY = object()   # any other value: a number, a container, the result of a call


def check_torch_file(data: bytes) -> str:
    """Which of torch.save's formats ``data`` is ("zip" or "legacy"), every pickle in it scanned;
    ``PickleRefused`` for a refused global, a file in neither format, or anything that cannot be parsed."""
    if data.startswith(ZIP_MAGIC):
        for name, pickled in _zip_pickles(data):
            stream = io.BytesIO(pickled)
            scan_pickle(stream, name)
            if stream.tell() != len(pickled):
                raise PickleRefused(f"{name} goes on for {len(pickled) - stream.tell()} bytes after its STOP "
                                    "(torch.save writes one pickle)")
        return "zip"
    stream = io.BytesIO(data)
    neither = ("the file is neither torch's zip format (it would start with PK\\x03\\x04) nor its legacy format "
               "(a pickle of torch's magic number first)")
    try:
        scan_pickle(stream, "its first pickle")
    except PickleRefused as exc:
        raise PickleRefused(f"{neither}: {exc}") from None
    if _values(data[:stream.tell()]) != [LEGACY_MAGIC]:
        raise PickleRefused(neither)
    for index in range(2, _LEGACY_PICKLES + 1):
        scan_pickle(stream, f"pickle {index} of {_LEGACY_PICKLES} of the legacy format")
    return "legacy"


def scan_pickle(stream: io.BytesIO, what: str) -> set[str]:
    """Replay one pickle, from the stream's position to its STOP, symbolically: the globals it names.

    Refused: a global off the allow-list (GLOBAL, STACK_GLOBAL, INST), a call (REDUCE, NEWOBJ, NEWOBJ_EX,
    OBJ, INST) of anything but an allowed callable, BUILD on a global, the copyreg extension registry (EXT*),
    a STACK_GLOBAL whose names are not plain strings, and anything that cannot be parsed.
    """
    stack: list[object] = []
    memo: dict[Any, object] = {}
    named: set[str] = set()
    for op, arg, pos in _ops(stream, what):
        name, at = op.name, f"{what}, byte {pos}"
        if name == "GLOBAL":
            stack.append(_global(str(arg).replace(" ", ".", 1), named, at))
        elif name == "STACK_GLOBAL":
            attr, module = _pop(stack, at), _pop(stack, at)
            if not (isinstance(module, str) and isinstance(attr, str)):
                raise PickleRefused(f"{at}: STACK_GLOBAL names a global from values that are not plain strings")
            stack.append(_global(f"{module}.{attr}", named, at))
        elif name == "INST":
            _call(_global(str(arg).replace(" ", ".", 1), named, at), at)
            _pop_mark(stack, at)
            stack.append(_ANY)
        elif name == "OBJ":
            items = _pop_mark(stack, at)
            _call(items[0] if items else _ANY, at)
            stack.append(_ANY)
        elif name in _CALLS:
            for _ in range(_CALLS[name]):
                _pop(stack, at)
            _call(_pop(stack, at), at)
            stack.append(_ANY)
        elif name == "BUILD":
            _pop(stack, at)
            target = _pop(stack, at)
            if isinstance(target, _Global):
                raise PickleRefused(f"{at}: BUILD sets the state of the global {target.name}")
            stack.append(target)
        elif name.startswith("EXT"):
            raise PickleRefused(f"{at}: {name} names a global through the copyreg extension registry")
        elif name == "MEMOIZE" or name in _MEMO_PUTS:
            if not stack or stack[-1] is _MARK:
                raise PickleRefused(f"{at}: {name} with nothing to store")
            memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
        elif name in _MEMO_GETS:
            if arg not in memo:
                raise PickleRefused(f"{at}: {name} {shown(arg)} reads a memo entry never stored")
            stack.append(memo[arg])
        elif name in _STRINGS:
            stack.append(arg if isinstance(arg, str) else _ANY)
        elif name == "DUP":
            stack.append(_pop(stack, at))
            stack.append(stack[-1])
        elif name == "STOP":
            if len(stack) != 1:
                raise PickleRefused(f"{at}: STOP with {len(stack)} values on the stack instead of 1")
            return named
        else:
            _other(op, stack, at)
    raise PickleRefused(f"{what} ends before its STOP")  # genops raises first; kept for a direct caller


def _ops(stream: io.BytesIO, what: str) -> Iterator[tuple[pickletools.OpcodeInfo, Any, int | None]]:
    ops = pickletools.genops(stream)
    while True:
        try:
            item = next(ops)
        except StopIteration:
            return
        except Exception as exc:  # genops's own: an unknown opcode, a truncated argument, no STOP
            raise PickleRefused(f"{what} cannot be parsed as a pickle ({type(exc).__name__}: "
                                f"{shown(str(exc))[1:-1]})") from None
        yield item


def _global(name: str, named: set[str], at: str) -> _Global:
    if name not in CALLABLES and name not in VALUES:
        raise PickleRefused(f"{at}: names the global {shown(name)}, which a plain state dict does not need")
    named.add(name)
    return _Global(name)


def _call(value: object, at: str) -> None:
    if not isinstance(value, _Global):
        raise PickleRefused(f"{at}: calls a value that is not a named global")
    if value.name not in CALLABLES:
        raise PickleRefused(f"{at}: calls {value.name}, which a state dict only names")


def _pop(stack: list[object], at: str) -> object:
    if not stack or stack[-1] is _MARK:
        raise PickleRefused(f"{at}: the pickle's stack underflows")
    return stack.pop()


def _pop_mark(stack: list[object], at: str) -> list[object]:
    """The items above the topmost MARK; they and the MARK leave the stack."""
    for index in range(len(stack) - 1, -1, -1):
        if stack[index] is _MARK:
            items = stack[index + 1:]
            del stack[index:]
            return items
    raise PickleRefused(f"{at}: no MARK to pop to")


def _other(op: pickletools.OpcodeInfo, stack: list[object], at: str) -> None:
    """Any opcode that neither names nor calls: pop what it consumes, push placeholders for what it makes."""
    before = op.stack_before
    if op.name == "POP" and stack and stack[-1] is _MARK:
        stack.pop()  # POP of a MARK drops the MARK, as the unpickler does
        return
    if op.name == "MARK":
        stack.append(_MARK)
        return
    if pickletools.markobject in before:
        _pop_mark(stack, at)
        below = before.index(pickletools.markobject)  # e.g. the dict that SETITEMS fills
    else:
        below = len(before)
    for _ in range(below):
        _pop(stack, at)
    stack.extend(_ANY for _ in op.stack_after)


def _values(pickled: bytes) -> list[Any]:
    """The arguments of a scanned pickle's opcodes, framing left out: [LEGACY_MAGIC] for torch's first pickle."""
    return [arg for op, arg, _ in pickletools.genops(pickled) if op.name not in ("PROTO", "FRAME", "STOP")]


def _zip_pickles(data: bytes) -> list[tuple[str, bytes]]:
    """Every ``*.pkl`` of torch's zip archive, by name; the archive's layout checked as torch reads it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            if not names or "/" not in names[0]:
                raise PickleRefused("the zip archive's first entry is not in a folder, as torch.save writes it")
            if len(set(names)) != len(names):
                raise PickleRefused("the zip archive names an entry twice")
            top = names[0].split("/", 1)[0]  # torch reads <the first entry's folder>/data.pkl
            if f"{top}/data.pkl" not in names:
                raise PickleRefused(f"the zip archive has no {shown(top + '/data.pkl')}: not a torch.save file")
            pickles = []
            for info in infos:
                if info.filename.endswith(".pkl"):
                    if info.compress_type != zipfile.ZIP_STORED:
                        raise PickleRefused(f"{shown(info.filename)} is compressed; torch.save stores it as is")
                    pickles.append((shown(info.filename), archive.read(info)))
            return pickles
    except PickleRefused:
        raise
    except Exception as exc:  # zipfile's: a truncated or corrupt archive, a bad CRC, encryption
        raise PickleRefused(f"a zip archive that cannot be read, truncated or corrupt ({type(exc).__name__}: "
                            f"{shown(str(exc))[1:-1]})") from None
