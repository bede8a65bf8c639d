"""The wire protocol of the fake Triton (pytest_mm.fake_triton): Triton 2.51's checks, their order and
wording, the encoding of every datatype as JSON and binary tensors, and the deterministic outputs that
``FakeTriton.from_mapping`` serves. Standard library and numpy only.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
import struct
import traceback
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pytest_mm.fake_triton import FakeModel

try:  # tritonclient's own BF16 type; without it BF16 tensors are their raw 16-bit patterns
    import ml_dtypes

    _BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - ml_dtypes comes with tritonclient
    _BF16 = np.dtype("<u2")

NUMPY: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(bool), "UINT8": np.dtype("u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "INT8": np.dtype("i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
    "BF16": _BF16, "BYTES": np.dtype(object)}
_JSON_KIND = {"BOOL": "boolean as boolean", "BYTES": "string as string", "FP32": "number as double",
              "FP64": "number as double",
              **{f"UINT{b}": "unsigned-integer as unsigned-integer" for b in (8, 16, 32, 64)},
              **{f"INT{b}": "signed-integer as signed-integer" for b in (8, 16, 32, 64)}}
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Not Allowed", 500: "Internal Server Error",
            501: "Not Implemented", 503: "Service Unavailable"}
ROUTE = re.compile(r"/v2(?:/health/(?P<health>live|ready)|/models/(?P<model>[^/]+)(?:/versions/(?P<version>[0-9]+))?"
                    r"(?P<action>/ready|/config|/infer)?|/repository/(?P<repo>index|models/[^/]+/(?:load|unload)))?")
_NOTE = (" NOTE: Setting a non-zero max_batch_size in the model config requires a batch dimension to be prepended to "
         "each input shape. If you want to specify the full shape including the batch dim in your input dims config, "
         "try setting max_batch_size to zero. See the model configuration docs for more info on max_batch_size.")
SERVER_METADATA = {"name": "triton", "version": "2.51.0", "extensions": [
    "classification", "sequence", "model_repository", "model_repository(unload_dependents)", "schedule_policy",
    "model_configuration", "system_shared_memory", "cuda_shared_memory", "binary_tensor_data", "parameters",
    "statistics", "trace", "logging"]}
Tensor = tuple[str, str, tuple[int, ...]]
Fn = Callable[[dict[str, np.ndarray]], Mapping[str, Any]]


class Fail(Exception):
    def __init__(self, status: int, message: str, content_type: str = "application/json", **headers: str) -> None:
        super().__init__(message)
        self.status, self.message, self.content_type, self.headers = status, message, content_type, headers


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def _names(names: Sequence[str], empty: str) -> str:
    return "[" + ",".join(f"'{n}'" for n in names) + "]" if names else empty


def serialize_bytes(array: np.ndarray) -> bytes:
    """BYTES on the wire: each element as a 4-byte little-endian length and its bytes, row-major."""
    items = [x.encode() if isinstance(x, str) else bytes(x) for x in array.reshape(-1)]
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def _split_bytes(data: bytes, name: str) -> np.ndarray:
    out, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("<I", data, offset)
        offset += 4
        if length > len(data) - offset:
            raise Fail(400, f"incomplete string data for inference input '{name}', expecting string of length "
                       f"{length} but only {len(data) - offset} bytes available", "text/plain")
        out.append(data[offset:offset + length])
        offset += length
    return np.array(out, dtype=object)


def _check_bytes(data: bytes, count: int, name: str, model: str, rid: str) -> None:
    offset, seen = 0, 0
    while offset < len(data):
        if len(data) - offset < 4:
            raise Fail(400, f"{rid}incomplete string length indicator for inference input '{name}' for model "
                       f"'{model}', expecting 4 bytes but only {len(data) - offset} bytes available. Please "
                       "make sure the string length indicator is in one buffer.")
        if seen >= count:
            raise Fail(400, f"{rid}unexpected number of string elements {seen + 1} for inference input '{name}' "
                       f"for model '{model}', expecting {count}")
        offset += 4 + struct.unpack_from("<I", data, offset)[0]
        seen += 1
    if seen != count:
        raise Fail(400, f"{rid}expected {count} string elements for inference input '{name}' for model '{model}', "
                   f"got {seen}")


def _member(obj: Any, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise Fail(500, f"Unable to parse '{key}': attempt to access non-existing object member '{key}'")
    if not isinstance(obj[key], kind) or (kind is not bool and isinstance(obj[key], bool)):
        raise Fail(500, f"Unable to parse '{key}': attempt to access JSON {what}")
    return obj[key]


def _flat(data: Any) -> list[Any]:
    return [y for x in data for y in _flat(x)] if isinstance(data, list) else [data]


def _json_input(item: dict[str, Any], dtype: str, shape: list[int]) -> np.ndarray:
    if dtype in ("FP16", "BF16"):
        raise Fail(400, f"receiving {dtype} data via JSON is not supported. Please use the binary data format for "
                   f"input {item['name']}")
    values = _flat(_member(item, "data", list, "non-array as array"))
    if len(values) != math.prod(shape):
        raise Fail(500, "Unable to parse 'data': Shape does not match true shape of 'data' field")
    kinds: dict[str, type | tuple[type, ...]] = {"BOOL": bool, "BYTES": str, "FP32": (int, float),
                                              "FP64": (int, float)}
    kind = kinds.get(dtype, int)
    if any(not isinstance(v, kind) or (kind is not bool and isinstance(v, bool)) for v in values):
        raise Fail(500, f"Unable to parse 'data': attempt to access JSON non-{_JSON_KIND[dtype]}")
    if dtype == "BYTES":
        return np.array([v.encode() for v in values] or [], dtype=object).reshape(shape)
    with np.errstate(over="ignore"):  # 1e40 as FP32 is inf, as Triton makes it
        return np.array(values).astype(NUMPY[dtype]).reshape(shape)


def _to_json(array: np.ndarray, dtype: str) -> list[Any]:
    if dtype == "BYTES":  # raw bytes, as Triton writes them (invalid UTF-8 included)
        return [bytes(x).decode("utf-8", "surrogateescape") for x in array.reshape(-1)]
    return array.reshape(-1).tolist()


def _classify(array: np.ndarray, k: int, batched: bool) -> np.ndarray:
    rows = array.reshape(array.shape[0], -1) if batched else array.reshape(1, -1)
    top = [[f"{row[i]:f}:{i}".encode() for i in np.argsort(-row.astype(np.float64), kind="stable")[:k]]
           for row in rows]
    out = np.array(top, dtype=object)
    return out if batched else out[0]


def _frames(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[1:]  # from the model function down, innermost first
    return "".join(f"  {f.filename}({f.lineno}): {f.name}\n" for f in reversed(frames))


def config(model: FakeModel) -> dict[str, Any]:
    python = model.platform == "python"
    policy = ({"latest": {"num_versions": 1}} if len(model.versions) == 1
              else {"specific": {"versions": [int(v) for v in model.versions]}})

    def tensor(name: str, dtype: str, dims: Sequence[int], extra: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "data_type": "TYPE_STRING" if dtype == "BYTES" else f"TYPE_{dtype}", **extra,
                "dims": list(dims), "is_shape_tensor": False}

    return {
        "name": model.name, "platform": "" if python else model.platform, "backend": "python" if python else "",
        "runtime": "", "version_policy": policy, "max_batch_size": model.max_batch_size,
        "input": [tensor(*t, {"format": "FORMAT_NONE"}) | {"allow_ragged_batch": False, "optional": False,
                                                             "is_non_linear_format_io": False} for t in model.inputs],
        "output": [tensor(*t, {}) | {"label_filename": "", "is_non_linear_format_io": False} for t in model.outputs],
        "batch_input": [], "batch_output": [],
        "optimization": {"priority": "PRIORITY_DEFAULT", "input_pinned_memory": {"enable": True},
                         "output_pinned_memory": {"enable": True}, "gather_kernel_buffer_threshold": 0,
                         "eager_batching": False},
        "instance_group": [{"name": f"{model.name}_0", "kind": "KIND_CPU", "count": 1, "gpus": [],
                            "secondary_devices": [], "profile": [], "passive": False, "host_policy": ""}],
        "default_model_filename": "model.py" if python else "", "cc_model_filenames": {}, "metric_tags": {},
        "parameters": {}, "model_warmup": []}


def metadata(model: FakeModel, version: str | None) -> dict[str, Any]:
    def tensors(items: Sequence[tuple[str, str, Sequence[int]]]) -> list[dict[str, Any]]:
        return [{"name": n, "datatype": d, "shape": model.shape(s)} for n, d, s in items]

    return {"name": model.name, "versions": [version] if version else list(model.versions),
            "platform": model.platform, "inputs": tensors(model.inputs), "outputs": tensors(model.outputs)}


def decode(body: bytes, headers: Any) -> tuple[Any, bytes]:
    """The request's JSON header and its binary part (Content-Encoding undone first)."""
    encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "deflate"):
        raise Fail(501, "Unsupported compression type", "text/plain", **{"Accept-Encoding": "gzip, deflate"})
    if encoding != "identity":
        try:
            body = gzip.decompress(body) if encoding == "gzip" else zlib.decompress(body)
        except (OSError, EOFError, zlib.error):
            body = b""
    length = headers.get("Inference-Header-Content-Length")
    if length is not None:
        size = int(length) if length.strip().lstrip("-").isdigit() else -1
        if not 0 < size <= len(body):
            raise Fail(400, f"inference header size should be in range (0, {len(body)}), got: {length.strip()}",
                       "text/plain")
        body, binary = body[:size], body[size:]
    else:
        binary = b""
    try:
        if length is not None:
            return json.loads(body), binary
        # Without the header length Triton reads one JSON value and ignores what follows it.
        text = body.decode("utf-8", "surrogateescape")
        return json.JSONDecoder().raw_decode(text, len(text) - len(text.lstrip()))[0], b""
    except (ValueError, UnicodeDecodeError) as exc:
        raise Fail(500, f"failed to parse the request JSON buffer: {exc}") from None


