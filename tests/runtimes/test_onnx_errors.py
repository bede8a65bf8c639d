"""Every bad input of the ONNX handle ends in its code, with component, role and the field to fix; nothing
ONNX Runtime or protobuf raise escapes raw. (Devices and the missing runtime: test_onnx_devices.py.)"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.mappings import RUN_CONTEXT
from onnx import TensorProto, helper
from onnx_models import entry, mixed, model, place, relu, reshape, sha, spec

from model_manager import ModelManager
from model_manager.errors import ModelManagerError
from model_manager.runtimes.onnx import OnnxHandle, onnx_handle


def fails(call: Any, code: str, field: str | None, *needles: str) -> ModelManagerError:
    with pytest.raises(ModelManagerError) as info:
        call()
    err = info.value
    text = str(err)
    assert (err.code, err.field) == (code, field), text
    assert err.component == "core_test" and err.role == "net", text
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), "no raw exception chained"
    for needle in needles:
        assert needle in text, (needle, text)
    return err


def handle_of(tmp_path: Path, data: bytes, **kwargs: Any) -> OnnxHandle:
    path, digest = place(tmp_path / "models", "net/model.onnx", data)
    return onnx_handle(spec(digest, **kwargs), path)


# --- the spec and the file --------------------------------------------------------------------------
def test_unknown_digest_is_refused(tmp_path: Path) -> None:
    path, _ = place(tmp_path, "m.onnx", relu())
    fails(lambda: onnx_handle(spec("unknown"), path), "invalid_model_spec", "weights_digest", "cannot be verified")


def test_not_an_onnx_inprocess_spec(tmp_path: Path) -> None:
    path, digest = place(tmp_path, "m.onnx", relu())
    torch_spec = spec(digest, engine="torch", artifacts={"weights_path": "net/model.pt"})
    fails(lambda: onnx_handle(torch_spec, path), "invalid_model_spec", "engine", "inprocess/torch")
    with pytest.raises(ModelManagerError) as info:
        onnx_handle({"component_name": "core_test"}, path)  # type: ignore[arg-type]
    assert (info.value.code, info.value.field) == ("invalid_model_spec", "spec")
    fails(lambda: onnx_handle(spec(digest), b"m.onnx"), "invalid_model_spec", "artifacts.onnx_path")  # type: ignore[arg-type]


def test_digest_of_other_bytes_is_refused(tmp_path: Path) -> None:
    path, _ = place(tmp_path, "m.onnx", relu())
    fails(lambda: onnx_handle(spec(sha(b"other")), path), "weights_digest_mismatch", "weights_digest",
          "the mapping pins " + sha(b"other"))


def test_missing_file(tmp_path: Path) -> None:
    fails(lambda: onnx_handle(spec(sha(b"x")), str(tmp_path / "gone.onnx")), "model_artifact_missing",
          "artifacts.onnx_path")


@pytest.mark.parametrize("how", ["overwritten", "replaced"])
def test_file_swapped_after_the_manager_verified_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    how: str) -> None:
    root = tmp_path / "models"
    path, digest = place(root, "net/model.onnx", relu())
    monkeypatch.setenv("MM_MODELS_ROOT", str(root))
    mm = ModelManager(dict(RUN_CONTEXT), {"schema_version": 1, "components": {"core_test": {"net": entry(digest)}}})
    resolved = mm.resolve(component="core_test", role="net")
    swapped = relu(shape=["N", 5])  # a valid model, so only the digest can refuse it
    if how == "overwritten":
        Path(path).write_bytes(swapped)
    else:
        Path(path + ".new").write_bytes(swapped)
        os.replace(path + ".new", path)
    fails(lambda: onnx_handle(resolved, mm.weights_path(resolved)), "weights_digest_mismatch", "weights_digest",
          f"hash to {sha(swapped)}", f"pins {digest}")


def _flipped(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:]  # the first field's tag: an invalid wire type


BAD_FILES = {
    "empty": b"",
    "truncated": relu()[:40],
    "text": b"this is not a model, it is a README\n",
    "random": np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    "first byte flipped": _flipped(relu()),
    "tensor, not a model": helper.make_tensor("t", TensorProto.FLOAT, [2], [1.0, 2.0]).SerializeToString(),
    "graph, not a model": helper.make_graph([], "g", [], []).SerializeToString(),
    "unsupported IR version": model([helper.make_node("Relu", ["x"], ["y"])], [("x", "float32", [1])],
                                    [("y", "float32", [1])], ir_version=99),
    "unknown operator": model([helper.make_node("NoSuchOp", ["x"], ["y"])], [("x", "float32", [1])],
                              [("y", "float32", [1])]),
    "type error": model([helper.make_node("Relu", ["x"], ["y"])], [("x", "float32", [1])], [("y", "int64", [1])]),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_file_that_is_not_a_loadable_model(tmp_path: Path, capfd: pytest.CaptureFixture[str], name: str) -> None:
    """The digest is the bad file's own: verification passes and loading is what fails."""
    err = fails(lambda: handle_of(tmp_path, BAD_FILES[name]), "model_artifact_invalid", "artifacts.onnx_path",
                "ONNX Runtime cannot load the verified file as a model", "model 'test-net' version '1.0.0' on cpu")
    assert "Traceback" not in str(err)
    assert capfd.readouterr() == ("", "")


