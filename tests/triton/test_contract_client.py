"""The contract through the clients: tritonclient, and the model manager's handle, get the same results
from the real Triton and from the fake (every datatype, compression, errors, check())."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import tritonclient.http as httpclient
from contract_models import DTYPES, MODELS
from triton_helpers import double, entry, handle, manager, sample
from tritonclient.utils import InferenceServerException

from model_manager.errors import ModelManagerError

pytestmark = pytest.mark.triton_contract


def _clients(real_url: str, fake_url: str) -> list[httpclient.InferenceServerClient]:
    return [httpclient.InferenceServerClient(url) for url in (real_url, fake_url)]


def test_health_and_metadata(real_url: str, fake_url: str) -> None:
    real, fake = _clients(real_url, fake_url)
    for client in (real, fake):
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("twover", "1") and not client.is_model_ready("twover", "3")
        assert not client.is_model_ready("nope")
    assert fake.get_server_metadata() == real.get_server_metadata()
    for model in MODELS:
        assert fake.get_model_metadata(model.name) == real.get_model_metadata(model.name)
        fake_config, real_config = fake.get_model_config(model.name), real.get_model_config(model.name)
        real_config["parameters"] = {}
        assert fake_config == real_config


def _types_inputs(binary: bool = True) -> tuple[dict[str, np.ndarray], list[httpclient.InferInput]]:
    arrays = {dtype: sample(dtype, (5,), seed=i) for i, dtype in enumerate(DTYPES)}
    inputs = []
    for dtype, array in arrays.items():
        tensor = httpclient.InferInput(f"in_{dtype}", list(array.shape), dtype)
        tensor.set_data_from_numpy(array, binary_data=binary or dtype in ("FP16", "BF16", "BYTES"))  # not UTF-8
        inputs.append(tensor)
    return arrays, inputs


@pytest.mark.parametrize("compression", [None, "gzip", "deflate"])
def test_every_datatype_round_trips(real_url: str, fake_url: str, compression: str | None) -> None:
    arrays, inputs = _types_inputs()
    results = [client.infer("types", inputs, request_compression_algorithm=compression,
                            response_compression_algorithm=compression) for client in _clients(real_url, fake_url)]
    for dtype, array in arrays.items():
        real, fake = (r.as_numpy(f"out_{dtype}") for r in results)
        assert real.dtype == fake.dtype == array.dtype, dtype
        assert real.tolist() == fake.tolist() == array.tolist(), dtype
    real_response, fake_response = (r.get_response() for r in results)
    assert sorted(real_response["outputs"], key=str) == sorted(fake_response["outputs"], key=str)


def test_json_inputs_and_outputs(real_url: str, fake_url: str) -> None:
    _, inputs = _types_inputs(binary=False)
    outputs = [httpclient.InferRequestedOutput(f"out_{d}", binary_data=False) for d in DTYPES
               if d not in ("FP16", "BF16", "BYTES")]  # half floats refused; these BYTES are not UTF-8
    real, fake = (c.infer("types", inputs, outputs=outputs, request_id="j-1") for c in _clients(real_url, fake_url))
    assert fake.get_response()["id"] == real.get_response()["id"] == "j-1"
    for out in outputs:
        name = out.name()
        assert fake.as_numpy(name).tolist() == real.as_numpy(name).tolist(), name  # BYTES come back as str


@pytest.mark.parametrize(("model", "shape", "status", "start"), [
    ("nope", [1, 4], "404", "Request for unknown model: 'nope' is not found"),
    ("fixed4", [1, 3], "400", "[request id: <id_unknown>] unexpected shape for input 'x' for model 'fixed4'"),
    ("raiser", [3], "500", "Failed to process the request(s) for model 'raiser_0_0', message: ValueError: boom"),
])
def test_errors_reach_tritonclient_alike(real_url: str, fake_url: str, model: str, shape: list[int], status: str,
                                         start: str) -> None:
    seen = []
    for client in _clients(real_url, fake_url):
        tensor = httpclient.InferInput("x", shape, "FP32")
        tensor.set_data_from_numpy(np.zeros(shape, np.float32))
        with pytest.raises(InferenceServerException) as info:
            client.infer(model, [tensor])
        seen.append((info.value.status(), info.value.message().split("\n\nAt:\n")[0]))
    assert seen[0] == seen[1] and seen[0][0] == status and seen[0][1].startswith(start)


# --- the handle against both servers -----------------------------------------------------------
TYPES_IO = ([(f"in_{d}", d, [-1]) for d in DTYPES], [(f"out_{d}", d, [-1]) for d in DTYPES])


def test_the_handle_checks_and_infers_alike(real_url: str, fake_url: str) -> None:
    mm = manager(real_double=double(real_url), fake_double=double(fake_url),
                 real_types=entry(real_url, "types", *TYPES_IO), fake_types=entry(fake_url, "types", *TYPES_IO),
                 real_twover=entry(real_url, "twover", [("x", "INT64", [1])], [("y", "INT64", [1])], version="2"),
                 fake_twover=entry(fake_url, "twover", [("x", "INT64", [1])], [("y", "INT64", [1])], version="2"))
    arrays = {f"in_{d}": sample(d, (3,), seed=i) for i, d in enumerate(DTYPES)}
    for side in ("real", "fake"):
        for role in ("double", "types", "twover"):
            handle(mm, f"{side}_{role}").check()
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert handle(mm, "real_double")({"x": x})["y"].tolist() == handle(mm, "fake_double")({"x": x})["y"].tolist()
    real, fake = handle(mm, "real_types")(arrays), handle(mm, "fake_types")(arrays)
    for dtype in DTYPES:
        assert real[f"out_{dtype}"].dtype == fake[f"out_{dtype}"].dtype == arrays[f"in_{dtype}"].dtype
        assert real[f"out_{dtype}"].tolist() == fake[f"out_{dtype}"].tolist() == arrays[f"in_{dtype}"].tolist()


def _failure(real_url: str, fake_url: str, make: Callable[[str], dict[str, Any]],
             call: Callable[[Any], object]) -> list[tuple[str, str]]:
    out = []
    for url in (real_url, fake_url):
        mm = manager(role=make(url))
        with pytest.raises(ModelManagerError) as info:
            call(handle(mm, "role"))
        out.append((info.value.code, info.value.message.replace(url, "URL")))
    return out


@pytest.mark.parametrize(("make", "code", "needle"), [
    (lambda url: entry(url, "double", [("x", "FP32", [-1, 4])], [("y", "FP16", [-1, -1]), ("z", "FP32", [-1])]),
     "triton_model_not_found", "output 'y' is 'FP32' on the server, FP16 in the spec; output 'z' (FP32 [-1]) is not"),
    (lambda url: entry(url, "nobatch", [("x", "FP32", [-1, 2, 3])], [("y", "FP32", [2, 3])]),
     "triton_model_not_found", "input 'x' has shape [2, 3] on the server, [-1, 2, 3] in the spec"),
    (lambda url: entry(url, "nope", *([("x", "FP32", [-1])],) * 2), "triton_model_not_found",
     "Triton answered 404: Request for unknown model: 'nope' is not found"),
    (lambda url: double(url, version="3"), "triton_model_not_found",
     "Triton answered 404: Request for unknown model: 'double' version 3 is not found"),
])
def test_check_fails_alike(real_url: str, fake_url: str, make: Callable[[str], dict[str, Any]], code: str,
                           needle: str) -> None:
    real, fake = _failure(real_url, fake_url, make, lambda h: h.check())
    assert real == fake and real[0] == code and needle in real[1], real


def test_a_model_that_raises_fails_alike(real_url: str, fake_url: str) -> None:
    def make(url: str) -> dict[str, Any]:
        return entry(url, "raiser", [("x", "FP32", [-1])], [("y", "FP32", [-1])])

    real, fake = _failure(real_url, fake_url, make, lambda h: h({"x": np.zeros(2, np.float32)}))
    assert real[0] == fake[0] == "triton_infer_failed"
    cut = [m.split("\n\nAt:\n")[0] for _, m in (real, fake)]
    assert cut[0] == cut[1] and cut[0].endswith("Triton answered 500: Failed to process the request(s) for model "
                                                 "'raiser_0_0', message: ValueError: boom from model function")


def test_the_real_server_is_the_bundled_one(real_url: str) -> None:
    assert httpclient.InferenceServerClient(real_url).get_server_metadata()["version"] == "2.51.0"
    assert sys.prefix  # the stubs run in this virtualenv (EXECUTION_ENV_PATH)
