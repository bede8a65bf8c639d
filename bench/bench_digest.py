"""Digest throughput on a 1 GiB file against a bare hashlib loop and sha256sum; warm cache cost.

Run: .venv/bin/python bench/bench_digest.py   (creates bench/.data/big.bin once)
"model_manager" is weights_digest with no cache (what MM_VERIFY=full runs); the warm figures go through
the SQLite digest cache, once with a cache opened for every call (what each new process or ModelManager
pays: folder checks, key, store) and once with the cache already open.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _util import interleaved, median_per_call, verdict

from model_manager.artifacts.cache import RACY_WINDOW_NS, DigestCache
from model_manager.artifacts.digest import weights_digest

SIZE = 1 << 30
DATA = Path(__file__).resolve().parent / ".data" / "big.bin"


def bare_hashlib_loop(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def sha256sum(path: str) -> str:
    return subprocess.run(["sha256sum", path], check=True, capture_output=True, text=True).stdout.split()[0]


def main() -> int:
    DATA.parent.mkdir(parents=True, exist_ok=True)
    if not DATA.exists() or DATA.stat().st_size != SIZE:
        with open(DATA, "wb") as fh:
            for _ in range(SIZE >> 24):
                fh.write(os.urandom(1 << 24))
    path, root = str(DATA), str(DATA.parent)
    expected = bare_hashlib_loop(path)  # also warms the page cache: all three read from memory
    assert weights_digest(path, root, DigestCache(None)) == "sha256:" + expected == "sha256:" + sha256sum(path)

    best = interleaved({"hashlib 1 MiB loop": lambda: bare_hashlib_loop(path),
                        "model_manager": lambda: weights_digest(path, root, DigestCache(None)),
                        "sha256sum": lambda: sha256sum(path)}, rounds=5)
    gbps = {name: SIZE / t / 1e9 for name, t in best.items()}
    for name, rate in gbps.items():
        print(f"digest 1 GiB  {name:<20} {best[name]:.3f} s  {rate:.2f} GB/s")
    vs_loop = gbps["model_manager"] / gbps["hashlib 1 MiB loop"]
    vs_sum = gbps["model_manager"] / gbps["sha256sum"]
    print(f"RATIO throughput model_manager / hashlib loop = {vs_loop:.3f}x  (target >= 0.95x) "
          f"{verdict(vs_loop >= 0.95)}")
    print(f"RATIO throughput model_manager / sha256sum    = {vs_sum:.2f}x  (target > 1x)     {verdict(vs_sum > 1)}")

    age = time.time_ns() - max(DATA.stat().st_mtime_ns, DATA.stat().st_ctime_ns)
    if age < RACY_WINDOW_NS:  # a file just written is not cached until it settles
        time.sleep((RACY_WINDOW_NS - age) / 1e9 + 0.05)
    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        assert weights_digest(path, root, DigestCache(cache_dir)) == "sha256:" + expected
        cold = time.perf_counter() - start
        fresh = median_per_call(lambda: weights_digest(path, root, DigestCache(cache_dir)), calls=2000)
        cache = DigestCache(cache_dir)
        opened = median_per_call(lambda: weights_digest(path, root, cache), calls=2000)
        cache.close()
    print(f"cached digest 1 GiB  cold {cold * 1e3:.0f} ms; warm {fresh * 1e6:.1f} us per call opening the cache, "
          f"{opened * 1e6:.1f} us with it open (medians of 2000)")
    print(f"RATIO warm cached digest = {fresh * 1e3:.4f} ms opening the cache each call (target < 1 ms), "
          f"cold/warm = {cold / fresh:,.0f}x {verdict(fresh < 1e-3)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
