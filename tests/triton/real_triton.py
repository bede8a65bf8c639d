"""A real Triton Inference Server (the ``tritonserver`` 2.51 bundled in the ``nvidia-pytriton`` wheel) on CPU.

It listens on 127.0.0.1 only (HTTP; gRPC and metrics off). Two things make its Python backend work
from a virtualenv: the stub links the interpreter's shared libpython (``LD_LIBRARY_PATH`` gets
``sysconfig``'s LIBDIR), and each model's ``EXECUTION_ENV_PATH`` names this virtualenv, so the stub
imports the virtualenv's numpy rather than whatever the base interpreter has (a numpy 2 there breaks
FP16 and BYTES tensors in the stub). Any failure to start raises: the contract suite never skips.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

from contract_models import ContractModel, write_repository


class RealTritonUnavailable(RuntimeError):
    """The real server could not be started: the contract suite fails with this message."""


def _pytriton_root() -> Path:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise RealTritonUnavailable("nvidia-pytriton is not installed (it is a dev dependency: "
                                    "pip install -e '.[dev]')")
    return Path(next(iter(spec.submodule_search_locations)))


def _backends(root: Path, tmp: Path) -> Path:
    dist = root / "tritonserver"
    python = tmp / "backends" / "python"
    python.mkdir(parents=True)
    stub = dist / "python_backend_stubs" / f"{sys.version_info[0]}.{sys.version_info[1]}" / \
        "triton_python_backend_stub"
    for source in (dist / "backends" / "python" / "libtriton_python.so",
                   dist / "backends" / "python" / "triton_python_backend_utils.py", stub):
        if not source.is_file():
            raise RealTritonUnavailable(f"{source} is missing from the nvidia-pytriton wheel")
        (python / source.name).symlink_to(source)
    return python.parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(port: int) -> bool:
    return ready(f"127.0.0.1:{port}")


def ready(url: str) -> bool:
    """Whether the Triton at ``host:port`` answers ready (the real one, or the fake)."""
    host, port = url.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=1)
    try:
        conn.request("GET", "/v2/health/ready")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@contextlib.contextmanager
def real_triton(tmp: Path, *, timeout: float = 60.0, models: list[ContractModel] | None = None) -> Iterator[str]:
    """Start the real server on the contract models (all by default); yield its ``127.0.0.1:PORT``; stop it."""
    root = _pytriton_root()
    binary = root / "tritonserver" / "bin" / "tritonserver"
    if not binary.is_file():
        raise RealTritonUnavailable(f"{binary} is missing from the nvidia-pytriton wheel")
    if not (Path(sys.prefix) / "bin" / "activate").is_file():
        raise RealTritonUnavailable(f"{sys.prefix} has no bin/activate: run the suite from a virtualenv")
    repo = tmp / "models"
    write_repository(repo, sys.prefix, models)
    libs = [str(sysconfig.get_config_var("LIBDIR")), str(root.parent / "nvidia_pytriton.libs")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MM_NETWORK_GUARD")}  # no guard in the stubs
    env["LD_LIBRARY_PATH"] = ":".join([*libs, os.environ.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    port = _free_port()
    argv = [str(binary), "--model-repository", str(repo), "--backend-directory", str(_backends(root, tmp)),
            "--http-address", "127.0.0.1", "--http-port", str(port), "--allow-grpc", "false",
            "--allow-metrics", "false", "--allow-gpu-metrics", "false", "--allow-cpu-metrics", "false",
            "--exit-timeout-secs", "1"]
    log_path = tmp / "tritonserver.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    try:
        deadline = time.monotonic() + timeout
        while not _ready(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_bytes()[-4000:].decode("utf-8", "replace")
                raise RealTritonUnavailable(f"tritonserver did not become ready (exit {proc.poll()}); "
                                            f"log {log_path}:\n{tail}")
            time.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
