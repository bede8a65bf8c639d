"""The main job on the bundled example (``make demo``).

Verifies the profile, starts a fake Triton serving the profile's Triton roles
(``pytest_mm.fake_triton``: deterministic outputs, no GPU), builds a
ModelManager on the mapping pointed at it (network guard on, every local
artifact checked against its pinned digest), preloads the tier-0 models,
resolves every component, runs every role through its handle: the Triton roles
(``check()``, ``infer()``), the in-process ONNX models (real ONNX Runtime
sessions on the CPU, built from the verified bytes) and the torch role's
safetensors weights (loaded to numpy, no torch needed); writes ``manifest.json``
plus one NPZ per component with its provenance (each recorded in the manifest),
prints ``mm.health()``, then audits the run folder against the manifest, lints
the example's code for downloads, checks its licence inventory and prints a
short summary.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = REPO / "demo-out"


def main() -> int:
    os.environ.setdefault("MM_MODELS_ROOT", str(HERE / "models"))
    os.environ.setdefault("MM_CACHE_DIR", str(OUT / "cache"))
    profile = str(HERE / "profile.yaml")

    import numpy as np

    from model_manager import ModelManager, cli
    from model_manager.provenance import save_output, write_manifest
    from pytest_mm.fake_triton import FakeTriton

    print(f"== verify {os.path.relpath(profile, REPO)} (MM_MODELS_ROOT={os.environ['MM_MODELS_ROOT']})")
    if cli.main(["verify", "--profile", profile]) != 0:
        return 1

    run_context = {
        "platform_id": "demo", "video_id": "example-video-0001", "run_id": f"run-{int(time.time())}",
        "config_hash": "sha256:" + "0" * 64, "sampling_policy_version": "1", "dataprocessor_version": "0.1.0",
    }
    triton = FakeTriton.from_mapping(profile).start()  # the profile's Triton roles, on 127.0.0.1
    try:
        print(f"\n== fake Triton at {triton.url}: serves {', '.join(sorted(triton.models))} "
              "(deterministic outputs, no GPU)")
        start = time.perf_counter()
        mm = ModelManager(run_context, triton.mapping)  # the profile, http_url pointed at the fake
        built_ms = (time.perf_counter() - start) * 1000
        run_dir = OUT / run_context["video_id"] / run_context["run_id"]
        write_manifest(run_dir, mm.run_record())
        start = time.perf_counter()
        preloaded = mm.preload(tier=0)
        print(f"\n== preloaded tier 0 in {(time.perf_counter() - start) * 1000:.1f} ms: {', '.join(preloaded)}")

        print(f"\n== resolved {len(mm.components)} components in {built_ms:.1f} ms")
        for component in mm.components:
            outputs = {"frame_index": np.arange(4, dtype=np.int32)}
            for role in mm.roles(component):
                spec = mm.resolve(component=component, role=role)
                where = spec.triton.http_url if spec.triton else "in-process"
                print(f"  {component}/{role}: {spec.model_name}@{spec.model_version} "
                      f"{spec.runtime}/{spec.engine}/{spec.precision} on {spec.device} ({where})")
                if spec.runtime == "triton":
                    outputs.update(run_triton_role(mm, spec))
                else:
                    outputs.update(run_inprocess_role(mm, spec))
            if len(outputs) == 1:
                outputs["features"] = np.zeros((4, 8), dtype=np.float32)
            save_output(run_dir, f"{component}.npz", mm.npz_meta_for(component), **outputs)
            print(f"    model_signature {mm.model_signature_for(component)}")
            print(f"    idempotency_key {mm.idempotency_key_for(component)}")

        start = time.perf_counter()
        records = mm.health(probes=health_probes())
        print(f"\n== health ({(time.perf_counter() - start) * 1000:.1f} ms)")
        for record in records:
            print(f"  {record.line()}")
        healthy = all(record.ok for record in records)
    finally:
        triton.stop()

    print(f"\n== audit {os.path.relpath(run_dir, REPO)}")
    audit = cli.main(["audit", str(run_dir)])

    from mm_lint.cli import main as mm_lint

    print("\n== mm-lint examples (no download may ship)")
    lint = mm_lint([str(HERE)])
    print("  no findings" if lint == 0 else f"  findings above (exit {lint})")
    print("\n== mm-lint licenses --inventory docs/MODEL_LICENSES.md examples/profile.yaml")
    licenses = mm_lint(["licenses", "--inventory", str(REPO / "docs" / "MODEL_LICENSES.md"), profile])
    print("  every model has a licence row" if licenses == 0 else f"  findings above (exit {licenses})")

    status = audit or lint or licenses or (0 if healthy else 1)
    print("\nsummary: " + ("OK" if status == 0 else "FAILED") +
          f": {len(mm.specs())} models pinned, verified and run ({sum(r.ok for r in records)} healthy), "
          f"manifest + {len(mm.components)} NPZ outputs "
          f"audited (exit {audit}), example code linted (exit {lint}), licence inventory checked "
          f"(exit {licenses}); written to {os.path.relpath(run_dir, REPO)}")
    return status


def run_triton_role(mm: Any, spec: Any) -> dict[str, Any]:
    """``check()`` then ``infer()`` through the role's handle, on 4 frames of inputs of the declared dtypes."""
    import numpy as np

    handle = mm.get_runtime(spec)
    handle.check()
    inputs = {}
    for tensor in handle.inputs:
        shape = [4 if dim == -1 else dim for dim in tensor.shape]
        dtype = np.float16 if tensor.dtype == "FP16" else np.float32 if tensor.dtype == "FP32" else np.int64
        inputs[tensor.name] = (np.arange(int(np.prod(shape))) % 97).astype(dtype).reshape(shape)
    outputs = handle.infer(inputs, request_id=f"demo-{spec.role}")
    for name, array in outputs.items():
        print(f"    check() passed; infer() -> {name} {array.dtype} {list(array.shape)}")
    return dict(outputs)


