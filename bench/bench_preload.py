"""Tier-0 preload of 8 small ONNX models on threads, against building them one after another, in one run;
then ``mm.health()`` on the bundled example (its Triton roles on the fake Triton server).

Run: .venv/bin/python bench/bench_preload.py
Budget: preload (default workers) at most the time of the sequential build (workers=1).
Each round builds a fresh manager (so nothing is cached between rounds); the manager's own construction
(verifying digests) is outside the timed part. Rounds alternate the two ways; best of each.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from model_manager import ModelManager  # noqa: E402

CONTEXT = {"platform_id": "p", "video_id": "v", "run_id": "r", "config_hash": "c",
           "sampling_policy_version": "s", "dataprocessor_version": "d"}
MODELS, ROUNDS = 8, 7


def small_mlp(seed: int, width: int = 256, layers: int = 4) -> bytes:
    """A 4-layer MLP, 256 wide (about 1 MB of weights): small, but real work for the graph optimiser."""
    rng = np.random.default_rng(seed)
    nodes, inits, last = [], [], "x"
    for i in range(layers):
        w = numpy_helper.from_array(rng.standard_normal((width, width)).astype(np.float32) * 0.05, f"w{i}")
        b = numpy_helper.from_array(np.zeros(width, np.float32), f"b{i}")
        inits += [w, b]
        nodes += [helper.make_node("MatMul", [last, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
                  helper.make_node("Relu", [f"a{i}"], [f"h{i}"])]
        last = f"h{i}"
    nodes.append(helper.make_node("Identity", [last], ["y"]))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", width])
    graph = helper.make_graph(nodes, f"mlp{seed}", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model.SerializeToString()


def preload_bench(root: Path) -> bool:
    import hashlib

    components = {}
    for i in range(MODELS):
        data = small_mlp(i)
        (root / f"m{i}.onnx").write_bytes(data)
        components[f"c{i}"] = {"m": {
            "runtime": "inprocess", "engine": "onnx", "precision": "fp32", "device_policy": "cpu",
            "model_name": f"mlp{i}", "model_version": "1", "tier": 0,
            "weights_digest": "sha256:" + hashlib.sha256(data).hexdigest(), "artifacts": {"onnx_path": f"m{i}.onnx"}}}
    mapping = {"schema_version": 1, "components": components}
    best = {"sequential": float("inf"), "preload": float("inf")}
    for _ in range(ROUNDS):
        for name, workers in (("sequential", 1), ("preload", None)):
            mm = ModelManager(CONTEXT, mapping)
            start = time.perf_counter()
            handles = mm.preload(tier=0, workers=workers)
            best[name] = min(best[name], time.perf_counter() - start)
            assert len(handles) == MODELS
    ratio = best["preload"] / best["sequential"]
    print(f"preload of {MODELS} small models (4x256 MLP, {os.cpu_count()} CPUs): one after another "
          f"{best['sequential'] * 1000:.1f} ms, mm.preload {best['preload'] * 1000:.1f} ms -> ratio {ratio:.2f} "
          f"(budget <= 1.00; best of {ROUNDS})")
    return ratio <= 1.0


def health_bench() -> None:
    from examples.demo import health_probes
    from pytest_mm.fake_triton import FakeTriton

    profile = HERE.parent / "examples" / "profile.yaml"
    os.environ["MM_MODELS_ROOT"] = str(HERE.parent / "examples" / "models")
    triton = FakeTriton.from_mapping(str(profile)).start()
    try:
        times, probed = [], []
        for _ in range(ROUNDS):
            mm = ModelManager(CONTEXT, triton.mapping)
            start = time.perf_counter()
            records = mm.health()
            times.append(time.perf_counter() - start)
            assert all(r.ok for r in records), [r.line() for r in records if not r.ok]
            start = time.perf_counter()
            mm.health(probes=health_probes())
            probed.append(time.perf_counter() - start)
    finally:
        triton.stop()
    print(f"mm.health() on the bundled example ({len(records)} roles; handles built by the call): "
          f"best {min(times) * 1000:.1f} ms, median {sorted(times)[len(times) // 2] * 1000:.1f} ms; "
          f"again with probes (handles built): best {min(probed) * 1000:.2f} ms")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MM_MODELS_ROOT"] = tmp
        os.environ["MM_CACHE_DIR"] = str(Path(tmp, ".cache"))
        ok = preload_bench(Path(tmp))
        health_bench()
    print("PASS" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
