"""The Triton handle and the fake Triton against a real Triton 2.51 (nvidia-pytriton's tritonserver, CPU).

Run: .venv/bin/python bench/bench_triton.py   (about a minute; needs the dev extra)
Every figure is a ratio of two things measured in this run, alternating round by round:
- start to ready: the fake (in this process, as the fixtures start it) vs the real server (a process);
- an infer round trip of a [1, 4] FP32 tensor through tritonclient: the fake vs the real server (the fake
  runs in its own process here, as the real one does);
- the handle's infer vs the raw ``tritonclient.http`` call (InferInput, infer, as_numpy) on the same server;
- 8 threads on one handle vs 8 threads each with its own raw tritonclient client (throughput: medians of
  20 alternating rounds, as bursts from other processes on a 2-core host swing a single round either way).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "triton"))  # the real server, the models
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import tritonclient.http as httpclient
from _util import interleaved, verdict
from contract_models import BY_NAME
from real_triton import ready, real_triton
from triton_helpers import double, handle, manager

from pytest_mm.fake_triton import FakeTriton

HERE = Path(__file__).resolve().parent
X = np.arange(4, dtype=np.float32).reshape(1, 4)
FAKE_PROCESS = (
    "import sys\n"
    f"sys.path.insert(0, {str(HERE.parent / 'tests' / 'triton')!r})\n"
    "from contract_models import BY_NAME\n"
    "from pytest_mm.fake_triton import FakeTriton\n"
    "server = FakeTriton([BY_NAME['double'].fake()]).start()\n"
    "print(server.url, flush=True)\n"
    "sys.stdin.read()\n"
)


def fake_start_to_ready() -> float:
    start = time.perf_counter()
    with FakeTriton([BY_NAME["double"].fake()]) as server:
        assert ready(server.url)
        return time.perf_counter() - start


def real_start_to_ready() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with real_triton(Path(tmp), models=[BY_NAME["double"]]):  # returns once /v2/health/ready answers 200
            return time.perf_counter() - start


def raw_call(client: httpclient.InferenceServerClient) -> Callable[[], object]:
    def call() -> object:
        tensor = httpclient.InferInput("x", [1, 4], "FP32")
        tensor.set_data_from_numpy(X)
        return client.infer("double", [tensor]).as_numpy("y")
    return call


def per_call(fn: Callable[[], object], calls: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(calls):
            fn()
    return run


def throughput(workers: list[Callable[[], object]], seconds: float) -> float:
    """Calls per second of ``len(workers)`` threads, each calling its own function for ``seconds``."""
    counts = [0] * len(workers)
    stop = time.perf_counter() + seconds

    def work(i: int) -> None:
        while time.perf_counter() < stop:
            workers[i]()
            counts[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / seconds


def main() -> int:
    fake_best = min(fake_start_to_ready() for _ in range(20))
    real_best = min(real_start_to_ready() for _ in range(2))
    ratio = fake_best / real_best
    print(f"start to ready   fake (in process) {fake_best * 1e3:.2f} ms   real tritonserver {real_best * 1e3:.0f} ms")
    print(f"RATIO start-to-ready fake/real = 1/{1 / ratio:,.0f}  (target <= 1/20) {verdict(ratio <= 1 / 20)}")

    fake_proc = subprocess.Popen([sys.executable, "-c", FAKE_PROCESS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True, cwd=HERE.parent)
    try:
        assert fake_proc.stdout is not None
        fake_url = fake_proc.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp, real_triton(Path(tmp), models=[BY_NAME["double"]]) as real_url:
            run(fake_url, real_url)
    finally:
        fake_proc.kill()
        fake_proc.wait()
    return 0


def run(fake_url: str, real_url: str) -> None:
    calls = 200
    fake_client, real_client = httpclient.InferenceServerClient(fake_url), httpclient.InferenceServerClient(real_url)
    mm = manager(real=double(real_url), fake=double(fake_url))
    real_handle, fake_handle = handle(mm, "real"), handle(mm, "fake")
    for fn in (raw_call(fake_client), raw_call(real_client), lambda: real_handle({"x": X}),
               lambda: fake_handle({"x": X})):
        per_call(fn, 50)()  # warm up: connections, imports, caches

    best = interleaved({"fake": per_call(raw_call(fake_client), calls),
                        "real": per_call(raw_call(real_client), calls)}, rounds=9)
    fake_us, real_us = best["fake"] / calls * 1e6, best["real"] / calls * 1e6
    print(f"tritonclient infer [1,4] FP32   fake {fake_us:.0f} us   real {real_us:.0f} us   (best of 9 x {calls})")
    print(f"RATIO infer latency fake/real = {fake_us / real_us:.3f}x  (target <= 1.0x) {verdict(fake_us <= real_us)}")

    for name, url, h in (("real", real_url, real_handle), ("fake", fake_url, fake_handle)):
        raw = raw_call(httpclient.InferenceServerClient(url))
        best = interleaved({"handle": per_call(lambda h=h: h({"x": X}), calls), "raw": per_call(raw, calls)},
                           rounds=9)
        over = best["handle"] / best["raw"]
        print(f"{name} server: handle.infer {best['handle'] / calls * 1e6:.0f} us   raw tritonclient "
              f"{best['raw'] / calls * 1e6:.0f} us")
        print(f"RATIO handle/raw tritonclient ({name} server) = {over:.3f}x  (target <= 1.05x) "
              f"{verdict(over <= 1.05)}")

    for name, url, h in (("real", real_url, real_handle), ("fake", fake_url, fake_handle)):
        shared = [lambda h=h: h({"x": X})] * 8
        one, own = [], []
        for _ in range(20):  # alternate short rounds; medians, since a 2-core host shared with the server is noisy
            one.append(throughput(shared, 0.3))
            # a tritonclient client must stay in the thread that first used it (gevent): new ones each round
            own.append(throughput([raw_call(httpclient.InferenceServerClient(url)) for _ in range(8)], 0.3))
        wins = sum(a >= b for a, b in zip(one, own, strict=True))
        ratio = statistics.median(one) / statistics.median(own)
        print(f"{name} server, 8 threads: one handle {statistics.median(one):,.0f} calls/s   8 raw clients "
              f"{statistics.median(own):,.0f} calls/s   (medians of 20 alternating rounds; the handle ahead in "
              f"{wins}/20)")
        print(f"RATIO throughput one handle/8 raw clients ({name} server) = {ratio:.3f}x  (target >= 1.0x) "
              f"{verdict(ratio >= 1.0)}")


if __name__ == "__main__":
    sys.exit(main())
