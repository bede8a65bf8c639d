"""The contract: the same requests to a real Triton 2.51 and to the fake get the same answers.

Status codes, content types, error bodies (``{"error": ...}``) and their wording, metadata, config and
tensors of every datatype, batched and unbatched models, JSON and binary, gzip and deflate. Where
the real server's text cannot be reproduced (a C++ JSON parser's message, a Python traceback's file
paths) the comparison names the part that must agree.
"""

from __future__ import annotations

import gzip
import json
import struct
import sys
import zlib
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from contract_models import BY_NAME, DTYPES, MODELS
from triton_wire import Answer, binary_input, body, exchange, json_input, same

pytestmark = pytest.mark.triton_contract

INFER = "/v2/models/{}/infer"
X4 = np.arange(4, dtype=np.float32).reshape(1, 4)


def both(real_url: str, fake_url: str, method: str, path: str, data: bytes = b"",
         headers: dict[str, str] | None = None, **options: Any) -> Answer:
    return same(exchange(real_url, method, path, data, headers), exchange(fake_url, method, path, data, headers),
                **options)


def infer(real_url: str, fake_url: str, model: str, request: tuple[bytes, dict[str, str]], **options: Any) -> Answer:
    return both(real_url, fake_url, "POST", INFER.format(model), *request, infer=True, **options)


# --- health, metadata, config, routing ---------------------------------------------------------
GETS = [
    ("/v2/health/live", 200), ("/v2/health/ready", 200), ("/v2", 200),
    ("/v2/models/double/ready", 200), ("/v2/models/twover/versions/1/ready", 200),
    ("/v2/models/nope/ready", 400), ("/v2/models/double/versions/2/ready", 400),
    *[(f"/v2/models/{m.name}", 200) for m in MODELS],
    ("/v2/models/twover/versions/2", 200), ("/v2/models/double/versions/01", 200), ("/v2/models/double?x=1", 200),
    ("/v2/models/nope", 404), ("/v2/models/nope/config", 404), ("/v2/models/nope/versions/1", 404),
    ("/v2/models/double/versions/2", 404), ("/v2/models/double/versions/2/config", 404),
    ("/v2/models/double/versions/abc", 404), ("/v2/models/double/versions/-1", 404), ("/nope", 404),
    ("/v2/", 404), ("/v2/models/double/", 404), ("/v2/health/live/", 404),
]


@pytest.mark.parametrize(("path", "status"), GETS, ids=[p for p, _ in GETS])
def test_get(real_url: str, fake_url: str, path: str, status: int) -> None:
    assert both(real_url, fake_url, "GET", path).status == status


METHODS = [("GET", "/v2/models/double/infer", 405), ("POST", "/v2/health/live", 405), ("HEAD", "/v2/health/live", 405),
           ("DELETE", "/v2/models/double", 405), ("POST", "/v2/models/double", 405),
           ("GET", "/v2/repository/index", 405), ("POST", "/v2/repository/index", 200),
           ("POST", "/v2/repository/models/double/load", 503), ("POST", "/v2/repository/models/double/unload", 503)]


@pytest.mark.parametrize(("method", "path", "status"), METHODS, ids=[f"{m} {p}" for m, p, _ in METHODS])
def test_methods(real_url: str, fake_url: str, method: str, path: str, status: int) -> None:
    if method == "HEAD":  # no body comes back to a HEAD
        real, fake = exchange(real_url, method, path), exchange(fake_url, method, path)
        assert (real.status, real.content_type) == (fake.status, fake.content_type) == (status, "text/plain")
        assert real.headers["content-length"] == fake.headers["content-length"] and real.body == fake.body == b""
        return
    assert both(real_url, fake_url, method, path).status == status


@pytest.mark.parametrize("model", [m.name for m in MODELS])
def test_model_config(real_url: str, fake_url: str, model: str) -> None:
    real, fake = (json.loads(exchange(u, "GET", f"/v2/models/{model}/config").body) for u in (real_url, fake_url))
    assert real.pop("parameters") == {"EXECUTION_ENV_PATH": {"string_value": sys.prefix}}  # the test setup's
    assert fake.pop("parameters") == {}
    assert fake == real


def test_batched_metadata_prepends_the_batch_dimension(real_url: str) -> None:
    meta = json.loads(exchange(real_url, "GET", "/v2/models/fixed4").body)
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]


