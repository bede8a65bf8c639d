"""pytest_mm.fake_onnx and the ``fake_onnx_model`` fixture: real ONNX files for declared signatures, their
outputs (run by ONNX Runtime on the CPU) against numpy, and every way a signature can be wrong."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from model_manager.errors import EnvironmentFailure, InvalidModelSpec, ModelManagerError
from model_manager.mapping.loader import parse_mapping
from pytest_mm.fake_onnx import (
    IR_VERSION,
    OPSET,
    ModelSig,
    TensorSig,
    example_inputs,
    expected_outputs,
    make_fake_onnx,
    model_sig,
    place,
    tensor_sig,
)


def run(file: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))


def by_hand(sig: ModelSig, feeds: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """The documented function written out again, independently of expected_outputs."""
    c = sum(np.asarray(feeds[t.name], dtype=np.float64).mean() if np.size(feeds[t.name]) else 0.0
            for t in sig.inputs)
    out = {}
    for k, t in enumerate(sig.outputs):
        value = c + k + 1
        value = np.round(value) if t.dtype.startswith(("int", "uint")) else value
        out[t.name] = np.full(shapes[t.name], value).astype(t.dtype)
    return out


# name -> (inputs, outputs, sizes for example_inputs, the outputs' shapes with those sizes)
CASES: dict[str, tuple[list[Any], list[Any], dict[str, int], dict[str, tuple[int, ...]]]] = {
    "float32, anonymous batch": ([("x", "float32", [None, 3])], [("y", "float32", [None, 4])], {}, {"y": (2, 4)}),
    "float16, symbols": (
        [("pixels", "float16", ["batch", 3, "H", "W"]), ("mask", "bool", ["batch", "H", "W"])],
        [("emb", "float16", ["batch", 8]), ("heat", "float16", ["batch", 1, "H", "W"])],
        {"batch": 3, "H": 5, "W": 4}, {"emb": (3, 8), "heat": (3, 1, 5, 4)}),
    "every dtype": (
        [("f64", "float64", [2]), ("i64", "int64", ["n"]), ("i32", "int32", [1, "n"]), ("flag", "bool", [])],
        [("o_f32", "float32", ["n"]), ("o_f16", "float16", []), ("o_f64", "float64", [2, 2]),
         ("o_i64", "int64", ["n", 1]), ("o_i32", "int32", [3]), ("o_bool", "bool", ["n"]), ("o_u8", "uint8", [1]),
         ("o_i8", "int8", [1]), ("o_i16", "int16", [1])],
        {"n": 5}, {"o_f32": (5,), "o_f16": (), "o_f64": (2, 2), "o_i64": (5, 1), "o_i32": (3,), "o_bool": (5,),
                   "o_u8": (1,), "o_i8": (1,), "o_i16": (1,)}),
    "fully fixed output": ([("audio", "float32", [1, "N"])], [("speech_prob", "float32", [1, 1])], {"N": 7},
                           {"speech_prob": (1, 1)}),
    "None resolved from the second input": (
        [("a", "float32", [4, 2]), ("b", "int64", [4, None])], [("y", "float32", [4, None])], {}, {"y": (4, 2)}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_fake_answers_what_numpy_computes(fake_onnx_model: Any, case: str) -> None:
    inputs, outputs, sizes, shapes = CASES[case]
    model = fake_onnx_model(inputs, outputs)
    feeds = model.example_inputs(sizes)
    got = run(model.file, feeds)
    for name, want in by_hand(model.signature, feeds, shapes).items():
        assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
        np.testing.assert_array_equal(got[name], want, err_msg=name)
        np.testing.assert_array_equal(model.expected(feeds)[name], want, err_msg=name)


def test_the_function_by_numbers(fake_onnx_model: Any) -> None:
    model = fake_onnx_model([("x", "float32", [None, 2]), ("ids", "int64", [None])],
                            [("y", "float32", [None, 3]), ("n", "int64", []), ("z", "float16", [1])])
    out = run(model.file, {"x": np.array([[1, 2], [3, 4]], np.float32), "ids": np.array([1, 0], np.int64)})
    # c = mean(x) + mean(ids) = 2.5 + 0.5 = 3; y = c + 1 everywhere, n = round(3 + 2), z = c + 3
    np.testing.assert_array_equal(out["y"], np.full((2, 3), 4.0, np.float32))
    assert out["n"].shape == () and out["n"] == 5
    assert out["z"].dtype == np.float16 and out["z"].tolist() == [6.0]


def test_integer_outputs_round_half_to_even_and_bool_is_nonzero(fake_onnx_model: Any) -> None:
    model = fake_onnx_model([("x", "float64", [2])], [("a", "int32", []), ("b", "int64", []), ("c", "bool", [])])
    out = run(model.file, {"x": np.array([-3.0, -2.0])})  # c = -2.5: a = round(-1.5) = -2, b = round(-0.5) = 0
    assert (int(out["a"]), int(out["b"]), bool(out["c"])) == (-2, 0, True)
    out = run(model.file, {"x": np.array([-3.0, -3.0])})  # c = -3: c + 3 = 0 -> False
    assert not bool(out["c"])


def test_dynamic_dims_follow_each_run(fake_onnx_model: Any) -> None:
    model = fake_onnx_model([("ids", "int64", ["batch", "T"])], [("emb", "float16", ["batch", 8]),
                                                                  ("tokens", "int32", ["T"])])
    for batch, length in ((1, 1), (5, 3), (0, 4)):
        feeds = model.example_inputs({"batch": batch, "T": length})
        got = run(model.file, feeds)
        assert got["emb"].shape == (batch, 8) and got["tokens"].shape == (length,)
        for name, want in model.expected(feeds).items():
            np.testing.assert_array_equal(got[name], want)
    empty = run(model.file, {"ids": np.zeros((0, 2), np.int64)})
    assert empty["tokens"].tolist() == [2, 2]  # an empty input counts 0: c = 0, tokens = round(0 + 2)


def test_float16_with_values_that_round(fake_onnx_model: Any) -> None:
    model = fake_onnx_model([("x", "float16", ["b", 16])], [("y", "float16", ["b", 4]), ("z", "float32", [])])
    x = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float16)
    got, want = run(model.file, {"x": x}), model.expected({"x": x})
    np.testing.assert_allclose(got["y"].astype(np.float32), want["y"].astype(np.float32), rtol=1e-3)
    np.testing.assert_allclose(got["z"], x.astype(np.float64).mean() + 2, rtol=1e-6)


def test_the_file_is_a_checked_opset_17_model_with_the_declared_io(fake_onnx_model: Any) -> None:
    model = fake_onnx_model([("_fake0", "float32", ["batch", None, 3])], [("y", "float64", ["batch", 2])])
    proto = onnx.load(str(model.file))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.ir_version == IR_VERSION == 9 and [(o.domain, o.version) for o in proto.opset_import] == [("", OPSET)]
    dims = [[d.dim_param or (d.dim_value if d.HasField("dim_value") else None) for d in v.type.tensor_type.shape.dim]
            for v in (*proto.graph.input, *proto.graph.output)]
    assert dims == [["batch", None, 3], ["batch", 2]]
    assert run(model.file, {"_fake0": np.ones((2, 5, 3), np.float32)})["y"].tolist() == [[2.0, 2.0], [2.0, 2.0]]


def test_digest_entry_and_mapping(fake_onnx_model: Any) -> None:
    root = Path(os.environ["MM_MODELS_ROOT"])
    assert root == fake_onnx_model.root and root.is_dir()
    first = fake_onnx_model([("x", "float16", [None])], [("y", "float32", [None])], model_name="m", tier=0)
    second = fake_onnx_model({"inputs": [("x", "int64", [None])], "outputs": [("y", "int64", [None])]})
    assert (first.path, second.path) == ("fake_onnx/model_0.onnx", "fake_onnx/model_1.onnx")
    assert first.file == root / first.path
    assert first.digest == "sha256:" + hashlib.sha256(first.file.read_bytes()).hexdigest()
    assert first.entry == {"runtime": "inprocess", "engine": "onnx", "precision": "fp16", "device_policy": "cpu",
                           "model_name": "m", "model_version": "1", "weights_digest": first.digest,
                           "artifacts": {"onnx_path": "fake_onnx/model_0.onnx"}, "tier": 0}
    assert second.entry["precision"] == "fp32" and "tier" not in second.entry  # no float16 I/O
    parsed = parse_mapping(second.mapping("core_text", "embedder"))
    assert parsed.components["core_text"]["embedder"].weights_digest == second.digest
    mapping = first.mapping()
    mapping["components"]["fake"]["model"]["artifacts"]["onnx_path"] = "elsewhere.onnx"
    assert first.entry["artifacts"]["onnx_path"] == "fake_onnx/model_0.onnx"  # mapping() hands out a copy


def test_precision_is_derived_or_given_and_its_problems_listed(tmp_path: Path) -> None:
    mixed = model_sig(([("a", "float16", [1]), ("b", "float64", [1]), ("i", "int64", [1])],
                       [("y", "float32", [1]), ("f", "bool", [1])]))
    assert mixed.precision == "fp16"
    assert mixed.precision_problems("fp16") == ["inputs[1] 'b' is float64", "outputs[0] 'y' is float32"]
    assert mixed.precision_problems("fp32") == ["inputs[0] 'a' is float16", "inputs[1] 'b' is float64"]
    assert model_sig(([("i", "int32", [])], [("y", "float32", [])])).precision_problems("fp32") == []
    model = make_fake_onnx(mixed, tmp_path, "m.onnx", precision="fp32")  # deliberately unfit: it still builds
    assert model.entry["precision"] == "fp32"
    with pytest.raises(InvalidModelSpec, match="precision 'fp8' is not fp16 or fp32") as err:
        make_fake_onnx(mixed, tmp_path, "n.onnx", precision="fp8")
    assert err.value.field == "precision"
    with pytest.raises(InvalidModelSpec, match="precision 'bf16' is not fp16 or fp32"):
        mixed.precision_problems("bf16")


def test_the_same_signature_gives_the_same_bytes_and_another_a_new_digest(tmp_path: Path) -> None:
    sig = ([("x", "float32", ["n", 3])], [("y", "float16", ["n"])])
    a = make_fake_onnx(sig, tmp_path / "a", "m.onnx")
    b = make_fake_onnx(sig, tmp_path / "b", "deeper/m.onnx", model_name="other")
    assert a.file.read_bytes() == b.file.read_bytes() and a.digest == b.digest
    assert make_fake_onnx(sig, tmp_path / "a", "m.onnx").digest == a.digest  # the same file again: accepted
    c = make_fake_onnx(([("x", "float32", ["n", 3])], [("y", "float32", ["n"])]), tmp_path / "c", "m.onnx")
    assert c.digest != a.digest
    with pytest.raises(InvalidModelSpec, match="already there with other content") as err:
        make_fake_onnx(c.signature, tmp_path / "a", "m.onnx")
    assert err.value.field == "path" and a.file.read_bytes() == b.file.read_bytes()


def test_signature_spellings() -> None:
    expected = TensorSig("x", "float16", (None, "batch", 3))
    for value in (expected, {"name": "x", "dtype": "FP16", "shape": [-1, "batch", 3]},
                  ("x", np.float16, (None, "batch", np.int64(3))), ["x", "half", [None, "batch", 3]],
                  ("x", np.dtype("float16"), [-1, "batch", 3])):
        assert tensor_sig(value) == expected
    assert [tensor_sig(("t", spelling, [])).dtype for spelling in ("fp32", "FP64", "INT64", "int32", "BOOL", bool,
                                                                   "UINT8", "int8", "INT16", "double", "float")] \
        == ["float32", "float64", "int64", "int32", "bool", "bool", "uint8", "int8", "int16", "float64", "float32"]
    sig = model_sig(([("x", "float32", [])], [("y", "float32", [])]))
    assert model_sig({"inputs": sig.inputs, "outputs": sig.outputs}) == sig == model_sig(sig)
    assert ModelSig([("x", "fp16", [2])], [{"name": "y", "dtype": "int64", "shape": []}]).precision == "fp16"


_X = ("x", "float32", [None, 3])
BAD_SIGNATURES = [
    (([("x", "float8", [1])], [_X]), "inputs[0].dtype", "dtype 'float8' is not supported"),
    (([("x", None, [1])], [("y", "float32", [])]), "inputs[0].dtype", "dtype None"),
    (([("x", "string", [1])], [("y", "float32", [])]), "inputs[0].dtype", "not supported"),
    (([("", "float32", [1])], [("y", "float32", [])]), "inputs[0].name", "tensor name ''"),
    (([(" x", "float32", [1])], [("y", "float32", [])]), "inputs[0].name", "surrounding spaces"),
    (([(3, "float32", [1])], [("y", "float32", [])]), "inputs[0].name", "tensor name 3"),
    (([("x\n", "float32", [1])], [("y", "float32", [])]), "inputs[0].name", "printable"),
    (([_X, ("x", "int64", [1])], [("y", "float32", [])]), "inputs[1].name", "'x' is used twice"),
    (([_X], [("x", "float32", [None])]), "outputs[0].name", "'x' is used twice"),
    (([("x", "float32", [1, -2])], [("y", "float32", [])]), "inputs[0].shape[1]", "dim -2 is negative"),
    (([("x", "float32", [1.5])], [("y", "float32", [])]), "inputs[0].shape[0]", "dim 1.5 (float)"),
    (([("x", "float32", [True])], [("y", "float32", [])]), "inputs[0].shape[0]", "dim True (bool)"),
    (([("x", "float32", [""])], [("y", "float32", [])]), "inputs[0].shape[0]", "dim symbol '' is not a name"),
    (([("x", "float32", ["2x"])], [("y", "float32", [])]), "inputs[0].shape[0]", "'2x' is not a name"),
    (([("x", "float32", "abc")], [("y", "float32", [])]), "inputs[0].shape", "is not a list of dims"),
    (([("x", "float32", None)], [("y", "float32", [])]), "inputs[0].shape", "is not a list of dims"),
    (([{"name": "x", "dtype": "float32"}], [_X]), "inputs[0].(keys)", "not exactly name, dtype, shape"),
    (([{"name": "x", "dtype": "float32", "shape": [], "extra": 1}], [_X]), "inputs[0].(keys)", "'extra'"),
    (([("x", "float32")], [_X]), "inputs[0].(tensor)", "is not a tensor signature"),
    (([], [_X]), "inputs", "not a non-empty list"),
    (([_X], []), "outputs", "not a non-empty list"),
    (({"name": "x", "dtype": "float32", "shape": []}, [_X]), "inputs", "not a non-empty list"),
    (("x", [_X]), "inputs", "not a non-empty list"),
    (([_X], [("y", "float32", ["batch"])]), "outputs[0].shape[0]", "no input has symbol 'batch'"),
    (([("x", "float32", [None, 3])], [("y", "float32", [2, None])]), "outputs[0].shape[1]",
     "no input has a dynamic dim at axis 1"),
    (([("x", "float32", [])], [("y", "float32", [None])]), "outputs[0].shape[0]", "dynamic dim at axis 0"),
    ({"inputs": [_X]}, "signature", "not exactly inputs, outputs"),
    (([_X], [_X], []), "signature", "is not a model signature"),
    ("x", "signature", "is not a model signature"),
]


@pytest.mark.parametrize(("signature", "field", "message"), BAD_SIGNATURES)
def test_bad_signatures_name_the_field(tmp_path: Path, signature: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidModelSpec) as err:
        make_fake_onnx(signature, tmp_path, "m.onnx")
    assert isinstance(err.value, ModelManagerError) and err.value.code == "invalid_model_spec"
    assert err.value.field == field and message in err.value.message, str(err.value)
    assert err.value.hint and not list(tmp_path.iterdir())  # nothing was written


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"model_name": ""}, "model_name"), ({"model_version": 1}, "model_version"), ({"tier": 10}, "tier"),
    ({"tier": True}, "tier"), ({"path": "../m.onnx"}, "path"), ({"path": "/abs/m.onnx"}, "path"),
    ({"path": "a\\b.onnx"}, "path"), ({"path": "."}, "path"),
])
def test_bad_entry_values(tmp_path: Path, kwargs: dict[str, Any], field: str) -> None:
    path = kwargs.pop("path", "m.onnx")
    with pytest.raises(InvalidModelSpec) as err:
        make_fake_onnx(([_X], [("y", "int64", [])]), tmp_path, path, **kwargs)
    assert err.value.field == field, str(err.value)


def test_place_refuses_what_it_cannot_own(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(InvalidModelSpec, match="not a regular file"):
        place(tmp_path, "dir", b"x")
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(InvalidModelSpec, match="cannot be written"):
        place(tmp_path, "file/below", b"x")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    with pytest.raises(InvalidModelSpec, match="not a regular file"):
        place(tmp_path, "link", b"x")


def test_example_inputs_and_expected_outputs() -> None:
    sig = model_sig(([("ids", "int64", ["T", None]), ("m", "bool", [2])], [("y", "float32", ["T"])]))
    feeds = example_inputs(sig, {"T": 3, "unused": 9}, default=4)
    assert {k: (v.dtype.name, v.shape) for k, v in feeds.items()} == {"ids": ("int64", (3, 4)), "m": ("bool", (2,))}
    assert example_inputs(sig, {"T": 3, "unused": 9}, default=4)["ids"].tolist() == feeds["ids"].tolist()
    with pytest.raises(KeyError, match="ids"):
        expected_outputs(sig, {"m": np.zeros(2, bool)})


def test_without_onnx_the_error_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    with pytest.raises(EnvironmentFailure, match="the onnx package cannot be imported") as err:
        make_fake_onnx(([_X], [("y", "float32", [])]), tmp_path, "m.onnx")
    assert err.value.field == "onnx" and "dev" in (err.value.hint or "")
