"""The fake ONNX fixtures under ``pytest -p pytest_mm`` end to end (pytester, in a subprocess: the guard is
process-wide), and the family's light import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from plugin_runs import inner_env

pytest_plugins = ["pytester"]

INNER = '''
import numpy as np
import onnxruntime as ort
import pytest

from model_manager.errors import InvalidModelSpec

FLOW = {"inputs": [("frame", "float32", ["batch", 3, "H", "W"])], "outputs": [("flow", "float32", ["batch", 2])]}
MAPPING = {"schema_version": 1, "components": {"core_flow": {"flow": {
    "runtime": "inprocess", "engine": "onnx", "precision": "fp32", "device_policy": "cpu", "model_name": "raft",
    "model_version": "1", "weights_digest": "sha256:" + "0" * 64, "artifacts": {"onnx_path": "flow/raft.onnx"}}}}}


def test_model(fake_onnx_model):
    model = fake_onnx_model([("x", "float16", ["batch", 4])], [("y", "float16", ["batch", 2])])
    feeds = model.example_inputs({"batch": 3})
    session = ort.InferenceSession(str(model.file), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, feeds)
    assert y.dtype == np.float16 and y.shape == (3, 2)
    np.testing.assert_array_equal(y, model.expected(feeds)["y"])


def test_manager(fake_onnx_manager):
    mm = fake_onnx_manager(MAPPING, {"core_flow/flow": FLOW})
    spec = mm.resolve(component="core_flow", role="flow")
    assert spec.weights_digest == fake_onnx_manager.models["core_flow/flow"].digest
    assert mm.weights_path(spec) == str(fake_onnx_manager.root / "flow" / "raft.onnx")


def test_bad_signature(fake_onnx_model):
    with pytest.raises(InvalidModelSpec, match="dtype 'complex64' is not supported"):
        fake_onnx_model([("x", "complex64", [1])], [("y", "float32", [1])])


def test_forgotten_signature(fake_onnx_manager):
    fake_onnx_manager(MAPPING, {})
'''


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner run starts as a user's would: no guard exported by this run, no autoloaded plugins."""
    for name, value in inner_env().items():
        monkeypatch.setenv(name, value)
    for name in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "MM_NETWORK_GUARD", "MM_NETWORK_GUARD_ALLOW"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.mark.usefixtures("clean_env")
def test_the_fixtures_under_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("-p", "pytest_mm", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*mm network guard: on*"])
    result.stdout.fnmatch_lines(["*invalid_model_spec: field 'signatures': in-process ONNX roles without a "
                                 "signature: ?'core_flow/flow'?*"])  # ? for [ and ]: fnmatch classes


@pytest.mark.usefixtures("clean_env")
def test_the_fixtures_are_listed_with_their_documentation(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "pytest_mm", "-p", "no:cacheprovider", "--fixtures", timeout=120)
    result.stdout.fnmatch_lines(["fake_onnx_model*", "*Build real ONNX files*"], consecutive=False)
    result.stdout.fnmatch_lines(["fake_onnx_manager*", "*A ModelManager over a mapping or profile*"])


def test_the_family_module_imports_nothing_heavy() -> None:
    probe = "import sys, json, pytest_mm.onnx; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True,
                         env=inner_env()).stdout
    loaded = set(json.loads(out))
    assert not loaded & {"numpy", "onnx", "onnxruntime", "pydantic", "yaml", "model_manager.manager",
                         "pytest_mm.fake_onnx"}
