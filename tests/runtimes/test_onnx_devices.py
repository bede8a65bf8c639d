"""The device rule: a handle runs on exactly ``spec.device`` or is refused (``device_unavailable``), and a
refusal prints nothing of ONNX Runtime's; onnxruntime missing is ``onnxruntime_missing``.

This machine has onnxruntime-gpu without a GPU or CUDA libraries: ONNX Runtime lists CUDA and falls back
to the CPU, the real trap. Cases that need another machine are marked as simulations where they are.
"""

from __future__ import annotations

import ctypes
import gc
import os
import subprocess
import sys
import threading
import types
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper
from onnx_models import place, relu, spec

from model_manager.errors import DeviceUnavailable, ModelManagerError
from model_manager.runtimes import onnx_session
from model_manager.runtimes.onnx import onnx_handle

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NO_GPU = not os.path.exists("/dev/nvidiactl")
PLACE = onnx_session.Place("core_test", "net", "model 'test-net' version '1.0.0'")


def _loads(library: str) -> bool:
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def refusal(tmp_path: Path, device: str) -> ModelManagerError:
    path, digest = place(tmp_path / "models", "net/model.onnx", relu())
    with pytest.raises(ModelManagerError) as info:
        onnx_handle(spec(digest, device=device), path)
    return info.value