def infer(model: FakeModel, version: str, doc: Any, binary: bytes) -> tuple[dict[str, Any], list[bytes]]:
    """Validate like Triton (same checks, order and wording), run ``fn``, encode the outputs."""
    inputs = _member(doc, "inputs", list, "non-array as array")
    rid_value = _member(doc, "id", str, "non-string as string") if "id" in doc else ""
    rid = f"[request id: {rid_value or '<id_unknown>'}] "
    binary_out = doc.get("parameters", {}).get("binary_data_output", False)
    if not isinstance(binary_out, bool):
        raise Fail(500, "Unable to parse 'binary_data_output': attempt to access JSON non-boolean as boolean")
    got: dict[str, tuple[str, list[int], Any]] = {}
    offset = 0
    for item in inputs:
        name = _member(item, "name", str, "non-string as string")
        shape = _member(item, "shape", list, "non-array as array")
        if any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape):
            raise Fail(500, "Unable to parse 'shape': attempt to access JSON non-unsigned-integer as unsigned-integer")
        dtype = _member(item, "datatype", str, "non-string as string")
        if dtype not in NUMPY:
            raise Fail(400, f"invalid datatype for input {name}")
        size = (item.get("parameters") or {}).get("binary_data_size")
        if ("data" in item) == (size is not None):
            raise Fail(400, "Input must set only one of the following fields: 'data', 'binary_data_size' in "
                       "'parameters', 'shared_memory_region' in 'parameters'. But "
                       + ("set 'data' 'binary_data_size'" if size is not None else "no field is set"))
        if name in got:
            raise Fail(400, f"{rid}input '{name}' already exists in request")
        if size is None:
            got[name] = (dtype, shape, _json_input(item, dtype, shape))
            continue
        if len(binary) - offset < size:
            raise Fail(400, f"unexpected size for input '{name}', expecting {size - (len(binary) - offset)} "
                       f"additional bytes for model '{model.name}'")
        got[name] = (dtype, shape, binary[offset:offset + size])
        offset += size
    if offset < len(binary):
        raise Fail(400, f"unexpected additional input data for model '{model.name}'")
    wanted: dict[str, tuple[bool, int]] = {}
    for item in _member(doc, "outputs", list, "non-array as array") if "outputs" in doc else []:
        name = _member(item, "name", str, "non-string as string")
        params = item.get("parameters") or {}
        as_binary = params.get("binary_data", False)  # binary_data_output covers unnamed outputs only
        if not isinstance(as_binary, bool):
            raise Fail(500, "Unable to parse 'binary_data': attempt to access JSON non-boolean as boolean")
        wanted[name] = (as_binary, int(params.get("classification", 0)))
    declared_out = {n: d for n, d, _ in model.outputs}
    for name in wanted:
        if name not in declared_out:
            raise Fail(400, f"unexpected inference output '{name}' for model '{model.name}'")
    declared = {n: (d, s) for n, d, s in model.inputs}
    if len(got) != len(declared):
        missing = [n for n in declared if n not in got]
        raise Fail(400, f"{rid}expected {len(declared)} inputs but got {len(got)} inputs for model '{model.name}'. "
                   f"Got input(s) {_names(list(reversed(got)), '[]')}, but missing required input(s) "
                   f"{_names(missing, ']')}. Please provide all required input(s).")
    for name in got:
        if name not in declared:
            raise Fail(400, f"unexpected inference input '{name}' for model '{model.name}'")
    first = next(iter(got.values()), None)
    if model.max_batch_size > 0 and first and first[1] and first[1][0] > model.max_batch_size:
        raise Fail(400, f"{rid}inference request batch-size must be <= {model.max_batch_size} for '{model.name}'")
    for name, (dtype, shape, raw) in got.items():
        want, dims = declared[name]
        if dtype != want:
            raise Fail(400, f"{rid}inference input '{name}' data-type is '{dtype}', but model '{model.name}' "
                       f"expects '{want}'")
        full = model.shape(dims)
        if len(shape) != len(full) or any(w not in (-1, g) for w, g in zip(full, shape, strict=True)):
            raise Fail(400, f"{rid}unexpected shape for input '{name}' for model '{model.name}'. Expected "
                       f"{_shape_text(full)}, got {_shape_text(shape)}."
                       + (_NOTE if model.max_batch_size else " "))
        if isinstance(raw, bytes) and dtype == "BYTES":
            _check_bytes(raw, math.prod(shape), name, model.name, rid)
        elif isinstance(raw, bytes) and len(raw) != math.prod(shape) * NUMPY[dtype].itemsize:
            raise Fail(400, f"{rid}input byte size mismatch for input '{name}' for model '{model.name}'. "
                       f"Expected {math.prod(shape) * NUMPY[dtype].itemsize}, got {len(raw)}")
    tensors: dict[str, np.ndarray] = {}  # what the backend gets, once every input passed the checks above
    for name, (dtype, shape, raw) in got.items():
        if not isinstance(raw, bytes):
            tensors[name] = raw
        elif dtype == "BYTES":
            tensors[name] = _split_bytes(raw, name).reshape(shape)
        else:
            tensors[name] = np.frombuffer(raw, NUMPY[dtype]).reshape(shape).copy()
    failed = f"Failed to process the request(s) for model '{model.name}_0_0', message: "
    try:
        result = dict(model.fn(tensors))
    except Exception as exc:
        raise Fail(500, f"{failed}{type(exc).__name__}: {exc}\n\nAt:\n{_frames(exc)}", "text/plain") from None
    head: dict[str, Any] = {"id": rid_value} if rid_value else {}
    head.update(model_name=model.name, model_version=version, outputs=[])
    buffers: list[bytes] = []
    for name, declared_dtype in declared_out.items():
        if wanted and name not in wanted:
            continue
        as_binary, classes = wanted.get(name, (binary_out, 0))
        if name not in result:
            raise Fail(500, f"{failed}the model function returned no output '{name}'", "text/plain")
        array, dtype = np.asarray(result[name]), declared_dtype
        ok = array.dtype.kind in "OSU" if dtype == "BYTES" else array.dtype == NUMPY[dtype]
        if not ok:
            raise Fail(500, f"{failed}output '{name}' is {array.dtype}, but the model declares {dtype}", "text/plain")
        if classes:
            array, dtype = _classify(array, classes, model.max_batch_size > 0), "BYTES"
        entry: dict[str, Any] = {"name": name, "datatype": dtype, "shape": list(array.shape)}
        if not as_binary and dtype in ("FP16", "BF16"):
            raise Fail(400, f"sending {dtype} data via JSON is not supported. Please use the binary data format "
                       "for output", "text/plain")
        if as_binary:
            raw = serialize_bytes(array) if dtype == "BYTES" else np.ascontiguousarray(array).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            buffers.append(raw)
        else:
            entry["data"] = _to_json(array, dtype)
        head["outputs"].append(entry)
    return head, buffers


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogateescape")


