"""The torch handle with the real torch: the paths the test suite (which runs without torch) can only stub.

Not part of the test suite. Run it with a Python that has torch, numpy, safetensors, pydantic and PyYAML:

    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 numpy safetensors pydantic PyYAML
    PYTHONPATH=/work/main /tmp/torchvenv/bin/python bench/check_torch_handle.py

It saves a real state dict with torch.save (zip and legacy formats) and as safetensors (one file, two shards),
loads each through the handle, loads the test suite's hand-made torch files with torch.load itself, shows that a
torch.save'd object holding more than tensors (a hostile one, a whole nn.Module) is refused unrun, and asks for
a GPU. It prints what it saw and exits 1 when something differs from docs/torch-weights.md.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "runtimes"))  # torch_files: the suite's hand-made files

import torch  # noqa: E402
import torch_files as tf  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from model_manager import ModelManager  # noqa: E402
from model_manager.errors import ModelManagerError  # noqa: E402
from model_manager.runtimes.torch import torch_handle  # noqa: E402
from model_manager.runtimes.torch_pickle import check_torch_file, scan_pickle  # noqa: E402

RUN_CONTEXT = {"platform_id": "p", "video_id": "v", "run_id": "r", "config_hash": "c",
               "sampling_policy_version": "s", "dataprocessor_version": "d"}
problems: list[str] = []


class Hostile:
    """Runs ``touch <marker>`` when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {self.marker}",)