# --- successful inference ----------------------------------------------------------------------
def _binary(**extra: Any) -> tuple[bytes, dict[str, str]]:
    item, data = binary_input("x", X4, "FP32")
    return body({"inputs": [item], **extra}, data)


def _multi(outputs: list[dict[str, Any]] | None = None, **extra: Any) -> tuple[bytes, dict[str, str]]:
    pair = [json_input("a", [1, 2], "INT32", [1, 2]), json_input("b", [1, 2], "INT32", [5, 7])]
    doc: dict[str, Any] = {"inputs": pair, **extra}
    if outputs is not None:
        doc["outputs"] = outputs
    return body(doc)


GOOD = {
    "json-in-json-out-with-id": ("double", body({"id": "req-42", "inputs": [json_input("x", [1, 4], "FP32",
                                                                                      [0, 1, 2, 3])]})),
    "json-nested-data": ("double", body({"inputs": [json_input("x", [1, 4], "FP32", [[0, 1, 2, 3]])]})),
    "binary-in-binary-out": ("double", _binary(id="abc", parameters={"binary_data_output": True})),
    "binary-in-json-out": ("double", _binary()),
    "output-binary-false-wins": ("double", _binary(outputs=[{"name": "y", "parameters": {"binary_data": False}}],
                                                   parameters={"binary_data_output": True})),
    "output-without-parameters": ("double", _binary(outputs=[{"name": "y"}])),
    "duplicate-requested-output": ("double", _binary(outputs=[{"name": "y"}, {"name": "y"}])),
    "batch-of-3": ("double", body({"inputs": [json_input("x", [3, 2], "FP32", [1, 2, 3, 4, 5, 6])]})),
    "unbatched": ("nobatch", body({"inputs": [json_input("x", [2, 3], "FP32", [0.5] * 6)]})),
    "fixed-dims": ("fixed4", body({"inputs": [json_input("x", [2, 4], "FP32", list(range(8)))]})),
    "mixed-binary-and-json-outputs": ("multi", _multi([{"name": "diff", "parameters": {"binary_data": True}},
                                                       {"name": "sum", "parameters": {"binary_data": False}}])),
    "output-subset": ("multi", _multi([{"name": "diff"}], parameters={"binary_data_output": True})),
    "all-outputs-binary": ("multi", _multi(parameters={"binary_data_output": True})),
    "classification": ("double", _binary(outputs=[{"name": "y", "parameters": {"classification": 2}}])),
    "classification-binary": ("double", _binary(outputs=[{"name": "y", "parameters": {"classification": 3,
                                                                                       "binary_data": True}}])),
    "ignored-parameters": ("double", _binary(parameters={"sequence_id": 5, "priority": 1, "timeout": 100,
                                                         "foo": "bar"})),
    "float-out-of-fp32-range": ("double", body({"inputs": [json_input("x", [1, 1], "FP32", [1e40])]})),
    "latest-version": ("twover", body({"inputs": [json_input("x", [1], "INT64", [5])]})),
}


@pytest.mark.parametrize("case", list(GOOD))
def test_infer(real_url: str, fake_url: str, case: str) -> None:
    model, request = GOOD[case]
    assert infer(real_url, fake_url, model, request).status == 200


def test_infer_a_pinned_version(real_url: str, fake_url: str) -> None:
    request = body({"inputs": [json_input("x", [1], "INT64", [5])]})
    answer = both(real_url, fake_url, "POST", "/v2/models/twover/versions/1/infer", *request, infer=True)
    assert json.loads(answer.body)["model_version"] == "1"


# --- every datatype ----------------------------------------------------------------------------
NUMPY = {"BOOL": np.bool_, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64, "BF16": ml_dtypes.bfloat16,
         **{d: np.dtype(d.lower()) for d in DTYPES if d[:3] in ("UIN", "INT")}}


def every_dtype(count: int = 4) -> dict[str, np.ndarray]:
    out = {}
    for dtype in DTYPES:
        if dtype == "BYTES":
            out[dtype] = np.array([b"hi", b"", "café".encode(), b"\xff\xfe\x00"][:count], dtype=object)
        elif dtype == "BOOL":
            out[dtype] = np.array([True, False, True, True][:count])
        else:
            out[dtype] = np.array([1, 0.5, -2, 100][:count] if dtype[0] in "FB" else [1, 2, 3, 100][:count],
                                  dtype=NUMPY[dtype])
    return out


