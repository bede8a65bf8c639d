"""Raw HTTP against a Triton (real or fake), and the comparison the contract suite makes of two answers."""

from __future__ import annotations

import gzip
import http.client
import json
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def error(self) -> str:
        """The message of an error answer; its body must be exactly ``{"error": "<text>"}``."""
        doc = json.loads(self.body)
        assert isinstance(doc, dict) and list(doc) == ["error"] and isinstance(doc["error"], str), self.body[:300]
        return doc["error"]

    def decoded(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, bytes]]:
        """(header without outputs, outputs by name, binary data by name), Content-Encoding undone."""
        body = self.body
        encoding = self.headers.get("content-encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        size = self.headers.get("inference-header-content-length")
        header, rest = (body, b"") if size is None else (body[: int(size)], body[int(size):])
        doc = json.loads(header.decode("utf-8", "surrogateescape"))  # Triton writes BYTES raw, not UTF-8
        outputs = {o["name"]: o for o in doc.pop("outputs")}
        buffers: dict[str, bytes] = {}
        for out in json.loads(header.decode("utf-8", "surrogateescape"))["outputs"]:  # wire order
            n = out.get("parameters", {}).get("binary_data_size")
            if n is not None:
                buffers[out["name"]], rest = rest[:n], rest[n:]
        assert rest == b"", "bytes beyond the announced outputs"
        return doc, outputs, buffers


def exchange(url: str, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Answer:
    host, port = url.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def same(real: Answer, fake: Answer, message: Callable[[str], str] = lambda m: m, *, infer: bool = False) -> Answer:
    """The fake answered as the real server did: status, content type, and the error message, or the
    JSON (an infer answer: its decoded header and tensors, outputs by name, since Triton's output order
    is a hash order)."""
    assert (fake.status, fake.content_type) == (real.status, real.content_type), (real, fake)
    if real.status != 200:
        assert message(fake.error()) == message(real.error())
    elif infer:
        assert fake.headers.get("content-encoding") == real.headers.get("content-encoding")
        assert ("inference-header-content-length" in fake.headers) == \
            ("inference-header-content-length" in real.headers)
        assert fake.decoded() == real.decoded()
    elif real.body:
        assert json.loads(fake.body) == json.loads(real.body)
    else:
        assert fake.body == b""
    return real


def body(header: dict[str, Any], *buffers: bytes, **headers: str) -> tuple[bytes, dict[str, str]]:
    """An infer request: JSON header, then the binary inputs (with Inference-Header-Content-Length)."""
    text = json.dumps(header).encode()
    extra = {k.replace("_", "-"): v for k, v in headers.items()}
    if buffers:
        extra["Inference-Header-Content-Length"] = str(len(text))
    return text + b"".join(buffers), extra


def raw(array: np.ndarray) -> bytes:
    if array.dtype == object:
        return b"".join(struct.pack("<I", len(x)) + x for x in array.reshape(-1))
    return array.tobytes()


def binary_input(name: str, array: np.ndarray, datatype: str) -> tuple[dict[str, Any], bytes]:
    data = raw(array)
    return {"name": name, "shape": list(array.shape), "datatype": datatype,
            "parameters": {"binary_data_size": len(data)}}, data


def json_input(name: str, shape: list[int], datatype: str, data: list[Any]) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}
