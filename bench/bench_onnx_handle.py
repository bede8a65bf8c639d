"""What the ONNX handle adds to a call: handle.run against a raw InferenceSession.run on the same model.

Run: .venv/bin/python bench/bench_onnx_handle.py   (about 20 seconds; needs the dev extra: onnx, onnxruntime)
The model: a 4-layer 512-wide fp32 MLP (MatMul, Add, Relu), batch 8, on the CPU execution provider. Both
sides run the same bytes with ONNX Runtime's default session options; rounds alternate between them and each
side keeps its best round (the least disturbed by a noisy machine). Target: handle/raw <= 1.05x.
Two more figures isolate the handle's own Python work (checks, the result dict): handle.run against the
handle's own session.run, on the MLP and on a one-node model where ONNX Runtime's work is smallest.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "runtimes"))  # the tests' models
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import onnxruntime as ort
from _util import interleaved
from onnx_models import mlp, place, relu, spec

from model_manager.runtimes.onnx import onnx_handle

CALLS, ROUNDS, BUDGET = 200, 15, 1.05
THREADS = 1  # one intra-op thread per session: two spinning thread pools on a small host measure each other


def per_call(fn: Callable[[], object], calls: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(calls):
            fn()
    return run


def main() -> int:
    data, _ = mlp(width=512, layers=4)
    x = np.random.default_rng(0).standard_normal((8, 512)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path, digest = place(Path(tmp), "mlp.onnx", data)
        handle = onnx_handle(spec(digest), path, session_options={"intra_op_num_threads": THREADS})
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    raw = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    own = handle._run  # the handle's own InferenceSession.run
    feed = {"x": x}
    np.testing.assert_array_equal(handle.run(feed)["y"], raw.run(None, feed)[0])
    sides = {"handle": per_call(lambda: handle.run(feed), CALLS), "raw": per_call(lambda: raw.run(None, feed), CALLS),
             "own": per_call(lambda: own(["y"], feed), CALLS)}
    for fn in sides.values():
        fn()  # warm up: thread pools, caches
    best = interleaved(sides, ROUNDS)
    us = {name: seconds / CALLS * 1e6 for name, seconds in best.items()}
    ratio, added = us["handle"] / us["raw"], us["handle"] - us["raw"]
    print(f"onnxruntime {ort.__version__}, 4x512 fp32 MLP, batch 8, CPUExecutionProvider "
          f"(best of {ROUNDS} alternating rounds x {CALLS} calls)")
    print(f"handle.run {us['handle']:.1f} us   raw session.run {us['raw']:.1f} us   "
          f"the handle's own session.run {us['own']:.1f} us")
    print(f"added by the handle: {added:+.2f} us per call against raw "
          f"({us['handle'] - us['own']:+.2f} us against its own session)")
    tiny = tiny_overhead()
    print(f"one-node model (Relu, [8, 4]): handle.run {tiny[0]:.2f} us   its own session.run {tiny[1]:.2f} us   "
          f"added {tiny[0] - tiny[1]:+.2f} us")
    ok = ratio <= BUDGET
    print(f"RATIO handle.run / raw session.run = {ratio:.3f}x  (target <= {BUDGET}x) "
          f"{'PASS' if ok else 'OVER BUDGET'}")
    return 0 if ok else 1


def tiny_overhead() -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path, digest = place(Path(tmp), "relu.onnx", relu())
        handle = onnx_handle(spec(digest), path, session_options={"intra_op_num_threads": THREADS})
    feed, own, calls = {"x": np.ones((8, 4), np.float32)}, handle._run, 2000
    sides = {"handle": per_call(lambda: handle.run(feed), calls), "own": per_call(lambda: own(["y"], feed), calls)}
    best = interleaved(sides, ROUNDS)
    return best["handle"] / calls * 1e6, best["own"] / calls * 1e6


if __name__ == "__main__":
    sys.exit(main())
