"""Bad input: each case ends in its code, with a message naming the component, role, model, version and
endpoint. (The endpoint the guard refuses is in test_triton_netns.py.)"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from triton_helpers import double, entry, handle, manager

from model_manager.errors import ModelManagerError
from pytest_mm.fake_triton import FakeModel, FakeTriton


def doubler() -> FakeModel:
    return FakeModel("double", [("x", "FP32", [-1])], [("y", "FP32", [-1])], lambda i: {"y": i["x"] * 2},
                     max_batch_size=8)


def fails(call: Any, code: str, h: Any, *needles: str) -> ModelManagerError:
    with pytest.raises(ModelManagerError) as info:
        call()
    err = info.value
    text = str(err)
    assert err.code == code, text
    for part in (f"{h.component}/{h.role}", f"model '{h.model_name}'", f"version '{h.model_version}'",
                 f"at {h.endpoint}", *needles):
        assert part in text, (part, text)
    return err


X = {"x": np.ones((1, 4), np.float32)}


@pytest.fixture
def served(fake_triton: FakeTriton) -> Any:
    fake_triton.add(doubler())
    return handle(manager({"network": 0.5}, d=double(fake_triton.url)), "d")


# --- the server is not there ---------------------------------------------------------------------
def test_unreachable_server() -> None:
    server = FakeTriton()  # bound, then closed: nothing listens on its port
    server.stop()
    h = handle(manager(d=double(server.url)), "d")
    fails(h.check, "triton_unavailable", h, "connection refused")
    fails(lambda: h(X), "triton_unavailable", h, "connection refused")


def test_wrong_port_answering_something_else() -> None:
    class NotTriton(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), NotTriton)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        h = handle(manager(d=double(f"127.0.0.1:{httpd.server_address[1]}")), "d")
        fails(h.check, "triton_unavailable", h, "the server is not live (HTTP 404")
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def full_backlog() -> Iterator[str]:
    """A port whose listen queue is full: new connections are never completed (the connect timeout)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    url = f"127.0.0.1:{listener.getsockname()[1]}"
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(listener.getsockname())
        fillers.append(s)
    yield url
    for s in [*fillers, listener]:
        s.close()


def test_connect_timeout(full_backlog: str) -> None:
    h = handle(manager({"connect": 0.2}, d=double(full_backlog)), "d")
    fails(h.check, "triton_unavailable", h, "no connection within the connect timeout (0.2 s)")


def test_a_server_that_accepts_and_never_answers(fake_triton: FakeTriton) -> None:
    fake_triton.add(doubler())
    h = handle(manager({"network": 0.3}, d=double(fake_triton.url)), "d")
    fake_triton.inject("hang", infer_only=False, times=None)
    fails(h.check, "triton_unavailable", h, "no answer within the network timeout (0.3 s)")
    fails(lambda: h(X), "triton_infer_failed", h, "no answer within the network timeout (0.3 s)", "not retried")


# --- the model is not there, or not the one the mapping describes ----------------------------------
def test_unknown_model(fake_triton: FakeTriton) -> None:
    h = handle(manager(d=double(fake_triton.url)), "d")
    err = fails(h.check, "triton_model_not_found", h, "Request for unknown model: 'double' is not found")
    assert err.field == "triton.model_name"
    fails(lambda: h(X), "triton_model_not_found", h, "Request for unknown model: 'double' is not found")


def test_unknown_version(fake_triton: FakeTriton) -> None:
    fake_triton.add(doubler())
    h = handle(manager(d=double(fake_triton.url, version="2")), "d")
    err = fails(h.check, "triton_model_not_found", h, "'double' version 2 is not found")
    assert err.field == "triton.model_version"
    fails(lambda: h(X), "triton_model_not_found", h, "'double' version 2 is not found")


