"""Cost of the network guard's kernel mode (Landlock + seccomp), measured in one run.

    python bench/bench_kernel_mode.py

1. activation: ``apply_kernel_mode([port])`` timed inside a fresh child process (it is
   irreversible, so each sample is a new process); the median of CHILDREN children. Budget: < 20 ms.
   The import of ``model_manager.guard.kernel`` is printed too, for information.
2. loopback ``connect_ex`` to a listening port on 127.0.0.1 (in the allowed ports), kernel
   mode on vs off; children alternate (off, on, off, on ...) and the best round of each is
   compared. Budget: on <= 1.10x off.
3. ``open()``+``close()`` of a file, which the seccomp filter sees like every syscall: on vs off.
   Budget: on <= 1.10x off.

Only loopback is touched. On a kernel without Landlock networking the script says so and exits 0.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _util import verdict  # noqa: E402  (bench/ is sys.path[0] when the script runs)

BATCH = 1000
ROUNDS = 10
CHILDREN = 11


def _connect_batch(server: socket.socket) -> float:
    socks = [socket.socket() for _ in range(BATCH)]
    connect_ex = socket.socket.connect_ex
    address = server.getsockname()
    start = time.perf_counter()
    for s in socks:
        connect_ex(s, address)
    per_call = (time.perf_counter() - start) / BATCH * 1e6
    for s in socks:
        s.close()
    while True:  # empty the accept queue (untimed) so the backlog never fills
        try:
            server.accept()[0].close()
        except BlockingIOError:
            return per_call


def _child(on: bool, path: str) -> dict[str, float]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4096)
    server.setblocking(False)
    out: dict[str, float] = {}
    if on:
        start = time.perf_counter()
        from model_manager.guard import kernel
        out["import_ms"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        kernel.apply_kernel_mode([server.getsockname()[1]])
        out["activation_ms"] = (time.perf_counter() - start) * 1e3
    best_connect = best_open = float("inf")
    for _ in range(ROUNDS):
        best_connect = min(best_connect, _connect_batch(server))
        start = time.perf_counter()
        for _ in range(BATCH):
            open(path, "rb").close()
        best_open = min(best_open, (time.perf_counter() - start) / BATCH * 1e6)
    out.update(connect_ex=best_connect, open=best_open)
    return out


def main() -> int:
    from model_manager.errors import KernelGuardUnavailable
    from model_manager.guard import kernel
    try:
        kernel._arch_for(os.uname().machine, 8)
        kernel._check_abi(*kernel._landlock_abi())
    except KernelGuardUnavailable as exc:
        print(f"SKIP kernel mode is not available here: {exc}")
        return 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MM_NETWORK_GUARD", "MM_GUARD"))}
    with tempfile.NamedTemporaryFile(delete=False) as f:
        path = f.name
    samples: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    try:
        for _ in range(CHILDREN):
            for mode in ("off", "on"):
                out = subprocess.run([sys.executable, __file__, "--child", mode, path], capture_output=True,
                                     text=True, check=True, env=env).stdout
                samples[mode].append(json.loads(out))
    finally:
        os.unlink(path)
    off = {key: min(s[key] for s in samples["off"]) for key in ("connect_ex", "open")}
    on = {key: min(s[key] for s in samples["on"]) for key in ("connect_ex", "open")}
    activation = statistics.median(s["activation_ms"] for s in samples["on"])
    worst = max(s["activation_ms"] for s in samples["on"])
    imported = statistics.median(s["import_ms"] for s in samples["on"])
    connect, opened = on["connect_ex"] / off["connect_ex"], on["open"] / off["open"]
    print(f"kernel: {os.uname().release}, Landlock ABI {kernel._landlock_abi()[0]}, {os.uname().machine}")
    print(f"RATIO kernel-mode activation = {activation:.2f} ms median of {CHILDREN} fresh children "
          f"(worst {worst:.2f} ms; import of model_manager.guard.kernel {imported:.1f} ms, information) "
          f"(target < 20 ms) "
          f"{verdict(activation < 20)}")
    print(f"RATIO connect_ex loopback, kernel mode on / off = {connect:.3f}x ({on['connect_ex']:.2f} us vs "
          f"{off['connect_ex']:.2f} us) (target <= 1.10x) {verdict(connect <= 1.10)}")
    print(f"RATIO open()+close() of a file, kernel mode on / off = {opened:.3f}x ({on['open']:.2f} us vs "
          f"{off['open']:.2f} us) (target <= 1.10x) {verdict(opened <= 1.10)}")
    return 0 if activation < 20 and connect <= 1.10 and opened <= 1.10 else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_child(sys.argv[2] == "on", sys.argv[3])))
        sys.exit(0)
    sys.exit(main())