def health_probes() -> dict[str, dict[str, Any]]:
    """One tiny input per in-process ONNX role, for ``mm.health``'s inference check."""
    import numpy as np

    return {"core_optical_flow/flow": {"frame0": np.zeros((1, 3, 8, 8), np.float32),
                                       "frame1": np.ones((1, 3, 8, 8), np.float32)},
            "core_audio/vad": {"audio": np.zeros((1, 160), np.float32)},
            "core_text/embedder": {"input_ids": np.array([[2, 3]], np.int64)}}


def run_inprocess_role(mm: Any, spec: Any) -> dict[str, Any]:
    """Real inference in this process: ONNX Runtime on the verified bytes, or the torch role's weights."""
    import numpy as np

    handle = mm.get_runtime(spec)
    rng = np.random.default_rng(0)
    if spec.engine == "torch":
        state = handle.load_state_dict()
        audio = rng.standard_normal((4, 4)).astype(np.float32)
        features = audio @ state["encoder.weight"].T  # the toy encoder: one linear layer of the real weights
        print(f"    load_state_dict() -> {', '.join(f'{k} {v.dtype} {list(v.shape)}' for k, v in state.items())} "
              f"(safetensors, {handle.device})")
        return {f"{spec.role}_features": features}
    if spec.role == "flow":
        frames = rng.random((5, 1, 3, 16, 16), dtype=np.float32)
        result = np.concatenate([handle.run({"frame0": frames[i], "frame1": frames[i + 1]})["flow"]
                                 for i in range(4)])
    elif spec.role == "vad":
        audio = rng.standard_normal((4, 1, 1600)).astype(np.float32)
        result = np.concatenate([handle.run({"audio": clip})["speech_prob"] for clip in audio])
    else:
        vocab = Path(mm.artifact_path(spec, "artifacts.tokenizer_path"), "vocab.txt").read_text().split()
        ids = [[vocab.index(c) if c in vocab else 1 for c in text] for text in ("abc", "bad", "cab", "dead")]
        result = np.concatenate([handle.run({"input_ids": np.array([row], np.int64)})["embedding"] for row in ids])
    print(f"    run() on {handle.provider} -> {spec.role} {result.dtype} {list(result.shape)}")
    return {spec.role: result}


if __name__ == "__main__":
    sys.exit(main())