def test_an_unloaded_model(fake_triton: FakeTriton) -> None:
    fake_triton.add(doubler())
    h = handle(manager(d=double(fake_triton.url)), "d")
    h.check()
    fake_triton.unload("double")
    fails(h.check, "triton_model_not_found", h, "is not found")


MISMATCHES = {
    "input missing": ([("y", "FP32", [-1])], [("y", "FP32", [-1])], "input 'x' (FP32 [-1, -1]) is not served"),
    "input extra": ([("x", "FP32", [-1]), ("z", "FP32", [-1])], [("y", "FP32", [-1])],
                    "input 'z' is served but not in the spec"),
    "input dtype": ([("x", "FP16", [-1])], [("y", "FP32", [-1])], "input 'x' is 'FP16' on the server, FP32"),
    "input rank": ([("x", "FP32", [-1, 3])], [("y", "FP32", [-1])],
                   "input 'x' has shape [-1, -1, 3] on the server, [-1, -1] in the spec"),
    "output dtype": ([("x", "FP32", [-1])], [("y", "INT8", [-1])], "output 'y' is 'INT8' on the server, FP32"),
    "output missing": ([("x", "FP32", [-1])], [("w", "FP32", [-1])], "output 'y' (FP32 [-1, -1]) is not served"),
    "output extra": ([("x", "FP32", [-1])], [("y", "FP32", [-1]), ("w", "FP32", [-1])],
                     "output 'w' is served but not in the spec"),
}


@pytest.mark.parametrize("kind", list(MISMATCHES))
def test_metadata_mismatch(fake_triton: FakeTriton, kind: str) -> None:
    inputs, outputs, needle = MISMATCHES[kind]
    fake_triton.add(FakeModel("double", inputs, outputs, lambda i: {}, max_batch_size=8))
    h = handle(manager(d=double(fake_triton.url)), "d")
    fails(h.check, "triton_model_not_found", h, "the served model differs from the spec", needle)


def test_every_metadata_difference_in_one_error(fake_triton: FakeTriton) -> None:
    fake_triton.add(FakeModel("double", [("x", "FP16", [7])], [("w", "FP32", [-1])], lambda i: {}))
    h = handle(manager(d=double(fake_triton.url)), "d")
    fails(h.check, "triton_model_not_found", h, "input 'x' is 'FP16' on the server", "input 'x' has shape [7] on",
          "output 'y' (FP32 [-1, -1]) is not served", "output 'w' is served but not in the spec")


def test_fixed_dims_match_and_minus_one_matches_any(fake_triton: FakeTriton) -> None:
    fake_triton.add(FakeModel("fixed", [("x", "FP32", [3, 4])], [("y", "FP32", [-1])], lambda i: {}))
    h = handle(manager(d=entry(fake_triton.url, "fixed", [("x", "FP32", [-1, 4])], [("y", "FP32", [5])])), "d")
    h.check()
    h = handle(manager(d=entry(fake_triton.url, "fixed", [("x", "FP32", [3, 5])], [("y", "FP32", [5])])), "d")
    fails(h.check, "triton_model_not_found", h, "input 'x' has shape [3, 4] on the server, [3, 5] in the spec")


