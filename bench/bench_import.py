"""`python -c "import model_manager"` against `python -c "import pydantic"`, interleaved.

Run: .venv/bin/python bench/bench_import.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _util import interleaved, verdict

HEAVY = ["numpy", "onnxruntime", "tritonclient", "gevent"]


def run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True)


def main() -> int:
    best = interleaved({"import pydantic": lambda: run("import pydantic"),
                        "import model_manager": lambda: run("import model_manager"),
                        "python -c pass": lambda: run("pass")}, rounds=30)
    for name, t in best.items():
        print(f"{name:<22} {t * 1e3:.1f} ms (best of 30, whole process)")
    ratio = best["import model_manager"] / best["import pydantic"]
    print(f"RATIO import model_manager / import pydantic = {ratio:.2f}x (target < 1.5x) {verdict(ratio < 1.5)}")
    probe = "import sys, json, model_manager; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                                       text=True).stdout)
    heavy = [m for m in HEAVY if m in loaded]
    print(f"heavy modules imported by `import model_manager`: {heavy or 'none'} {verdict(not heavy)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
