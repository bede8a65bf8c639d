"""Build a manager for a 100-component mapping and compute every signature, with a warm digest cache.

Run: .venv/bin/python bench/bench_manager.py
Baseline in the same run: validating the same mapping alone (pydantic), so the ratio shows what
path checks, cached digests and signatures add on top of parsing.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _util import interleaved, verdict

from model_manager.artifacts import cache as digest_cache
from model_manager.manager import ModelManager
from model_manager.mapping.loader import parse_mapping

CONTEXT = {"platform_id": "p", "video_id": "v", "run_id": "r", "config_hash": "c",
           "sampling_policy_version": "s", "dataprocessor_version": "d"}


def build_mapping(root: Path, components: int) -> dict:
    out: dict = {"schema_version": 1, "components": {}}
    for i in range(components):
        if i % 4 == 0:  # a quarter on Triton, two roles each
            entry = {"runtime": "triton", "engine": "onnx", "precision": "fp16", "device_policy": "any-gpu",
                     "device": f"cuda:{i % 2}", "model_name": f"m{i}", "model_version": "1",
                     "weights_digest": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest(),
                     "triton": {"http_url": "localhost:8000", "model_name": f"m{i}", "model_version": "1",
                                "inputs": [{"name": "x", "dtype": "FP16", "shape": [-1, 3, 224, 224]}],
                                "outputs": [{"name": "y", "dtype": "FP16", "shape": [-1, 512]}]}}
            out["components"][f"c{i:03d}"] = {"a": entry, "b": dict(entry, model_name=f"m{i}b")}
            continue
        data = os.urandom(4096) + str(i).encode()
        (root / f"m{i}.onnx").write_bytes(data)
        out["components"][f"c{i:03d}"] = {"main": {
            "runtime": "inprocess", "engine": "onnx", "precision": "fp32", "device_policy": "cpu",
            "model_name": f"m{i}", "model_version": "1.0",
            "weights_digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "artifacts": {"onnx_path": f"m{i}.onnx"}}}
    return out


def main() -> int:
    digest_cache.RACY_WINDOW_NS = 0  # files made a moment ago stand for weights prepared long before
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "models"
        root.mkdir()
        os.environ["MM_MODELS_ROOT"] = str(root)
        os.environ["MM_CACHE_DIR"] = str(Path(tmp) / "cache")
        mapping = build_mapping(root, 100)

        def full() -> None:
            mm = ModelManager(CONTEXT, mapping)
            for component in mm.components:
                mm.model_signature_for(component)

        full()  # fills the digest cache
        best = interleaved({"parse only": lambda: parse_mapping(mapping), "manager + signatures": full}, rounds=30)
    entries = sum(len(r) for r in mapping["components"].values())
    print(f"100 components ({entries} entries, 75 local files): parse only {best['parse only'] * 1e3:.2f} ms, "
          f"manager + all signatures {best['manager + signatures'] * 1e3:.2f} ms (best of 30, warm cache)")
    ms = best["manager + signatures"] * 1e3
    print(f"RATIO manager+signatures / parse only = {best['manager + signatures'] / best['parse only']:.2f}x; "
          f"absolute {ms:.2f} ms (target < 20 ms) {verdict(ms < 20)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
