"""The ``fake_onnx_manager`` fixture: a ModelManager over a mapping or profile whose in-process ONNX roles
are fakes, on the bundled example profile and on the tests' mapping, and every request it refuses."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from helpers.mappings import RUN_CONTEXT, make_mapping

from model_manager.errors import InvalidModelSpec, ModelArtifactMissing
from model_manager.manager import ModelManager
from model_manager.mapping.yaml_reader import read_yaml

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "examples" / "profile.yaml"
EXAMPLE_MODELS = ROOT / "examples" / "models"
FLOW = {"inputs": [("frame0", "float32", [1, 3, "H", "W"]), ("frame1", "float32", [1, 3, "H", "W"])],
        "outputs": [("flow", "float32", [1, 1, "H", "W"])]}
SIGNATURES: dict[Any, Any] = {
    "core_optical_flow/flow": FLOW,
    ("core_audio", "vad"): ([("audio", "float32", [1, "N"])], [("speech_prob", "float32", [1, 1])]),
    "core_text/embedder": {"inputs": [("input_ids", "int64", [1, "T"])], "outputs": [("embedding", "float32", [1, 8])]},
}
ONNX_ROLES = ["core_audio/vad", "core_optical_flow/flow", "core_text/embedder"]
EXTRA = {"text/minilm-l6/tokenizer": EXAMPLE_MODELS / "text" / "minilm-l6" / "tokenizer",
         "audio/whisper-tiny": EXAMPLE_MODELS / "audio" / "whisper-tiny"}


def run(path: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))


def test_the_example_profile_with_its_torch_and_tokenizer_files(fake_onnx_manager: Any) -> None:
    mm = fake_onnx_manager(PROFILE, SIGNATURES, extra_files=EXTRA)
    assert isinstance(mm, ModelManager) and mm.run_context.run_id == "pytest-run"
    assert Path(os.environ["MM_MODELS_ROOT"]) == fake_onnx_manager.root
    assert sorted(fake_onnx_manager.models) == ONNX_ROLES
    profile = read_yaml(str(PROFILE))["components"]
    pinned = fake_onnx_manager.mapping["components"]
    for key, model in fake_onnx_manager.models.items():
        component, role = key.split("/")
        spec = mm.resolve(component=component, role=role)
        assert spec.weights_digest == model.digest == pinned[component][role]["weights_digest"]
        assert mm.weights_path(spec) == str(fake_onnx_manager.root / profile[component][role]["artifacts"]["onnx_path"])
        assert {k: v for k, v in pinned[component][role].items() if k != "weights_digest"} == \
            {k: v for k, v in profile[component][role].items() if k != "weights_digest"}  # only the digest moves
        feeds = model.example_inputs({"H": 4, "W": 6, "N": 16, "T": 5})
        got = run(mm.weights_path(spec), feeds)
        for name, want in model.expected(feeds).items():
            np.testing.assert_array_equal(got[name], want)
    assert run(mm.weights_path(mm.resolve(component="core_optical_flow", role="flow")),
               {"frame0": np.ones((1, 3, 2, 2), np.float32), "frame1": np.zeros((1, 3, 2, 2), np.float32)}
               )["flow"].tolist() == [[[[2.0, 2.0], [2.0, 2.0]]]]  # mean 1 + mean 0, + 1
    assert pinned["core_clip"] == profile["core_clip"]  # Triton roles pass through unchanged
    asr = mm.resolve(component="core_audio", role="asr")  # the copied folder hashes as the committed one
    assert asr.weights_digest == profile["core_audio"]["asr"]["weights_digest"]
    assert Path(mm.artifact_path(mm.resolve(component="core_text", role="embedder"), "artifacts.tokenizer_path"),
                "vocab.txt").is_file()


def test_the_example_profile_with_roles_dropped_and_files_given_as_text(fake_onnx_manager: Any) -> None:
    mm = fake_onnx_manager(str(PROFILE), SIGNATURES, drop=["core_audio/asr", ("core_clip", "text_encoder")],
                           extra_files={"text/minilm-l6/tokenizer/vocab.txt": "[PAD]\n[UNK]\n",
                                        "text/minilm-l6/tokenizer/config.json": b"{}"},
                           run_context=RUN_CONTEXT)
    assert mm.roles("core_audio") == ["vad"] and mm.roles("core_clip") == ["image_encoder"]
    assert mm.run_context.model_dump() == RUN_CONTEXT
    assert (fake_onnx_manager.root / "text/minilm-l6/tokenizer/vocab.txt").read_text() == "[PAD]\n[UNK]\n"
    mm = fake_onnx_manager(PROFILE, {"core_optical_flow/flow": FLOW},
                           drop=["core_audio/asr", "core_audio/vad", "core_text/embedder", "core_clip/text_encoder"])
    assert mm.components == ["core_clip", "core_optical_flow"]  # a component without roles goes too


def test_the_tests_mapping_is_copied_not_edited(fake_onnx_manager: Any, fake_triton_mapping: Any) -> None:
    mapping = make_mapping()
    before = copy.deepcopy(mapping)
    mm = fake_onnx_manager(mapping, {"core_optical_flow/flow": FLOW})
    assert mapping == before
    pinned = fake_onnx_manager.mapping
    assert pinned["components"]["core_clip"] == before["components"]["core_clip"]
    assert mm.resolve(component="core_optical_flow", role="flow").weights_digest == \
        fake_onnx_manager.models["core_optical_flow/flow"].digest != before["components"]["core_optical_flow"][
            "flow"]["weights_digest"]
    # with the Triton roles served by a fake Triton: both fixtures together
    mm = fake_onnx_manager(fake_triton_mapping(make_mapping()), {"core_optical_flow/flow": FLOW})
    assert mm.resolve(component="core_clip", role="image_encoder").triton.http_url == fake_triton_mapping.server.url


def test_the_digest_cache_is_the_tests_own(fake_onnx_manager: Any, tmp_path: Path) -> None:
    fake_onnx_manager(make_mapping(), {"core_optical_flow/flow": FLOW})
    assert os.environ["MM_CACHE_DIR"] == str(tmp_path / "mm-digest-cache")


def test_in_process_onnx_roles_without_a_signature_are_named(fake_onnx_manager: Any) -> None:
    with pytest.raises(InvalidModelSpec, match="without a signature") as err:
        fake_onnx_manager(PROFILE, {"core_audio/vad": SIGNATURES[("core_audio", "vad")]}, extra_files=EXTRA)
    assert "['core_optical_flow/flow', 'core_text/embedder']" in err.value.message
    assert err.value.field == "signatures" and "drop=" in (err.value.hint or "")
    assert not list(fake_onnx_manager.root.iterdir())  # nothing written before the request was checked


@pytest.mark.parametrize(("signatures", "drop", "field", "message"), [
    ({**SIGNATURES, "core_clip/image_encoder": FLOW}, (), "signatures",
     "['core_clip/image_encoder'] (they run {'core_clip/image_encoder': 'triton/onnx'})"),
    ({**SIGNATURES, "core_audio/asr": FLOW}, (), "signatures", "(they run {'core_audio/asr': 'inprocess/torch'})"),
    ({**SIGNATURES, "core_audio/nope": FLOW}, (), "signatures", "['core_audio/nope']"),
    ({**SIGNATURES, "flow": FLOW}, (), "signatures", "'flow' does not name a role"),
    ({**SIGNATURES, ("a", "b", "c"): FLOW}, (), "signatures", "does not name a role"),
    (SIGNATURES, ["core_audio/nope"], "drop", "drop names roles that are not in"),
    (SIGNATURES, ["core_audio"], "drop", "'core_audio' does not name a role"),
    ({**SIGNATURES, "core_audio/vad": {"inputs": [("audio", "float8", [1])], "outputs": [("p", "float32", [])]}},
     (), "signatures.inputs[0].dtype", "dtype 'float8'"),
    ({**SIGNATURES, "core_audio/vad": ([("audio", "float64", [1, "N"])], [("p", "float16", [1]), ("n", "int64", [])])},
     (), "signatures.inputs[0].dtype",
     "the entry pins precision 'fp32': float inputs and outputs are float32, but inputs[0] 'audio' is float64; "
     "outputs[0] 'p' is float16"),
])
def test_bad_requests(fake_onnx_manager: Any, signatures: Any, drop: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidModelSpec) as err:
        fake_onnx_manager(PROFILE, signatures, drop=drop, extra_files=EXTRA)
    assert err.value.field == field and message in err.value.message, str(err.value)
    if field.startswith("signatures."):
        assert (err.value.component, err.value.role) == ("core_audio", "vad")


def test_missing_torch_weights_and_tokenizers_are_named_not_guessed(fake_onnx_manager: Any) -> None:
    with pytest.raises(ModelArtifactMissing) as err:
        fake_onnx_manager(PROFILE, SIGNATURES)
    assert err.value.field == "extra_files" and "extra_files=" in (err.value.hint or "")
    for what in ("core_clip/text_encoder artifacts.tokenizer_path", "core_audio/asr artifacts.weights_path",
                 "core_text/embedder artifacts.tokenizer_path"):
        assert what in err.value.message


def test_two_roles_on_one_path_with_other_signatures(fake_onnx_manager: Any) -> None:
    mapping = make_mapping()
    mapping["components"]["core_optical_flow"]["flow2"] = copy.deepcopy(mapping["components"]["core_optical_flow"]
                                                                        ["flow"])
    other = {"inputs": [("x", "int64", [2])], "outputs": [("y", "float32", [2])]}
    with pytest.raises(InvalidModelSpec, match="already there with other content") as err:
        fake_onnx_manager(mapping, {"core_optical_flow/flow": FLOW, "core_optical_flow/flow2": other})
    assert (err.value.role, err.value.field) == ("flow2", "artifacts.onnx_path")
    fake_onnx_manager(mapping, {"core_optical_flow/flow": FLOW, "core_optical_flow/flow2": FLOW})  # the same file


@pytest.mark.parametrize(("extra", "message"), [
    ({"tok": 3}, "is not bytes, text or a path"),
    ({"tok": Path("/nonexistent/folder")}, "is not a file or a folder"),
    ({"../tok": b"x"}, "has a '..' part"),
    ({"/tok": b"x"}, "is absolute"),
])
def test_bad_extra_files(fake_onnx_manager: Any, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidModelSpec, match=message) as err:
        fake_onnx_manager(make_mapping(), {"core_optical_flow/flow": FLOW}, extra_files=extra)
    assert err.value.field is not None and err.value.field.startswith("extra_files[")


def test_an_empty_folder_is_not_copied(fake_onnx_manager: Any, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidModelSpec, match="holds no files"):
        fake_onnx_manager(make_mapping(), {"core_optical_flow/flow": FLOW}, extra_files={"tok": tmp_path / "empty"})


def test_a_bad_mapping_fails_as_the_manager_would_fail_it(fake_onnx_manager: Any) -> None:
    mapping = make_mapping()
    mapping["schema_version"] = 2
    with pytest.raises(InvalidModelSpec, match="schema_version 2 is not supported"):
        fake_onnx_manager(mapping, {"core_optical_flow/flow": FLOW})
    with pytest.raises(InvalidModelSpec, match="must be a mapping"):
        fake_onnx_manager(["not", "a", "mapping"], {})  # type: ignore[arg-type]


def test_a_test_that_uses_both_fixtures_shares_one_models_root(fake_onnx_model: Any, fake_onnx_manager: Any) -> None:
    model = fake_onnx_model([("x", "float32", [None])], [("y", "float32", [None])])
    assert fake_onnx_model.root == fake_onnx_manager.root
    mm = ModelManager(RUN_CONTEXT, model.mapping("core_x", "r"))
    assert mm.weights_path(mm.resolve(component="core_x", role="r")) == str(model.file)


def test_the_managers_own_onnx_runtime_runs_the_fakes(fake_onnx_manager: Any) -> None:
    mm = fake_onnx_manager(PROFILE, SIGNATURES, extra_files=EXTRA)
    for key, model in fake_onnx_manager.models.items():
        component, role = key.split("/")
        feeds = model.example_inputs({"H": 3, "W": 5, "N": 8, "T": 4})
        got = mm.get_runtime(mm.resolve(component=component, role=role)).run(feeds)
        for name, want in model.expected(feeds).items():
            np.testing.assert_array_equal(got[name], want)
