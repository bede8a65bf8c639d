"""Small timing helpers shared by the benchmarks (ratios are always measured in one run)."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], rounds: int) -> float:
    """The fastest of ``rounds`` calls, in seconds: the least disturbed by a noisy machine."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Best time of each function, alternating them round by round so drift hits all alike."""
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def median_per_call(fn: Callable[[], object], calls: int) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e9


def instructions(argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
                 expect: str = "") -> int:
    """Instructions ``argv`` executes, counted by valgrind's callgrind: the same on every run (about 50x
    slower than running it). ``expect``: a text its stdout must hold (the run did what it should)."""
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                          capture_output=True, text=True, cwd=cwd,
                          env={**(env if env is not None else os.environ), "PYTHONHASHSEED": "0"})
    found = re.search(r"refs:\s+([\d,]+)", proc.stderr)
    if proc.returncode not in (0, 1) or found is None or expect not in proc.stdout:
        raise SystemExit(f"callgrind run failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
