"""Real writer processes for the crash and concurrency tests: ``python child.py MODE ARGS.json``.

Each waits for the ``go`` file (when given) so that all writers start together.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    import numpy as np

    from model_manager.provenance import save_npz, save_output, write_manifest

    mode, args = sys.argv[1], json.loads(Path(sys.argv[2]).read_text())
    go = args.get("go")
    while go and not Path(go).exists():
        time.sleep(0.001)
    if mode == "big_npz":  # tens of MB of incompressible data: long enough to be killed mid-write
        data = np.random.default_rng(0).random(args["mb"] << 17)
        save_npz(args["path"], args["meta"], data=data)
    elif mode == "write_manifest":
        for folder in args["folders"]:
            write_manifest(folder, args["record"])
    elif mode == "save_output":
        for i in range(args["count"]):
            name = args["name"] or f"{args['prefix']}{i}.npz"
            save_output(args["run_dir"], name, args["meta"], x=np.full(args["size"] + i, args["seed"]))


if __name__ == "__main__":
    main()
