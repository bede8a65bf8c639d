"""The Triton handle: one per role, shared pool, thread-safe, strict, binary tensors, timeouts, no retries."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from helpers.mappings import RUN_CONTEXT, make_mapping
from triton_helpers import DOUBLE_IO, double, entry, handle, manager, sample

from model_manager import ModelManager
from model_manager.errors import ModelManagerError
from model_manager.runtimes import DEFAULT_CONNECT_TIMEOUT, DEFAULT_NETWORK_TIMEOUT, TritonTimeouts
from pytest_mm.fake_triton import FakeModel, FakeTriton

REPO = Path(__file__).resolve().parents[2]


def doubler(**options: Any) -> FakeModel:
    return FakeModel("double", [("x", "FP32", [-1])], [("y", "FP32", [-1])], lambda i: {"y": i["x"] * 2},
                     max_batch_size=64, **options)


def infer_requests(server: FakeTriton) -> list[Any]:
    return [r for r in server.requests if r.path.endswith("/infer")]


def test_one_handle_per_role_sharing_the_endpoints_pool(fake_triton: FakeTriton) -> None:
    fake_triton.add(doubler())
    mm = manager(a=double(fake_triton.url, preset="clip_224"), b=double(fake_triton.url))
    spec = mm.resolve(component="core_test", role="a")
    first = mm.triton_client(spec)
    assert mm.triton_client(spec) is first and mm.get_runtime(spec) is first
    other = mm.triton_client(mm.resolve(component="core_test", role="b"))
    assert other is not first and other._pool is first._pool  # one connection pool per endpoint
    assert (first.endpoint, first.model_name, first.model_version, first.preprocess_preset) == \
        (fake_triton.url, "double", "1", "clip_224")
    assert [(t.name, t.dtype, t.shape) for t in first.inputs] == [("x", "FP32", [-1, -1])]
    assert [(t.name, t.dtype, t.shape) for t in first.outputs] == [("y", "FP32", [-1, -1])]
    assert (first.component, first.role) == ("core_test", "a")


def test_eight_threads_on_one_handle_each_get_their_answer(fake_triton: FakeTriton) -> None:
    fake_triton.add(doubler())
    h = handle(manager(d=double(fake_triton.url)), "d")
    h.check()
    wrong: list[str] = []

    def work(worker: int) -> None:
        for call in range(40):
            x = np.full((1 + call % 3, 5), worker * 1000 + call, dtype=np.float32)
            y = h.infer({"x": x}, request_id=f"{worker}-{call}")["y"]
            if y.shape != x.shape or not (y == x * 2).all():
                wrong.append(f"{worker}-{call}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert len(infer_requests(fake_triton)) == 8 * 40
    assert len(h._pool._idle) <= 8  # connections were reused, not one per call


def test_infer_sends_binary_tensors_and_returns_read_only_arrays(fake_triton: FakeTriton) -> None:
    fake_triton.add(doubler())
    h = handle(manager(d=double(fake_triton.url)), "d")
    out = h({"x": np.ones((2, 3), np.float32)}, request_id="req-7")
    assert out["y"].tolist() == [[2.0] * 3] * 2 and out["y"].dtype == np.float32
    assert not out["y"].flags.writeable
    sent = infer_requests(fake_triton)[-1]
    assert sent.json["id"] == "req-7"
    assert sent.json["inputs"] == [{"name": "x", "shape": [2, 3], "datatype": "FP32",
                                    "parameters": {"binary_data_size": 24}}]
    assert sent.json["outputs"] == [{"name": "y", "parameters": {"binary_data": True}}]
    assert int(sent.headers["Inference-Header-Content-Length"]) < len(sent.body)


@pytest.mark.parametrize("dtype", ["BYTES", "FP16", "BF16", "BOOL", "UINT64", "INT8", "FP64"])
def test_datatypes(fake_triton: FakeTriton, dtype: str) -> None:
    fake_triton.add(FakeModel("echo", [("x", dtype, [-1, 2])], [("y", dtype, [-1, 2]), ("n", "INT32", [1])],
                              lambda i: {"y": i["x"], "n": np.array([i["x"].size], np.int32)}))
    h = handle(manager(e=entry(fake_triton.url, "echo", [("x", dtype, [-1, 2])],
                               [("y", dtype, [-1, 2]), ("n", "INT32", [1])])), "e")
    h.check()
    x = sample(dtype, (3, 2))
    out = h({"x": x})
    assert out["y"].dtype == x.dtype and out["y"].tolist() == x.tolist() and out["n"].tolist() == [6]
    assert not out["y"].flags.writeable
    if dtype == "BF16":
        assert out["y"].dtype == np.dtype(ml_dtypes.bfloat16)


def test_outputs_can_be_chosen(fake_triton: FakeTriton) -> None:
    fake_triton.add(FakeModel("two", [("x", "INT32", [-1])], [("a", "INT32", [-1]), ("b", "INT32", [-1])],
                              lambda i: {"a": i["x"] + 1, "b": i["x"] - 1}))
    h = handle(manager(t=entry(fake_triton.url, "two", [("x", "INT32", [-1])],
                               [("a", "INT32", [-1]), ("b", "INT32", [-1])])), "t")
    assert list(h({"x": np.arange(3, dtype=np.int32)}, outputs=["b"])) == ["b"]
    assert set(h({"x": np.arange(3, dtype=np.int32)})) == {"a", "b"}


def test_timeouts_have_defaults_and_the_caller_sets_them(fake_triton: FakeTriton) -> None:
    assert (DEFAULT_CONNECT_TIMEOUT, DEFAULT_NETWORK_TIMEOUT) == (2.0, 60.0)
    fake_triton.add(doubler())
    plain = manager(d=double(fake_triton.url))
    assert plain.triton_timeouts == TritonTimeouts(2.0, 60.0) == handle(plain, "d").timeouts
    tuned = manager({"connect": 0.5, "network": 3}, d=double(fake_triton.url))
    assert handle(tuned, "d").timeouts == TritonTimeouts(connect=0.5, network=3.0)
    assert handle(tuned, "d")._pool is not handle(plain, "d")._pool


@pytest.mark.parametrize(("timeouts", "field"), [
    ({"connect": 0}, "triton_timeouts.connect"), ({"network": -1}, "triton_timeouts.network"),
    ({"network": float("nan")}, "triton_timeouts.network"), ({"network": True}, "triton_timeouts.network"),
    ({"network": "5"}, "triton_timeouts.network"), ({"read": 5}, "triton_timeouts"), ([1, 2], "triton_timeouts"),
])
def test_bad_timeouts_are_refused(timeouts: Any, field: str) -> None:
    with pytest.raises(ModelManagerError) as info:
        ModelManager(dict(RUN_CONTEXT), {"schema_version": 1, "components": {"c": {"r": double("127.0.0.1:1")}}},
                     triton_timeouts=timeouts)
    assert info.value.code == "invalid_model_spec" and info.value.field == field


@pytest.mark.parametrize("fault", ["close", "error", "garbage", "truncate"])
def test_a_failed_infer_was_sent_exactly_once(fake_triton: FakeTriton, fault: str) -> None:
    fake_triton.add(doubler())
    h = handle(manager(d=double(fake_triton.url)), "d")
    h({"x": np.ones((1, 2), np.float32)})  # a pooled keep-alive connection now exists
    fake_triton.inject(fault)
    with pytest.raises(ModelManagerError):
        h({"x": np.ones((1, 2), np.float32)})
    assert len(infer_requests(fake_triton)) == 2  # the first call, and the failed one once


@pytest.mark.parametrize("fault", ["close", "error"])
def test_a_failed_check_request_was_sent_exactly_once(fake_triton: FakeTriton, fault: str) -> None:
    fake_triton.add(doubler())
    h = handle(manager(d=double(fake_triton.url)), "d")
    fake_triton.inject(fault, infer_only=False)
    with pytest.raises(ModelManagerError):
        h.check()
    assert [r.path for r in fake_triton.requests] == ["/v2/health/live"]


def test_a_hanging_server_is_waited_for_once(fake_triton: FakeTriton) -> None:
    fake_triton.add(doubler())
    h = handle(manager({"network": 0.3}, d=double(fake_triton.url)), "d")
    fake_triton.inject("hang", times=None)
    with pytest.raises(ModelManagerError) as info:
        h({"x": np.ones((1, 2), np.float32)})
    assert info.value.code == "triton_infer_failed" and "0.3 s" in info.value.message
    assert len(infer_requests(fake_triton)) == 1


def test_specs_from_elsewhere_and_other_runtimes_are_refused(fake_triton: FakeTriton, models_root: Path) -> None:
    data = make_mapping()
    data["components"]["core_clip"]["image_encoder"]["triton"]["http_url"] = fake_triton.url
    mm = ModelManager(dict(RUN_CONTEXT), data)
    spec = mm.resolve(component="core_clip", role="image_encoder")
    edited = spec.model_copy(update={"triton": spec.triton.model_copy(update={"http_url": "127.0.0.1:9"})})
    flow = mm.resolve(component="core_optical_flow", role="flow")
    for call, arg, field in [(mm.triton_client, edited, "spec"), (mm.get_runtime, edited, "spec"),
                             (mm.triton_client, flow, "runtime"),
                             (mm.triton_client, "core_clip", "spec")]:
        with pytest.raises(ModelManagerError) as info:
            call(arg)
        assert (info.value.code, info.value.field) == ("invalid_model_spec", field)


def test_tritonclient_loads_only_when_a_handle_is_made(fake_triton: FakeTriton) -> None:
    fake_triton.add(doubler())
    code = (
        "import json, sys\n"
        "from model_manager import ModelManager\n"
        "mm = ModelManager(json.loads(sys.argv[1]), json.loads(sys.argv[2]))\n"
        "before = [m for m in ('tritonclient', 'gevent', 'numpy') if m in sys.modules]\n"
        "h = mm.triton_client(mm.resolve(component='core_test', role='d'))\n"
        "print(json.dumps([before, 'tritonclient' in sys.modules]))\n"
    )
    data = {"schema_version": 1, "components": {"core_test": {"d": double(fake_triton.url)}}}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(RUN_CONTEXT), json.dumps(data)], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [[], True]


def test_double_io_matches_the_fake(fake_triton: FakeTriton) -> None:
    fake_triton.add(doubler())
    assert DOUBLE_IO[0][0][2] == [-1, -1]  # Triton prepends the batch dimension: the spec writes it
    handle(manager(d=double(fake_triton.url)), "d").check()
