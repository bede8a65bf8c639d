"""``flake8 --select MM``: the same findings through flake8, with its own ``# noqa``."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

SRC = (
    "import torch\n"
    "from transformers import AutoModel\n"
    "\n"
    "m = AutoModel.from_pretrained('bert-base-uncased')\n"
    "w = torch.load('w.pt', weights_only=False)  # noqa: MM204\n"
    "v = torch.load('v.pt', weights_only=False)  # noqa\n"
    "u = torch.load('u.pt', weights_only=False)  # noqa: E501\n"
    "import requests\n"
    "requests.get('http://triton.lan:8000/v2')\n"
)


def _registered() -> bool:
    return any(ep.value.startswith("mm_lint.") for ep in entry_points(group="flake8.extension"))


def flake8(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = ["[flake8]", "max-line-length = 200"]
    if not _registered():  # before pyproject declares the entry point: flake8's local-plugins
        root = Path(__file__).resolve().parents[2]
        cfg += ["[flake8:local-plugins]", "extension =", "    MM = mm_lint.flake8_plugin:Plugin",
                f"paths = {root}"]
    (tmp_path / ".flake8").write_text("\n".join(cfg) + "\n")
    return subprocess.run([sys.executable, "-m", "flake8", "--jobs", "1", *args, "sample.py"],
                          cwd=tmp_path, capture_output=True, text=True)


def test_flake8_select_mm_and_noqa(tmp_path: Path) -> None:
    (tmp_path / "sample.py").write_text(SRC)
    res = flake8(tmp_path, "--select", "MM")
    assert res.returncode == 1, res.stderr
    got = [(ln.split(":")[1], ln.split(" ")[1]) for ln in res.stdout.splitlines()]
    assert got == [("4", "MM101"), ("7", "MM204"), ("9", "MM401")]
    assert "sample.py:4:5: MM101 `transformers.AutoModel.from_pretrained`" in res.stdout


def test_flake8_agrees_with_mm_lint(tmp_path: Path) -> None:
    from mm_lint.engine import check_bytes

    (tmp_path / "sample.py").write_text(SRC)
    res = flake8(tmp_path, "--select", "MM", "--disable-noqa")
    got = [tuple(ln.split(" ", 2)[:2]) for ln in res.stdout.splitlines()]
    src = SRC.replace("# noqa", "# no-qa").encode()
    want = [(f"sample.py:{f.line}:{f.col}:", f.code) for f in check_bytes(src, "sample.py")]
    assert got == want


def test_flake8_allowed_hosts_option(tmp_path: Path) -> None:
    (tmp_path / "sample.py").write_text(SRC)
    res = flake8(tmp_path, "--select", "MM4", "--mm-allowed-hosts", "triton.lan")
    assert res.returncode == 0, res.stdout + res.stderr


def test_flake8_syntax_error_is_flake8s_e999(tmp_path: Path) -> None:
    (tmp_path / "sample.py").write_text("import torch\ndef f(:\n")
    res = flake8(tmp_path, "--select", "MM,E999")
    assert "E999" in res.stdout and "Traceback" not in res.stderr