def test_a_model_with_a_sequence_input(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("SequenceAt", ["seq", "i"], ["y"])], "test",
        [helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("i", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9).SerializeToString()
    fails(lambda: handle_of(tmp_path, data), "model_artifact_invalid", "artifacts.onnx_path",
          "input 'seq' is seq(tensor(float)): the handle feeds numpy arrays to tensor inputs only")


# --- precision --------------------------------------------------------------------------------------
def test_fp32_model_declared_fp16(tmp_path: Path) -> None:
    fails(lambda: handle_of(tmp_path, mixed("float32"), precision="fp16"), "invalid_model_spec", "precision",
          "precision 'fp16'", "input 'x' is tensor(float)", "output 'y' is tensor(float)")


def test_fp16_model_declared_fp32(tmp_path: Path) -> None:
    err = fails(lambda: handle_of(tmp_path, relu("float16")), "invalid_model_spec", "precision",
                "input 'x' is tensor(float16)", "output 'y' is tensor(float16)")
    assert "ids" not in str(err)


def test_double_model_is_neither(tmp_path: Path) -> None:
    for precision in ("fp32", "fp16"):
        fails(lambda p=precision: handle_of(tmp_path, relu("float64"), precision=p), "invalid_model_spec",
              "precision", "input 'x' is tensor(double)")


# --- session options --------------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "field", "needle"), [
    ({"threads": 2}, "session_options.threads", "unknown session option 'threads'"),
    ({"intra_op_num_threads": True}, "session_options.intra_op_num_threads", "True is not a whole number"),
    ({"intra_op_num_threads": -1}, "session_options.intra_op_num_threads", "-1 is not a whole number"),
    ({"inter_op_num_threads": "4"}, "session_options.inter_op_num_threads", "'4' is not a whole number"),
    ({"inter_op_num_threads": 5000}, "session_options.inter_op_num_threads", "5000"),
    ({"graph_optimization_level": "fast"}, "session_options.graph_optimization_level", "'fast' is not one of"),
    ({"graph_optimization_level": 99}, "session_options.graph_optimization_level", "99 is not one of"),
    ({"execution_mode": "ORT_PARALLEL"}, "session_options.execution_mode", "'ORT_PARALLEL' is not one of"),
    ({"log_severity_level": 5}, "session_options.log_severity_level", "5 is not 0 (verbose) to 4"),
    ({1: 2}, "session_options.1", "unknown session option 1"),
    ({"a": 1, "b": 2}, "session_options", "unknown session option 'a'; unknown session option 'b'"),
    ([("intra_op_num_threads", 1)], "session_options", "must be a dict, not list"),
])
def test_bad_session_options(tmp_path: Path, options: Any, field: str, needle: str) -> None:
    path, digest = place(tmp_path, "m.onnx", relu())
    fails(lambda: onnx_handle(spec(digest), path, session_options=options), "invalid_model_spec", field, needle)


