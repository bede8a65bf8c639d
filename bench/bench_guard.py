"""Cost of the network guard on hot paths, as ratios against a baseline taken in the same run.

    python bench/bench_guard.py
    python bench/bench_guard.py --instructions   # also: instructions per open(), by valgrind

``--instructions`` counts the instructions one ``open()`` costs in each configuration under
valgrind's callgrind (the difference between a run of 12,000 and one of 2,000 calls): the same on
every run, where the wall-time figure on a shared machine moves by more than the budget.

1. loopback ``connect_ex`` to a listening port on 127.0.0.1 (a full TCP handshake, what
   a client of a local Triton does; about 7 us here without the guard); budget: guard on
   <= 1.2x no guard. Also printed, for information: a closed port (the kernel refuses at
   once, about 3 us), where the same absolute cost is a larger share.
2. an unrelated audited event, ``open()`` of a file; budget: <= 0.5 us added per call.

Where that time goes: a third configuration installs an audit hook that does nothing. What it
adds is CPython's price for calling any Python audit hook on every audited event (the event's
name and argument tuple are built, the hook is looked up and called): no hook can be cheaper.
The guard's own share is the difference between its hook and that one; ``sys._getframe`` (an
audited event that costs almost nothing itself) shows it most precisely.

The audit hook cannot be removed once installed, so each configuration is measured in
its own child process; children alternate (off, empty, on, off, empty, on ...) so drift hits
all alike, and the best round of each is compared.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _util import instructions

ROOT = Path(__file__).resolve().parents[1]
BATCH = 1000
ROUNDS = 20
CHILDREN = 10  # per configuration: process-to-process variance is the main noise
MODES = ("off", "empty", "on")


def _connect_batch(port: int, server: socket.socket | None) -> float:
    socks = [socket.socket() for _ in range(BATCH)]
    connect_ex = socket.socket.connect_ex
    start = time.perf_counter()
    for s in socks:
        connect_ex(s, ("127.0.0.1", port))
    per_call = (time.perf_counter() - start) / BATCH * 1e6
    for s in socks:
        s.close()
    while server is not None:  # empty the accept queue (untimed) so the backlog never fills
        try:
            server.accept()[0].close()
        except BlockingIOError:
            break
    return per_call


def _empty_hook(event: str, args: tuple[object, ...]) -> None:
    pass


def _measure(mode: str, port: int, path: str) -> dict[str, float]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4096)
    server.setblocking(False)
    if mode == "on":
        sys.path.insert(0, str(ROOT))
        from model_manager import guard
        guard.activate(["localhost:8000"])
    elif mode == "empty":
        sys.addaudithook(_empty_hook)
    getframe = sys._getframe
    best_connect = best_closed = best_open = best_frame = float("inf")
    for _ in range(ROUNDS):
        best_connect = min(best_connect, _connect_batch(server.getsockname()[1], server))
        best_closed = min(best_closed, _connect_batch(port, None))
        start = time.perf_counter()
        for _ in range(BATCH):
            open(path, "rb").close()
        best_open = min(best_open, (time.perf_counter() - start) / BATCH * 1e6)
        start = time.perf_counter()
        for _ in range(BATCH):
            getframe()
        best_frame = min(best_frame, (time.perf_counter() - start) / BATCH * 1e6)
    server.close()
    return {"connect_ex": best_connect, "connect_ex_closed": best_closed, "open": best_open, "frame": best_frame}


def _opens(mode: str, calls: int, path: str) -> None:
    if mode == "on":
        sys.path.insert(0, str(ROOT))
        from model_manager import guard
        guard.activate(["localhost:8000"])
    elif mode == "empty":
        sys.addaudithook(_empty_hook)
    for _ in range(calls):
        open(path, "rb").close()


def _instructions_per_open(path: str) -> dict[str, int]:
    def count(mode: str, calls: int) -> int:
        return instructions([sys.executable, __file__, "--opens", mode, str(calls), path])

    return {mode: (count(mode, 12000) - count(mode, 2000)) // 10000 for mode in MODES}


def main() -> int:
    if "--instructions" in sys.argv[1:] and shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind on PATH")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again once the with-block ends
    with tempfile.NamedTemporaryFile(delete=False) as f:
        path = f.name
    best: dict[str, dict[str, float]] = {mode: {} for mode in MODES}
    try:
        for _ in range(CHILDREN):
            for mode in MODES:
                out = subprocess.run([sys.executable, __file__, "--child", mode, str(port), path],
                                     capture_output=True, text=True, check=True).stdout
                for key, value in json.loads(out).items():
                    best[mode][key] = min(best[mode].get(key, float("inf")), value)
        counted = _instructions_per_open(path) if "--instructions" in sys.argv[1:] else None
    finally:
        os.unlink(path)
    off, empty, on = best["off"], best["empty"], best["on"]
    ratio = on["connect_ex"] / off["connect_ex"]
    added = on["open"] - off["open"]
    print(f"connect_ex loopback, listening port: no guard {off['connect_ex']:.2f} us, guard on "
          f"{on['connect_ex']:.2f} us -> ratio {ratio:.3f} (budget 1.20)")
    closed = on["connect_ex_closed"] / off["connect_ex_closed"]
    print(f"connect_ex loopback, closed port (information): no guard {off['connect_ex_closed']:.2f} us, "
          f"guard on {on['connect_ex_closed']:.2f} us -> ratio {closed:.3f}, "
          f"added {on['connect_ex_closed'] - off['connect_ex_closed']:+.2f} us")
    print(f"open() of a file:    no guard {off['open']:.3f} us, guard on {on['open']:.3f} us"
          f" -> added {added:+.3f} us (budget 0.500)")
    for key, what in (("open", "open()"), ("frame", "sys._getframe()")):
        floor, total = empty[key] - off[key], on[key] - off[key]
        print(f"  where it goes, {what}: any Python audit hook (one that does nothing) adds {floor:+.3f} us, "
              f"the guard's hook {total:+.3f} us -> the guard's own share {total - floor:+.3f} us")
    if counted is not None:
        print(f"instructions per open() (callgrind): no guard {counted['off']:,}, any Python audit hook "
              f"{counted['empty'] - counted['off']:+,}, the guard {counted['on'] - counted['off']:+,} -> the guard's "
              f"own share {counted['on'] - counted['empty']:+,}")
    ok = ratio <= 1.2 and added <= 0.5
    print("PASS" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--opens"]:
        _opens(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        sys.exit(0)
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_measure(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
        sys.exit(0)
    sys.exit(main())
