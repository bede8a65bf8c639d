"""The fake Triton itself: its interface, from_mapping and its deterministic outputs, faults, fixtures, speed."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as httpclient
from helpers.mappings import RUN_CONTEXT, make_mapping
from triton_helpers import entry, handle, manager
from triton_wire import exchange

from model_manager import ModelManager
from pytest_mm.fake_triton import FakeModel, FakeTriton, derived_outputs
from pytest_mm.triton import FakeTritonMappings

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "examples" / "profile.yaml"
DOUBLE = FakeModel("double", inputs=[("x", "FP32", [-1])], outputs=[("y", "FP32", [-1])],
                   fn=lambda inputs: {"y": inputs["x"] * 2}, max_batch_size=8)


def test_the_interface_of_the_issue() -> None:
    with FakeTriton([DOUBLE]) as server:
        host, port = server.url.split(":")
        assert host == "127.0.0.1" and int(port) > 0
        client = httpclient.InferenceServerClient(server.url)
        x = httpclient.InferInput("x", [1, 3], "FP32")
        x.set_data_from_numpy(np.array([[1, 2, 3]], np.float32))
        assert client.infer("double", [x], request_id="r1").as_numpy("y").tolist() == [[2, 4, 6]]
        last = server.requests[-1]
        assert (last.method, last.path, last.json["id"]) == ("POST", "/v2/models/double/infer", "r1")
        assert last.headers["inference-header-content-length"] == last.headers["Inference-Header-Content-Length"]
        assert [r.path for r in server.requests[:1]] == ["/v2/models/double/infer"]
    assert DOUBLE.versions == ("1",) and DOUBLE.platform == "python"


def test_host_and_port_can_be_chosen() -> None:
    probe = FakeTriton()
    port = probe.port
    probe.stop()
    with FakeTriton([DOUBLE], host="127.0.0.1", port=port) as server:
        assert server.url == f"127.0.0.1:{port}"
        assert exchange(server.url, "GET", "/v2/health/ready").status == 200
    try:
        with socket.socket(socket.AF_INET6) as probe6:
            probe6.bind(("::1", 0))
    except OSError:
        return  # no IPv6 loopback on this host
    with FakeTriton([DOUBLE], host="::1") as server:
        assert server.url == f"[::1]:{server.port}"
        h = handle(manager(d=entry(server.url, "double", [("x", "FP32", [-1, -1])], [("y", "FP32", [-1, -1])])), "d")
        h.check()


def test_start_to_ready_in_milliseconds() -> None:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        with FakeTriton([DOUBLE]) as server:
            assert exchange(server.url, "GET", "/v2/health/ready").status == 200
            best = min(best, time.perf_counter() - start)
    assert best < 0.05


def test_keep_alive_has_no_nagle_stall() -> None:
    with FakeTriton([DOUBLE]) as server:
        host, port = server.url.split(":")
        conn = http.client.HTTPConnection(host, int(port))
        start = time.perf_counter()
        for _ in range(100):  # 100 keep-alive requests: with the Nagle/delayed-ACK trap, about 2 s
            conn.request("GET", "/v2/models/double")
            assert conn.getresponse().read()
        assert time.perf_counter() - start < 1.0
        conn.close()


def test_a_bad_model_definition_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown datatypes"):
        FakeModel("m", [("x", "FLOAT", [1])], [], lambda i: {})
    with pytest.raises(ValueError, match="kinds are"):
        FakeTriton().inject("explode")


def test_the_model_answer_must_match_its_declaration(fake_triton: FakeTriton) -> None:
    fake_triton.add(FakeModel("loose", [("x", "FP32", [-1])], [("y", "FP32", [-1])],
                              lambda i: {"y": i["x"].astype(np.float64)}))
    client = httpclient.InferenceServerClient(fake_triton.url)
    x = httpclient.InferInput("x", [2], "FP32")
    x.set_data_from_numpy(np.zeros(2, np.float32))
    with pytest.raises(Exception, match="output 'y' is float64, but the model declares FP32"):
        client.infer("loose", [x])


# --- from_mapping ---------------------------------------------------------------------------------
def clip_mapping() -> dict[str, Any]:
    data = make_mapping()
    del data["components"]["core_optical_flow"]
    data["components"]["core_clip"]["text_encoder"]["triton"].update(
        inputs=[{"name": "input_ids", "dtype": "INT64", "shape": [-1, 77]},
                {"name": "attention_mask", "dtype": "INT64", "shape": [-1, 77]}],
        outputs=[{"name": "text_embeds", "dtype": "FP16", "shape": [-1, 512]},
                 {"name": "tokens", "dtype": "BYTES", "shape": [-1, -1]}])
    return data


def test_from_mapping_serves_every_triton_role_and_keeps_the_signature() -> None:
    original = clip_mapping()
    with FakeTriton.from_mapping(original) as server:
        assert server.mapping is not None and original["components"]["core_clip"]["image_encoder"]["triton"][
            "http_url"] == "localhost:8000"  # the caller's mapping is not touched
        mm = ModelManager(dict(RUN_CONTEXT), server.mapping)
        for role in ("image_encoder", "text_encoder"):
            spec = mm.resolve(component="core_clip", role=role)
            assert spec.triton is not None and spec.triton.http_url == server.url
            mm.triton_client(spec).check()
        text = mm.get_runtime(mm.resolve(component="core_clip", role="text_encoder"))
        out = text({"input_ids": np.ones((3, 77), np.int64), "attention_mask": np.ones((3, 77), np.int64)})
        assert out["text_embeds"].shape == (3, 512) and out["text_embeds"].dtype == np.float16
        assert out["tokens"].shape == (3, 77) and out["tokens"][0, 0].startswith(b"fake-")
        signature = mm.model_signature_for("core_clip")
    assert ModelManager(dict(RUN_CONTEXT), original).model_signature_for("core_clip") == signature


def test_from_a_profile_path(fake_triton_mapping: FakeTritonMappings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_MODELS_ROOT", str(REPO / "examples" / "models"))
    mm = ModelManager(dict(RUN_CONTEXT), fake_triton_mapping(PROFILE))
    image = mm.get_runtime(mm.resolve(component="core_clip", role="image_encoder"))
    image.check()
    embeds = image({"pixel_values": np.zeros((2, 3, 224, 224), np.float16)})["image_embeds"]
    assert embeds.shape == (2, 512) and embeds.dtype == np.float16 and np.abs(embeds).max() <= 1
    assert fake_triton_mapping.server.url == image.endpoint


def test_derived_outputs_are_deterministic_and_row_wise() -> None:
    fn = derived_outputs("m", [("a", "FP32", (-1, 3)), ("s", "BYTES", (-1,))],
                         [("v", "FP16", (-1, 4)), ("n", "INT8", (-1, -1)), ("b", "BOOL", (-1, 2))])
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    s = np.array([b"w", b"x", b"y", b"z"], dtype=object)
    first, again = fn({"a": a, "s": s}), fn({"a": a.copy(), "s": s.copy()})
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert first["v"].shape == (4, 4) and first["n"].shape == (4, 3) and first["b"].dtype == bool  # n: from a
    alone = fn({"a": a[2:3], "s": s[2:3]})  # row 2 alone gets the row-2 outputs of the batch
    assert all(np.array_equal(alone[k][0], first[k][2]) for k in first)
    other = fn({"a": a + 1, "s": s})
    assert not np.array_equal(other["v"], first["v"])
    assert ((first["n"] >= 0) & (first["n"] < 100)).all()


def test_a_model_declared_twice_differently_is_refused() -> None:
    data = clip_mapping()
    data["components"]["core_clip"]["text_encoder"]["triton"]["model_name"] = "clip_image"
    with pytest.raises(ValueError, match="declared with other inputs or outputs"):
        FakeTriton.from_mapping(data)


# --- faults ---------------------------------------------------------------------------------------
def test_stop_means_connection_refused_and_start_comes_back(fake_triton: FakeTriton) -> None:
    fake_triton.add(DOUBLE)
    h = handle(manager(d=entry(fake_triton.url, "double", [("x", "FP32", [-1, -1])], [("y", "FP32", [-1, -1])])),
               "d")
    h.check()
    fake_triton.stop()
    with pytest.raises(Exception, match="connection refused"):
        h.check()
    fake_triton.start()
    h.check()


def test_unload_and_add(fake_triton: FakeTriton) -> None:
    fake_triton.add(DOUBLE)
    assert exchange(fake_triton.url, "GET", "/v2/models/double/ready").status == 200
    fake_triton.unload("double")
    assert exchange(fake_triton.url, "GET", "/v2/models/double/ready").status == 400
    assert exchange(fake_triton.url, "GET", "/v2/models/double").status == 404
    with pytest.raises(ValueError):
        fake_triton.unload("double")
    fake_triton.add(DOUBLE)
    assert list(fake_triton.models) == ["double"]


def test_error_on_the_nth_call_for_a_number_of_calls(fake_triton: FakeTriton) -> None:
    fake_triton.add(DOUBLE)
    fake_triton.inject("error", model="double", on_call=2, times=2, status=503, message="busy")
    data = json.dumps({"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1]}]}).encode()
    statuses = [exchange(fake_triton.url, "POST", "/v2/models/double/infer", data).status for _ in range(5)]
    assert statuses == [200, 503, 503, 200, 200]
    assert exchange(fake_triton.url, "GET", "/v2/health/ready").status == 200  # infer requests only


def test_the_module_needs_neither_pytest_nor_the_plugin(tmp_path: Path) -> None:
    code = (
        "import sys, types, importlib.util\n"
        "sys.modules['pytest'] = None  # any import of pytest fails\n"
        f"package = types.ModuleType('pytest_mm'); package.__path__ = [{str(REPO / 'pytest_mm')!r}]\n"
        "sys.modules['pytest_mm'] = package  # the module alone, without the plugin's __init__\n"
        "from pytest_mm.fake_triton import FakeModel, FakeTriton\n"
        "import http.client, json\n"
        "m = FakeModel('m', [('x', 'INT32', [-1])], [('y', 'INT32', [-1])], lambda i: {'y': i['x'] + 1})\n"
        "with FakeTriton([m]) as s:\n"
        "    c = http.client.HTTPConnection(*s.url.split(':'))\n"
        "    c.request('POST', '/v2/models/m/infer', json.dumps({'inputs': [{'name': 'x', 'shape': [2],"
        " 'datatype': 'INT32', 'data': [1, 2]}]}))\n"
        "    print(json.loads(c.getresponse().read())['outputs'][0]['data'])\n"
        "print(sorted(n for n in ('pytest', '_pytest', 'tritonclient') if sys.modules.get(n)))\n"
    )
    script = tmp_path / "alone.py"  # a file, not ``-c``: the guard refuses one-liners that open sockets
    script.write_text(code, encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[2, 3]", "[]"]
