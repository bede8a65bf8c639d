"""The standalone checker: formats, exit codes, config, cache, --fix and --diff."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mm_lint import cache as cache_mod
from mm_lint.cli import main
from mm_lint.errors import ModelManagerError

BAD = (
    "import torch\n"
    "from transformers import AutoModel\n"
    "\n"
    "m = AutoModel.from_pretrained('bert-base-uncased')\n"
    "w = AutoModel.from_pretrained(\n"
    "    'org/w',\n"
    "    revision='abc',\n"
    ")\n"
    "x = AutoModel.from_pretrained('org/m', local_files_only=False)\n"
    "import requests\n"
    "requests.get('https://example.com')\n"
    "t = torch.load('t.pt', weights_only=False)\n"
)
CODES = ["MM101", "MM101", "MM101", "MM401", "MM204"]
GOOD = "import torch\nw = torch.load('/m/w.pt', weights_only=True)\n"


@pytest.fixture()
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'sample'\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "bad.py").write_text(BAD)
    (tmp_path / "pkg" / "good.py").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_text_output_and_exit_codes(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "pkg")
    assert rc == 1
    lines = out.splitlines()
    assert [ln.split(": ", 1)[0] for ln in lines] == [
        "pkg/bad.py:4:5", "pkg/bad.py:5:5", "pkg/bad.py:9:5", "pkg/bad.py:11:1", "pkg/bad.py:12:5"]
    assert [ln.split(": ", 1)[1][:5] for ln in lines] == CODES
    assert run(capsys, "pkg/good.py")[0] == 0
    assert run(capsys, "pkg", "--exit-zero")[0] == 0


@pytest.mark.parametrize("fmt", ["json", "sarif", "github"])
def test_formats(proj: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    rc, out, _ = run(capsys, "pkg", "--format", fmt)
    assert rc == 1
    if fmt == "json":
        data = json.loads(out)
        assert [d["code"] for d in data] == CODES
        assert data[0]["fixable"] is True and data[2]["fixable"] is False
    elif fmt == "sarif":
        data = json.loads(out)
        assert data["version"] == "2.1.0"
        run_ = data["runs"][0]
        ids = [r["id"] for r in run_["tool"]["driver"]["rules"]]
        assert "MM101" in ids and "MM001" in ids
        res = run_["results"][0]
        assert res["ruleId"] == "MM101" and ids[res["ruleIndex"]] == "MM101"
        assert res["locations"][0]["physicalLocation"]["region"] == {"startLine": 4, "startColumn": 5}
    else:
        first = out.splitlines()[0]
        assert first.startswith("::error file=pkg/bad.py,line=4,col=5,title=MM101::MM101 ")


def test_fix_rewrites_only_safe_calls(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "pkg", "--fix")
    text = (proj / "pkg" / "bad.py").read_text()
    assert "AutoModel.from_pretrained('bert-base-uncased', local_files_only=True)" in text
    assert "    revision='abc',\n    local_files_only=True,\n)" in text
    assert "local_files_only=False)" in text  # an explicit False is the author's: reported, not changed
    assert rc == 1 and "fixed 1 file" in err
    assert [ln.split(": ", 1)[1][:5] for ln in out.splitlines()] == ["MM101", "MM401", "MM204"]
    # the fixed file parses and is stable under a second --fix
    compile(text, "bad.py", "exec")
    run(capsys, "pkg", "--fix")
    assert (proj / "pkg" / "bad.py").read_text() == text


def test_diff_changes_nothing(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "pkg", "--diff")
    assert rc == 1
    assert out.startswith("--- a/pkg/bad.py\n+++ b/pkg/bad.py\n")
    assert "+m = AutoModel.from_pretrained('bert-base-uncased', local_files_only=True)" in out
    assert (proj / "pkg" / "bad.py").read_text() == BAD
    assert "MM401" in err and "pkg/bad.py:4:" not in err
    assert run(capsys, "pkg/good.py", "--diff")[0] == 0


def test_config_hosts_ignores_excludes(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (proj / "pyproject.toml").write_text(
        "[tool.mm-lint]\n"
        "allowed-hosts = ['example.com']\n"
        "extend-exclude = ['vendor']\n"
        "[tool.mm-lint.per-file-ignores]\n"
        "'pkg/bad.py' = ['MM2']\n")
    (proj / "vendor").mkdir()
    (proj / "vendor" / "x.py").write_text(BAD)
    rc, out, _ = run(capsys, ".")
    assert rc == 1
    assert [ln.split(": ", 1)[1][:5] for ln in out.splitlines()] == ["MM101", "MM101", "MM101"]
    assert "vendor" not in out
    assert run(capsys, ".", "--select", "MM4")[0] == 0
    assert run(capsys, ".", "--ignore", "MM1")[0] == 0


def test_bad_config_is_a_coded_error(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (proj / "pyproject.toml").write_text("[tool.mm-lint]\nallowed-host = ['x']\n")
    rc, _, err = run(capsys, "pkg")
    assert rc == 2 and "lint_config_invalid" in err and "allowed-host" in err
    (proj / "pyproject.toml").write_text("[tool.mm-lint]\nallowed-hosts = 'x'\n")
    from mm_lint import config

    with pytest.raises(ModelManagerError) as exc:
        config.load(proj / "pyproject.toml")
    assert exc.value.code == "lint_config_invalid" and exc.value.field == "allowed-hosts"


def test_cache_skips_unchanged_files(proj: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    first = run(capsys, "pkg", "--statistics")
    assert "parsed=2" in first[2] and (proj / ".mm-cache" / "mm-lint-cache.json").exists()
    from mm_lint import engine

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("parsed a cached file")

    monkeypatch.setattr(engine, "check_bytes", boom)
    second = run(capsys, "pkg", "--statistics")
    assert second[:2] == first[:2] and "cached=2" in second[2]
    monkeypatch.undo()
    monkeypatch.chdir(proj)
    (proj / "pkg" / "good.py").write_text(GOOD + "torch.load('x', weights_only=False)\n")
    third = run(capsys, "pkg", "--statistics")
    assert "cached=1" in third[2] and "parsed=1" in third[2] and third[1].count("MM204") == 2
    assert cache_mod.Cache(proj / ".mm-cache", "other-key").entries == {}


def test_syntax_error_and_undecodable_files_do_not_crash(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (proj / "pkg" / "broken.py").write_text("import torch\ndef f(:\n")
    (proj / "pkg" / "binary.py").write_bytes(b"import torch\n\x00\xff\xfe")
    rc, out, _ = run(capsys, "pkg", "--no-cache")
    assert rc == 1
    assert "pkg/broken.py:2:" in out and "MM001" in out
    assert out.count("pkg/binary.py") == 1


def test_module_entry_point_and_rules_listing(proj: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    res = subprocess.run([sys.executable, "-m", "mm_lint", "pkg", "--no-cache"], capture_output=True,
                         text=True, env=env)
    assert res.returncode == 1 and res.stdout.count("MM") >= 4
    res = subprocess.run([sys.executable, "-m", "mm_lint", "rules"], capture_output=True, text=True, env=env)
    assert res.returncode == 0 and "MM101" in res.stdout


def test_worker_processes_give_the_same_findings(proj: Path) -> None:
    from mm_lint import config
    from mm_lint.cli import PARALLEL_MIN_FILES, lint_paths, resolve_jobs

    for i in range(6):
        (proj / "pkg" / f"m{i}.py").write_text(BAD if i % 2 else GOOD)
    cfg = config.load(start=proj)
    serial, s1 = lint_paths(["pkg"], cfg, use_cache=False, jobs=1)
    parallel, s2 = lint_paths(["pkg"], cfg, use_cache=False, jobs=2)
    assert serial == parallel and len(serial) == 20
    assert (s1["jobs"], s2["jobs"]) == (1, 2)
    assert resolve_jobs("auto", PARALLEL_MIN_FILES - 1) == 1


def test_cache_sees_an_edit_that_keeps_size_and_mtime(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = proj / "pkg" / "good.py"
    run(capsys, "pkg", "--statistics")
    before = os.stat(target)
    text = target.read_text()
    edited = text.replace("weights_only=True", "weights_only=0   ")
    assert edited != text and len(edited) == len(text)
    target.write_text(edited)  # same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime: only ctime tells
    _rc, out, err = run(capsys, "pkg", "--statistics")
    assert "cached=1" in err and "parsed=1" in err
    assert "good.py" in out