def types_request(outputs: list[dict[str, Any]] | None = None, *, json_for: tuple[str, ...] = (),
                  override: dict[str, bytes] | None = None, shapes: dict[str, list[int]] | None = None,
                  **extra: Any) -> tuple[bytes, dict[str, str]]:
    inputs, buffers = [], []
    for dtype, array in every_dtype().items():
        if dtype in json_for:
            data = [x.decode("latin-1") if isinstance(x, bytes) else x.item() for x in array]
            inputs.append(json_input(f"in_{dtype}", [len(data)], dtype, data))
            continue
        item, data = binary_input(f"in_{dtype}", array, dtype)
        if override and dtype in override:
            data = override[dtype]
            item["parameters"]["binary_data_size"] = len(data)
        if shapes and dtype in shapes:
            item["shape"] = shapes[dtype]
        inputs.append(item)
        buffers.append(data)
    doc: dict[str, Any] = {"inputs": inputs, **extra}
    if outputs is not None:
        doc["outputs"] = outputs
    return body(doc, *buffers)


def test_every_datatype_binary_both_ways(real_url: str, fake_url: str) -> None:
    answer = infer(real_url, fake_url, "types", types_request(parameters={"binary_data_output": True}))
    _, _, buffers = answer.decoded()
    assert set(buffers) == {f"out_{d}" for d in DTYPES}
    assert buffers["out_BYTES"] == b"\x02\x00\x00\x00hi\x00\x00\x00\x00\x05\x00\x00\x00caf\xc3\xa9" \
                                   b"\x03\x00\x00\x00\xff\xfe\x00"
    assert np.frombuffer(buffers["out_FP16"], np.float16).tolist() == [1, 0.5, -2, 100]


def test_every_datatype_as_json_output(real_url: str, fake_url: str) -> None:
    wanted = [{"name": f"out_{d}", "parameters": {"binary_data": False}} for d in DTYPES if d not in ("FP16", "BF16")]
    _, outputs, _ = infer(real_url, fake_url, "types", types_request(wanted)).decoded()
    assert outputs["out_BOOL"]["data"] == [True, False, True, True]
    assert outputs["out_BYTES"]["data"][:2] == ["hi", ""]


@pytest.mark.parametrize("dtype", ["FP16", "BF16"])
def test_half_floats_cannot_leave_as_json(real_url: str, fake_url: str, dtype: str) -> None:
    answer = infer(real_url, fake_url, "types", types_request([{"name": f"out_{dtype}",
                                                               "parameters": {"binary_data": False}}]))
    assert answer.status == 400 and f"sending {dtype} data via JSON" in answer.error()


@pytest.mark.parametrize("dtype", [d for d in DTYPES if d not in ("FP16", "BF16")])
def test_every_datatype_as_json_input(real_url: str, fake_url: str, dtype: str) -> None:
    request = types_request([{"name": f"out_{dtype}", "parameters": {"binary_data": False}}], json_for=(dtype,))
    assert infer(real_url, fake_url, "types", request).status == 200


@pytest.mark.parametrize("dtype", ["FP16", "BF16"])
def test_half_floats_cannot_arrive_as_json(real_url: str, fake_url: str, dtype: str) -> None:
    answer = infer(real_url, fake_url, "types", types_request(json_for=(dtype,)))
    assert answer.error() == f"receiving {dtype} data via JSON is not supported. Please use the binary data " \
                             f"format for input in_{dtype}"


# --- compression -------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_request(real_url: str, fake_url: str, encoding: str) -> None:
    data, headers = _binary(parameters={"binary_data_output": True})
    packed = gzip.compress(data) if encoding == "gzip" else zlib.compress(data)
    assert infer(real_url, fake_url, "double", (packed, {**headers, "Content-Encoding": encoding})).status == 200


@pytest.mark.parametrize("accept", ["gzip", "deflate", "gzip, deflate", "br"])
def test_compressed_answer(real_url: str, fake_url: str, accept: str) -> None:
    data, headers = _binary(parameters={"binary_data_output": True})
    answer = infer(real_url, fake_url, "double", (data, {**headers, "Accept-Encoding": accept}))
    assert answer.headers.get("content-encoding") == {"br": None}.get(accept, accept.partition(",")[0])


# --- bad requests: the protocol notes' error table, and more ----------------------------------
def _x(**item: Any) -> dict[str, Any]:
    return {**json_input("x", [1, 4], "FP32", [0, 1, 2, 3]), **item}