# --- run() ------------------------------------------------------------------------------------------
@pytest.fixture
def mixed_handle(tmp_path: Path) -> OnnxHandle:
    return handle_of(tmp_path, mixed())


GOOD = {"x": np.ones((2, 4), np.float32), "ids": np.zeros((2, 3), np.int64), "mask": np.array([True, False])}


def test_every_input_problem_in_one_error(mixed_handle: OnnxHandle) -> None:
    feed = {"x": np.ones((2, 4, 1), np.float64), "ids": np.zeros((2, 4), np.int64), "extra": np.ones(1)}
    fails(lambda: mixed_handle(feed), "inference_failed", "inputs",
          "missing input 'mask' (tensor(bool) [N])", "input 'extra' is not an input of the model",
          "input 'x' has dtype float64, the model declares tensor(float)",
          "input 'x' has shape [2, 4, 1] (rank 3), the model declares [N, 4] (rank 2)",
          "input 'ids' has shape [2, 4], the model declares [2, 3]",
          "the model declares 'x' tensor(float) [N, 4], 'ids' tensor(int64) [2, 3], 'mask' tensor(bool) [N]",
          "nothing was run", "model 'test-net' version '1.0.0' on cpu")


@pytest.mark.parametrize(("name", "value", "needle"), [
    ("x", [[1.0, 2.0, 3.0, 4.0]], "input 'x' must be a numpy array, got list"),
    ("x", np.ones((2, 4), ">f4"), "input 'x' has dtype >f4"),  # ONNX Runtime would read it as garbage
    ("x", np.ones((2, 4), np.float16), "input 'x' has dtype float16"),
    ("ids", np.zeros((2, 3), np.int32), "input 'ids' has dtype int32"),
    ("mask", np.array([1, 0]), "input 'mask' has dtype int64"),
    ("x", np.ones((2, 3), np.float32), "input 'x' has shape [2, 3], the model declares [N, 4]"),
    ("x", np.float32(1.0), "must be a numpy array, got float32"),
])
def test_one_bad_input(mixed_handle: OnnxHandle, name: str, value: Any, needle: str) -> None:
    err = fails(lambda: mixed_handle({**GOOD, name: value}), "inference_failed", "inputs", needle)
    assert "the model declares 'x'" not in str(err)  # the names were right: no list of them


def test_inputs_not_a_mapping(mixed_handle: OnnxHandle) -> None:
    fails(lambda: mixed_handle([GOOD["x"]]), "inference_failed", "inputs", "must be a dict")  # type: ignore[arg-type]


def test_string_input_of_numbers(tmp_path: Path) -> None:
    from onnx_models import strings

    fails(lambda: handle_of(tmp_path, strings())({"s": np.ones(2)}), "inference_failed", "inputs",
          "input 's' has dtype float64, the model declares tensor(string)")


@pytest.mark.parametrize("outputs", [["nope"], ["y", "y"], [], 7, [None]])
def test_bad_output_selection(mixed_handle: OnnxHandle, outputs: Any) -> None:
    fails(lambda: mixed_handle(GOOD, outputs=outputs), "inference_failed", "outputs", "name some of the model's "
          "outputs ('y' tensor(float) [N, 4], 'ids_out' tensor(int64) [2, 3], 'keep' tensor(bool) [N])")


def test_onnx_runtime_failure_during_the_run(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    h = handle_of(tmp_path, reshape())
    feed = {"x": np.ones(6, np.float32), "shape": np.array([4, 4], np.int64)}
    fails(lambda: h(feed), "inference_failed", "inputs", "ONNX Runtime failed the run", "Reshape",
          "cannot be reshaped")
    assert capfd.readouterr() == ("", "")  # ONNX Runtime's own log line of it stays quiet
    assert h({**feed, "shape": np.array([2, 3], np.int64)})["y"].shape == (2, 3)
