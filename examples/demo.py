"""The main job on the bundled example (``make demo``).

Verifies the profile, starts a fake Triton serving the profile's Triton roles
(``pytest_mm.fake_triton``: deterministic outputs, no GPU), builds a
ModelManager on the mapping pointed at it (network guard on, every local
artifact checked against its pinned digest), resolves every component, runs
the Triton roles through their handles (``check()``, ``infer()``) and writes
``manifest.json`` plus one NPZ per component with its provenance (each
recorded in the manifest), then audits the run folder against the manifest,
lints the example's code for downloads, checks its licence inventory and
prints a short summary.
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
            if len(outputs) == 1:
                outputs["features"] = np.zeros((4, 8), dtype=np.float32)
            save_output(run_dir, f"{component}.npz", mm.npz_meta_for(component), **outputs)
            print(f"    model_signature {mm.model_signature_for(component)}")
            print(f"    idempotency_key {mm.idempotency_key_for(component)}")
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

    status = audit or lint or licenses
    print("\nsummary: " + ("OK" if status == 0 else "FAILED") +
          f": {len(mm.specs())} models pinned and verified, manifest + {len(mm.components)} NPZ outputs "
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


if __name__ == "__main__":
    sys.exit(main())