def _sized(size: int, data: bytes, **headers: str) -> tuple[bytes, dict[str, str]]:
    item = {"name": "x", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": size}}
    return body({"inputs": [item]}, data, **headers)


def _bytes(value: bytes, shape: list[int] | None = None) -> tuple[bytes, dict[str, str]]:
    return types_request(override={"BYTES": value}, shapes={"BYTES": shape} if shape else None)


PLAIN = body({"inputs": [_x()]})
BAD: dict[str, tuple[str, tuple[bytes, dict[str, str]], int]] = {
    "wrong-dtype": ("double", body({"inputs": [_x(datatype="INT32")]}), 400),
    "wrong-dtype-with-request-id": ("double", body({"id": "abc-1", "inputs": [_x(datatype="INT32")]}), 400),
    "wrong-shape-batched": ("fixed4", body({"inputs": [json_input("x", [1, 3], "FP32", [0, 1, 2])]}), 400),
    "wrong-rank-batched": ("double", body({"inputs": [json_input("x", [4], "FP32", [0, 1, 2, 3])]}), 400),
    "wrong-shape-unbatched": ("nobatch", body({"inputs": [json_input("x", [1, 2, 3], "FP32", [0] * 6)]}), 400),
    "batch-over-max": ("double", body({"inputs": [json_input("x", [9, 1], "FP32", [0] * 9)]}), 400),
    "unknown-input": ("double", body({"inputs": [_x(name="xx")]}), 400),
    "unknown-output": ("double", body({"inputs": [_x()], "outputs": [{"name": "zz"}]}), 400),
    "unknown-output-no-inputs": ("double", body({"inputs": [], "outputs": [{"name": "zz"}]}), 400),
    "no-inputs": ("double", body({"inputs": []}), 400),
    "missing-one-input": ("multi", body({"inputs": [json_input("a", [1, 2], "INT32", [1, 2])]}), 400),
    "extra-input": ("double", body({"inputs": [_x(), _x(name="extra")]}), 400),
    "duplicate-input": ("double", body({"inputs": [_x(), _x()]}), 400),
    "binary-shorter-than-size": ("double", _sized(16, X4.tobytes()[:12]), 400),
    "binary-without-header-length": ("double", (_sized(16, X4.tobytes())[0], {}), 400),
    "binary-size-not-shape": ("double", _sized(8, X4.tobytes()[:8]), 400),
    "binary-extra-bytes": ("double", _sized(16, X4.tobytes() + b"zz"), 400),
    "bytes-length-overruns": ("types", _bytes(struct.pack("<I", 255) + b"hi", [1]), 400),
    "bytes-too-few-elements": ("types", _bytes(struct.pack("<I", 255) + b"hi"), 400),
    "bytes-cut-length-indicator": ("types", _bytes(struct.pack("<I", 2) + b"hi\x00\x00"), 400),
    "bytes-too-many-elements": ("types", _bytes(b"".join(struct.pack("<I", 1) + b"a" for _ in range(5))), 400),
    "unknown-datatype": ("double", body({"inputs": [_x(datatype="FP33")]}), 400),
    "no-data-field": ("double", body({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32"}]}), 400),
    "data-and-binary": ("double", body({"inputs": [_x(parameters={"binary_data_size": 16})]}), 400),
    "data-count-not-shape": ("double", body({"inputs": [_x(data=[0, 1, 2])]}), 500),
    "data-not-numbers": ("double", body({"inputs": [_x(data=["a", 1, 2, 3])]}), 500),
    "data-not-a-list": ("double", body({"inputs": [_x(data=7)]}), 500),
    "negative-dim": ("double", body({"inputs": [_x(shape=[1, -4])]}), 500),
    "shape-not-a-list": ("double", body({"inputs": [_x(shape="abc")]}), 500),
    "no-inputs-member": ("double", body({}), 500),
    "inputs-not-a-list": ("double", body({"inputs": {}}), 500),
    "input-without-name": ("double", body({"inputs": [{k: v for k, v in _x().items() if k != "name"}]}), 500),
    "input-name-not-a-string": ("double", body({"inputs": [_x(name=5)]}), 500),
    "input-without-shape": ("double", body({"inputs": [{k: v for k, v in _x().items() if k != "shape"}]}), 500),
    "input-without-datatype": ("double", body({"inputs": [{k: v for k, v in _x().items() if k != "datatype"}]}), 500),
    "outputs-not-a-list": ("double", body({"inputs": [_x()], "outputs": {}}), 500),
    "output-without-name": ("double", body({"inputs": [_x()], "outputs": [{"nome": "y"}]}), 500),
    "id-not-a-string": ("double", body({"id": 5, "inputs": [_x()]}), 500),
    "binary-data-output-not-bool": ("double", body({"inputs": [_x()], "parameters": {"binary_data_output": "yes"}}),
                                    500),
    "binary-data-not-bool": ("double", body({"inputs": [_x()], "outputs": [{"name": "y", "parameters": {
        "binary_data": 1}}]}), 500),
    "header-length-beyond-body": ("double", (PLAIN[0], {"Inference-Header-Content-Length": "999"}), 400),
    "header-length-negative": ("double", (PLAIN[0], {"Inference-Header-Content-Length": "-5"}), 400),
    "unsupported-content-encoding": ("double", (PLAIN[0], {"Content-Encoding": "br"}), 501),
    "gzip-that-is-not-gzip": ("double", (b"garbage", {"Content-Encoding": "gzip",
                                                     "Inference-Header-Content-Length": "4"}), 400),
    "unknown-model": ("nope", PLAIN, 404),
    "model-raises": ("raiser", body({"inputs": [json_input("x", [2], "FP32", [0, 1])]}), 500),
    "model-fails-on-bad-shapes": ("multi", body({"inputs": [json_input("a", [1, 3], "INT32", [1, 2, 3]),
                                                            json_input("b", [1, 2], "INT32", [1, 2])]}), 500),
}


def _until_traceback(message: str) -> str:
    # A model's exception: Triton adds its Python traceback (file paths differ); the rest must agree.
    return message.split("\n\nAt:\n", 1)[0]


@pytest.mark.parametrize("case", list(BAD))
def test_bad_request(real_url: str, fake_url: str, case: str) -> None:
    model, request, status = BAD[case]
    message = _until_traceback if model in ("raiser", "multi") else (lambda m: m)
    answer = infer(real_url, fake_url, model, request, message=message)
    assert answer.status == status


def test_malformed_json(real_url: str, fake_url: str) -> None:
    # Triton's message is its JSON parser's (RapidJSON); the fake's is Python's: the prefix agrees.
    prefix = "failed to parse the request JSON buffer: "
    answer = infer(real_url, fake_url, "double", (b"{", {}), message=lambda m: m[: len(prefix)])
    assert answer.status == 500 and answer.error().startswith(prefix)


def test_unknown_version(real_url: str, fake_url: str) -> None:
    answer = both(real_url, fake_url, "POST", "/v2/models/double/versions/2/infer", *PLAIN)
    assert answer.error() == "Request for unknown model: 'double' version 2 is not found"


def test_the_protocol_notes_wording(real_url: str) -> None:
    """A few of the notes' messages, verbatim from the real server (the fake is compared to it above)."""
    cases = {"wrong-dtype": "[request id: <id_unknown>] inference input 'x' data-type is 'INT32', but model "
                            "'double' expects 'FP32'",
             "wrong-shape-unbatched": "[request id: <id_unknown>] unexpected shape for input 'x' for model "
                                      "'nobatch'. Expected [2,3], got [1,2,3]. ",
             "extra-input": "[request id: <id_unknown>] expected 1 inputs but got 2 inputs for model 'double'. Got "
                            "input(s) ['extra','x'], but missing required input(s) ]. Please provide all required "
                            "input(s)."}
    for case, text in cases.items():
        model, request, _ = BAD[case]
        assert exchange(real_url, "POST", INFER.format(model), *request).error() == text
    raised = exchange(real_url, "POST", INFER.format("raiser"), *BAD["model-raises"][1]).error()
    assert raised.startswith("Failed to process the request(s) for model 'raiser_0_0', message: ValueError: boom "
                             "from model function\n\nAt:\n")


def test_contract_models_are_the_ones_served(fake_url: str) -> None:
    index = json.loads(exchange(fake_url, "POST", "/v2/repository/index").body)
    assert {(e["name"], e["version"]) for e in index} == {(m.name, v) for m in MODELS for v in m.versions}
    assert BY_NAME["types"].inputs[0] == ("in_BOOL", "BOOL", [-1])