def encode(head: dict[str, Any], buffers: list[bytes], accept: str | None) -> tuple[bytes, str, dict[str, str]]:
    """An infer response: JSON header, then the binary outputs in order; compressed as the client accepts."""
    body, headers = dumps(head), {}
    content_type = "application/json"
    if buffers:
        content_type, headers["Inference-Header-Content-Length"] = "application/octet-stream", str(len(body))
        body += b"".join(buffers)
    accepted = {token.split(";")[0].strip().lower() for token in (accept or "").split(",")}
    if "gzip" in accepted:
        body, headers["Content-Encoding"] = gzip.compress(body, mtime=0), "gzip"
    elif "deflate" in accepted:
        body, headers["Content-Encoding"] = zlib.compress(body), "deflate"
    return body, content_type, headers


def derived_outputs(model: str, inputs: Sequence[Tensor], outputs: Sequence[Tensor]) -> Fn:
    """Deterministic outputs of the declared dtype and shape, derived from the input bytes (SHAKE-256).

    A -1 at position i of an output's shape takes the size at position i of the first input (in
    declared order) that has that many dimensions, and 1 when none has. When every declared shape
    starts with -1 (a batch dimension) and the inputs agree on its size, row r of each output depends
    only on row r of each input: an item gets the same outputs alone or in any batch. Floats lie in
    [-1, 1), integers in [0, 100), BYTES elements are ``b"fake-<8 hex digits>"``.
    """
    by_rows = all(shape[:1] == (-1,) for _, _, shape in (*inputs, *outputs))

    def fn(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sizes: dict[int, int] = {}
        for name, _, _ in inputs:
            for i, size in enumerate(arrays[name].shape):
                sizes.setdefault(i, size)
        batch = sizes.get(0, 1)
        rows = by_rows and all(a.ndim and a.shape[0] == batch for a in arrays.values())
        out = {}
        for name, dtype, dims in outputs:
            shape = [sizes.get(i, 1) if d == -1 else d for i, d in enumerate(dims)]
            if rows:
                parts = [_values(_seed(model, name, {n: a[r:r + 1] for n, a in arrays.items()}), dtype, shape[1:])
                         for r in range(batch)]
                out[name] = np.stack(parts) if parts else np.zeros(shape, NUMPY[dtype])
            else:
                out[name] = _values(_seed(model, name, arrays), dtype, shape)
        return out

    return fn


def _seed(model: str, output: str, arrays: Mapping[str, np.ndarray]) -> bytes:
    digest = hashlib.sha256(f"{model}\0{output}".encode())
    for name in sorted(arrays):
        array = arrays[name]
        digest.update(f"\0{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(serialize_bytes(array) if array.dtype == object else np.ascontiguousarray(array).tobytes())
    return digest.digest()


def _values(seed: bytes, dtype: str, shape: Sequence[int]) -> np.ndarray:
    count = int(np.prod(shape))
    words = np.frombuffer(hashlib.shake_256(seed).digest(4 * count), "<u4").astype(np.int64)
    if dtype == "BYTES":
        return np.array([f"fake-{w:08x}".encode() for w in words.tolist()], dtype=object).reshape(shape)
    if dtype == "BOOL":
        return (words % 2 == 1).reshape(shape)
    if dtype in ("FP16", "FP32", "FP64", "BF16"):
        floats = words / 2.0**31 - 1.0
        if NUMPY[dtype].kind == "u":  # BF16 without ml_dtypes: the bit patterns of the values
            return (floats.astype("<f4").view("<u4") >> 16).astype("<u2").reshape(shape)
        return floats.astype(NUMPY[dtype]).reshape(shape)
    return (words % 100).astype(NUMPY[dtype]).reshape(shape)