# --- bad inputs: nothing is sent -------------------------------------------------------------------
BAD_INPUTS = {
    "wrong name": ({"z": np.ones((1, 4), np.float32)}, ["missing input 'x' (FP32 [-1, -1])",
                                                        "input 'z' is not in the spec"]),
    "wrong dtype": ({"x": np.ones((1, 4), np.float64)}, ["input 'x' has dtype float64, the spec declares FP32"]),
    "wrong rank": ({"x": np.ones(4, np.float32)}, ["input 'x' has shape [4] (rank 1), the spec declares [-1, -1]"]),
    "missing input": ({}, ["missing input 'x'"]),
    "extra input": ({"x": np.ones((1, 4), np.float32), "mask": np.ones(4)}, ["input 'mask' is not in the spec"]),
    "not an array": ({"x": [[1.0, 2.0]]}, ["input 'x' must be a numpy array, got list"]),
    "big-endian": ({"x": np.ones((1, 4), ">f4")}, ["input 'x' has dtype >f4"]),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_inputs_send_nothing(fake_triton: FakeTriton, served: Any, kind: str) -> None:
    inputs, needles = BAD_INPUTS[kind]
    err = fails(lambda: served(inputs), "triton_infer_failed", served, *needles, "nothing was sent")
    assert err.field == "triton.inputs"
    assert not [r for r in fake_triton.requests if r.path.endswith("/infer")]


def test_wrong_size_of_a_fixed_dimension(fake_triton: FakeTriton) -> None:
    fake_triton.add(FakeModel("fixed", [("x", "FP32", [4])], [("y", "FP32", [4])], lambda i: {"y": i["x"]},
                              max_batch_size=8))
    h = handle(manager(d=entry(fake_triton.url, "fixed", [("x", "FP32", [-1, 4])], [("y", "FP32", [-1, 4])])), "d")
    fails(lambda: h({"x": np.ones((2, 3), np.float32)}), "triton_infer_failed", h,
          "input 'x' has shape [2, 3], the spec declares [-1, 4]", "nothing was sent")
    assert not fake_triton.requests


def test_bad_outputs_and_request_ids(served: Any) -> None:
    fails(lambda: served(X, outputs=["nope"]), "triton_infer_failed", served, "name some of the declared outputs")
    fails(lambda: served(X, request_id=7), "triton_infer_failed", served, "request_id must be a string")
    fails(lambda: served([1, 2]), "triton_infer_failed", served, "inputs must be a dict")


# --- the server refuses or fails -------------------------------------------------------------------
def test_a_request_triton_refuses(served: Any) -> None:
    fails(lambda: served({"x": np.ones((9, 4), np.float32)}), "triton_infer_failed", served,
          "Triton answered 400: [request id: <id_unknown>] inference request batch-size must be <= 8 for 'double'")


def test_a_model_that_raises(fake_triton: FakeTriton) -> None:
    def boom(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise ValueError("boom from model function")

    fake_triton.add(FakeModel("double", [("x", "FP32", [-1])], [("y", "FP32", [-1])], boom, max_batch_size=8))
    h = handle(manager(d=double(fake_triton.url)), "d")
    fails(lambda: h(X), "triton_infer_failed", h, "Triton answered 500: Failed to process the request(s) for model "
                                                  "'double_0_0', message: ValueError: boom from model function")


@pytest.mark.parametrize(("fault", "needle"), [
    ("garbage", "malformed infer answer"),
    ("truncate", "the answer was cut short: 14 of 28 body bytes came"),
    ("close", "the server closed the connection without answering"),
])
def test_malformed_or_truncated_answers(fake_triton: FakeTriton, served: Any, fault: str, needle: str) -> None:
    fake_triton.inject(fault)
    code = "triton_unavailable" if fault == "close" else "triton_infer_failed"
    fails(lambda: served(X), code, served, needle)


def test_an_error_on_the_nth_call(fake_triton: FakeTriton, served: Any) -> None:
    fake_triton.inject("error", on_call=3, status=500, message="GPU fell off the bus")
    served(X)
    served(X)
    fails(lambda: served(X), "triton_infer_failed", served, "Triton answered 500: GPU fell off the bus")
    served(X)


def test_an_answer_unlike_the_spec(fake_triton: FakeTriton) -> None:
    fake_triton.add(FakeModel("double", [("x", "FP32", [-1])], [("y", "FP64", [-1])],
                              lambda i: {"y": i["x"].astype(np.float64)}, max_batch_size=8))
    h = handle(manager(d=double(fake_triton.url)), "d")
    fails(lambda: h(X), "triton_infer_failed", h, "output 'y' came as 'FP64' [1, 4], the spec declares FP32")