def expect(ok: bool, what: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        problems.append(what)


def same(loaded: dict[str, Any], original: dict[str, torch.Tensor], device: str = "cpu") -> bool:
    return sorted(loaded) == sorted(original) and all(
        isinstance(loaded[k], torch.Tensor) and str(loaded[k].device) == device and loaded[k].dtype == v.dtype
        and torch.equal(loaded[k].cpu(), v) for k, v in original.items())


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    net(torch.randn(5, 4))  # running statistics and num_batches_tracked (int64) move off their defaults
    return net


def main() -> int:
    # torch.load's note that protocols 4 and 5 are not its default; those files are loaded on purpose
    warnings.filterwarnings("ignore", message="Detected pickle protocol")
    print(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="check-torch-") as name:
        return check(Path(name))


def check(tmp: Path) -> int:
    root, marker = tmp / "models", tmp / "hostile-ran"
    os.environ["MM_MODELS_ROOT"], os.environ["MM_CACHE_DIR"] = str(root), str(tmp / "cache")
    net = model()
    sd = net.state_dict()
    half = dict(list(sd.items())[:3])
    files: dict[str, Any] = {
        "zip/model.pt": lambda p: torch.save(sd, p),
        "legacy/model.pth": lambda p: torch.save(sd, p, _use_new_zipfile_serialization=False),
        "proto5/model.pt": lambda p: torch.save(sd, p, pickle_protocol=5),
        "proto4legacy/model.pt": lambda p: torch.save(sd, p, pickle_protocol=4, _use_new_zipfile_serialization=False),
        "st/model.safetensors": lambda p: save_file(sd, p),
        "sharded/model-00001-of-00002.safetensors": lambda p: save_file(half, p),
        "sharded/model-00002-of-00002.safetensors": lambda p: save_file({k: sd[k] for k in sd if k not in half}, p),
        "bf16/model.safetensors": lambda p: save_file({"w": torch.ones(2, dtype=torch.bfloat16)}, p),
        "hostile/model.pt": lambda p: torch.save({"weight": torch.ones(2), "extra": Hostile(marker)}, p),
        "module/model.pt": lambda p: torch.save(net, p),
        "hand/model.pt": lambda p: p.write_bytes(tf.zip_state_dict(tf.TENSORS)),
        "hand/legacy.pth": lambda p: p.write_bytes(tf.legacy_state_dict(tf.TENSORS)),
    }
    for rel, write in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write(root / rel)

    roles = {"zip": "zip/model.pt", "legacy": "legacy/model.pth", "proto5": "proto5/model.pt",
             "proto4legacy": "proto4legacy/model.pt", "st": "st/model.safetensors", "sharded": "sharded",
             "bf16": "bf16/model.safetensors", "hostile": "hostile/model.pt", "module": "module/model.pt",
             "hand_zip": "hand/model.pt", "hand_legacy": "hand/legacy.pth", "gpu": "zip/model.pt"}
    entries = {role: {"runtime": "inprocess", "engine": "torch", "precision": "fp32",
                      "device_policy": "cuda" if role == "gpu" else "cpu", "model_name": role, "model_version": "1",
                      "weights_digest": tf.digest_of(root / rel), "artifacts": {"weights_path": rel}}
               for role, rel in roles.items()}
    mm = ModelManager(RUN_CONTEXT, {"schema_version": 1, "components": {"core_check": entries}})
    real_root = os.path.realpath(root)

    def load(role: str) -> dict[str, Any] | ModelManagerError:
        spec = mm.resolve(component="core_check", role=role)
        handle = torch_handle(spec, mm.weights_path(spec), real_root)
        print(f"{role}: {handle.describe()}")
        try:
            return handle.load_state_dict()
        except ModelManagerError as exc:
            print(f"  raised {exc}")
            return exc

    with zipfile.ZipFile(root / "zip/model.pt") as z:
        data_pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        print(f"torch.save's {data_pkl} names: {sorted(scan_pickle(io.BytesIO(z.read(data_pkl)), data_pkl))}")
    print(f"legacy format accepted by the scanner as: {check_torch_file((root / 'legacy/model.pth').read_bytes())}")

    for role in ("proto5", "proto4legacy"):
        # the scanner reads any protocol; torch 2.13's weights_only unpickler reads up to 3 (no FRAME opcode)
        loaded = load(role)
        refused = isinstance(loaded, ModelManagerError) and loaded.code == "model_artifact_invalid" \
            and "Unsupported operand" in loaded.message
        expect(refused or (isinstance(loaded, dict) and same(loaded, sd)),
               f"{role}: model_artifact_invalid with torch's reason (or, with a torch that reads it, the state dict)")
    for role in ("zip", "legacy", "st", "sharded"):
        loaded = load(role)
        expect(isinstance(loaded, dict) and same(loaded, sd), f"{role}: the saved state dict, torch tensors on cpu")
        if isinstance(loaded, dict):
            fresh = model()
            fresh.load_state_dict(loaded)
            expect(all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), sd.values(), strict=True)),
                   f"{role}: nn.Module.load_state_dict(strict=True) takes it")
    loaded = load("bf16")
    expect(isinstance(loaded, dict) and loaded["w"].dtype == torch.bfloat16, "bf16: a bfloat16 tensor")

    for role in ("hand_zip", "hand_legacy"):
        loaded = load(role)
        want = {t.name: torch.from_numpy(t.values) for t in tf.TENSORS}
        expect(isinstance(loaded, dict) and same(loaded, want), f"{role}: the suite's hand-made file, loaded")
        direct = torch.load(io.BytesIO((root / roles[role]).read_bytes()), weights_only=True)
        expect(same(direct, want), f"{role}: torch.load(weights_only=True) reads the hand-made file alike")

    for role in ("hostile", "module"):
        loaded = load(role)
        expect(isinstance(loaded, ModelManagerError) and loaded.code == "model_artifact_invalid",
               f"{role}: refused with model_artifact_invalid")
    expect(not marker.exists(), "hostile: its payload never ran (no marker file)")

    loaded = load("gpu")
    if torch.cuda.is_available():
        expect(isinstance(loaded, dict) and same(loaded, sd, "cuda:0"), "gpu: every tensor on cuda:0")
    else:
        expect(isinstance(loaded, ModelManagerError) and loaded.code == "device_unavailable",
               "gpu: device_unavailable, nothing loaded elsewhere")

    spec = mm.resolve(component="core_check", role="zip")
    try:
        print(f"mm.get_runtime(spec) for engine torch: {type(mm.get_runtime(spec)).__name__}")
    except ModelManagerError as exc:
        print(f"mm.get_runtime(spec) for engine torch: not wired yet ({exc.code})")
    print("all as documented" if not problems else f"{len(problems)} problem(s): {problems}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