@pytest.mark.parametrize("device", ["cuda:0", "cuda", "cuda:3"])
def test_cuda_is_that_gpu_or_refused(tmp_path: Path, capfd: pytest.CaptureFixture[str], device: str) -> None:
    """Holds on every machine: refused, or really on CUDA with that device id; never a CPU session."""
    path, digest = place(tmp_path / "models", "net/model.onnx", relu())
    try:
        h = onnx_handle(spec(digest, device=device), path)
    except ModelManagerError as err:
        text = str(err)
        assert (err.code, err.field, err.component, err.role) == ("device_unavailable", "device", "core_test", "net")
        assert f"device {device!r} asked for CUDAExecutionProvider with device_id {device[5:] or 0}" in text, text
        assert "ONNX Runtime" in text and "nothing runs on another device" in text
    else:
        assert not NO_GPU, "a CUDA session on a machine without a GPU"
        assert h.provider == "CUDAExecutionProvider"
        assert h.describe()["provider_options"]["device_id"] == (device[5:] or "0")
    assert capfd.readouterr() == ("", ""), "ONNX Runtime's banners or log lines leaked"


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")
@pytest.mark.parametrize("device", ["cuda:0", "cuda", "cuda:3"])
def test_without_a_gpu_cuda_is_refused_with_what_onnx_runtime_reported(tmp_path: Path, device: str) -> None:
    text = str(refusal(tmp_path, device))
    assert text.startswith("device_unavailable: core_test/net field 'device': model 'test-net' version '1.0.0' on "
                           f"{device}: device {device!r}"), text
    assert "['CPUExecutionProvider']" in text or "refused to create it" in text, text
    if not _loads("libcublasLt.so.13"):  # this machine: the CUDA provider library cannot load
        assert "Failed to load library" in text and "libcublasLt.so.13" in text, text
    assert "\x1b[" not in text  # ONNX Runtime's colours are gone


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")
def test_refusals_from_many_threads_at_once(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path, digest = place(tmp_path / "models", "net/model.onnx", relu())
    codes: list[str] = []

    def make(device: str) -> None:
        try:
            onnx_handle(spec(digest, device=device), path)
            codes.append("built")
        except ModelManagerError as err:
            codes.append(err.code)

    threads = [threading.Thread(target=make, args=(d,)) for d in ("cuda:0", "cpu", "cuda:1", "cuda") * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == ["built"] * 3 + ["device_unavailable"] * 9
    assert capfd.readouterr() == ("", "")


def test_cpu_only_onnxruntime_is_refused_before_any_session(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulation: onnxruntime (CPU-only) and onnxruntime-gpu cannot share one environment (one module), so
    the build's provider list is patched; test_real_cpu_only_onnxruntime runs the real package when given."""
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["AzureExecutionProvider",
                                                                         "CPUExecutionProvider"])

    def no_session(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a session was created")

    monkeypatch.setattr(onnxruntime, "InferenceSession", no_session)
    text = str(refusal(tmp_path, "cuda:0"))
    assert "has no CUDAExecutionProvider (its providers: ['AzureExecutionProvider', 'CPUExecutionProvider'])" in text
    assert "install onnxruntime-gpu" in text


#: a CPU-only onnxruntime beside the venv's onnxruntime-gpu (`make test` installs it there with pip --target):
#: the wrong package for a GPU worker, the trap of the CPU-only build, tested with the real thing
CPU_ONLY = os.environ.get("MM_TEST_ORT_CPU_ONLY") or str(ROOT / ".venv" / "ort-cpu")


def test_real_cpu_only_onnxruntime(tmp_path: Path) -> None:
    assert Path(CPU_ONLY, "onnxruntime").is_dir(), (
        f"no CPU-only onnxruntime in {CPU_ONLY}: run `make test` (it installs one there), or "
        "`pip install --no-deps --target .venv/ort-cpu onnxruntime`, or set MM_TEST_ORT_CPU_ONLY to such a folder")
    script = CHILD + (
        "from onnxruntime.capi import build_and_package_info as info\n"
        "assert info.package_name == 'onnxruntime', info.package_name\n"
        "print(refused('cuda:0'))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(CPU_ONLY), str(ROOT)]))
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("device_unavailable device ") and "has no CUDAExecutionProvider" in done.stdout


# --- nothing of ONNX Runtime's reaches the pipeline's output ------------------------------------------
CHILD = f"""
import sys
sys.path[:0] = [{str(HERE)!r}, {str(ROOT)!r}]
from pathlib import Path
from onnx_models import place, relu, spec
from model_manager.runtimes.onnx import onnx_handle
path, digest = place(Path(sys.argv[1]), "m.onnx", relu())

def refused(device):
    try:
        onnx_handle(spec(digest, device=device), path)
    except Exception as exc:
        return f"{{exc.code}} {{exc.field}} {{exc.message}}"
    return "built"
"""


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")
def test_a_refusal_prints_nothing(tmp_path: Path) -> None:
    script = CHILD + "for d in ('cuda:0', 'cuda', 'cuda:3', 'cpu'):\n    print(refused(d).split(' model ')[0])\n"
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert done.stderr == "", "ONNX Runtime wrote to stderr"
    assert done.stdout == "device_unavailable device\n" * 3 + "built\n", "ONNX Runtime wrote to stdout"


def test_onnxruntime_missing(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'onnxruntime':\n"
        "            raise ImportError(f'No module named {name!r} (blocked by the test)')\n"
        "sys.meta_path.insert(0, Block())\n"
    ) + CHILD + "print(refused('cpu'))\nprint(refused('cuda:0'))\nprint('onnxruntime' in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    for line in lines[:2]:
        assert line.startswith("onnxruntime_missing engine model 'test-net' version '1.0.0' on "), line
        assert "onnxruntime cannot be imported (ImportError: No module named 'onnxruntime' (blocked" in line, line
    assert lines[2] == "False"


# --- how fallbacks are caught -----------------------------------------------------------------------
def test_a_fallen_back_session_is_dropped(capfd: pytest.CaptureFixture[str]) -> None:
    """The session step alone (no probe before it), with the real onnxruntime-gpu: ONNX Runtime builds a CPU
    session for CUDA; the handle refuses it and keeps no reference to it."""
    if not NO_GPU:
        pytest.skip("this machine has a GPU: ONNX Runtime would not fall back")
    made: list[weakref.ref[Any]] = []

    class Tracked(onnxruntime.InferenceSession):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(weakref.ref(self))

    ort = types.SimpleNamespace(**{n: getattr(onnxruntime, n) for n in dir(onnxruntime) if not n.startswith("__")})
    ort.InferenceSession, ort.__version__ = Tracked, onnxruntime.__version__
    options = onnx_session.build_options(ort, onnx_session.DEFAULTS, PLACE)
    with pytest.raises(DeviceUnavailable) as info:
        onnx_session.create_session(ort, relu(), options, "cuda:0", 0, PLACE)
    assert "ONNX Runtime fell back: its session runs on ['CPUExecutionProvider']" in str(info.value)
    del info
    gc.collect()
    assert len(made) == 1 and made[0]() is None
    capfd.readouterr()  # this step alone is not silent: the probe is what captures ONNX Runtime's log


def test_the_python_retry_is_off_and_its_error_is_a_refusal(capfd: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulation of a GPU machine asked for a GPU it lacks (shared/design/ORT_NOTES.md: device_id 1 on one
    GPU): ONNX Runtime's Python wrapper catches the provider's RuntimeError, prints "EP Error ... Falling back"
    and retries on the CPU unless enable_fallback=0. The fake behaves so; the handle must pass 0."""
    calls: list[dict[str, Any]] = []

    class FakeSession:
        def __init__(self, model: bytes, options: Any, **kwargs: Any) -> None:
            calls.append(kwargs)
            error = RuntimeError("/onnxruntime_src/onnxruntime/core/providers/cuda/cuda_execution_provider_info.cc:63 "
                                 "device_id (1) must be less than the device count (1)")
            if kwargs.get("enable_fallback", 1) != 0:
                print(f"EP Error {error} when using {kwargs['providers']}\nFalling back to CPU and retrying.")
            raise error

    ort = types.SimpleNamespace(get_available_providers=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
                                SessionOptions=types.SimpleNamespace, InferenceSession=FakeSession,
                                __version__=onnxruntime.__version__)
    monkeypatch.setattr(onnx_session, "_probed", set())
    with pytest.raises(DeviceUnavailable) as info:
        onnx_session.require_device(ort, "cuda:1", 1, PLACE)
    assert "ONNX Runtime refused to create it: RuntimeError: " in str(info.value)
    assert "device_id (1) must be less than the device count (1)" in str(info.value)
    assert calls == [{"providers": [("CUDAExecutionProvider", {"device_id": 1})], "enable_fallback": 0,
                      "read_config_from_model": 0}]
    assert capfd.readouterr() == ("", "")


def test_what_the_capture_keeps_and_gives_back(capfd: pytest.CaptureFixture[str]) -> None:
    """ONNX Runtime's lines become the message; another writer's lines go back to stderr."""
    def work() -> int:
        os.write(2, b"\x1b[1;31m2026-01-01 00:00:00.1 [E:onnxruntime:Default, x.cc:1 f] /onnxruntime_src/a.cc:2 "
                    b"void f() [ONNXRuntimeError] : 1 : FAIL : the library did not load\n\x1b[m\n"
                    b"another thread's line\n")
        print("python's own stderr", file=sys.stderr)
        return 42

    outcome, logged = onnx_session._captured(work)
    assert (outcome, logged) == (42, ["E: the library did not load"])
    out, err = capfd.readouterr()  # (under capfd, sys.stderr is pytest's own object, not fd 2: order may differ)
    assert out == "" and sorted(err.splitlines()) == ["another thread's line", "python's own stderr"]
    failed, _ = onnx_session._captured(lambda: 1 // 0)
    assert isinstance(failed, ZeroDivisionError)


def test_a_record_over_several_lines_stays_whole() -> None:
    data = (b"\x1b[1;31m2026 [E:onnxruntime:, a.cc:1 f] first line\nsecond line\n\x1b[m\n"
            b"2026 [W:onnxruntime:Default, b.cc:2 g] uncoloured\n"
            b"someone else\n")
    assert onnx_session._split(data) == (["E: first line second line", "W: uncoloured"], b"someone else\n")


def test_the_probe_model_is_what_onnx_helper_builds() -> None:
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    built = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7, producer_name="")
    assert built.SerializeToString() == onnx_session.PROBE_MODEL
    session = onnxruntime.InferenceSession(onnx_session.PROBE_MODEL, providers=["CPUExecutionProvider"])
    assert session.run(None, {"x": np.array([3.0], np.float32)})[0].tolist() == [3.0]
