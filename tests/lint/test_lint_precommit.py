"""The real ``pre-commit try-repo`` against a sample repository, fully offline.

The hook repository is a committed copy of this project's package sources and
``.pre-commit-hooks.yaml`` (try-repo needs a git repository with a commit;
this checkout's own history is not required). pre-commit runs inside a private
network namespace with only loopback; its hook environments install from the
wheelhouse that ``make`` fills next to the virtualenv (PIP_NO_INDEX), so the
test never reaches a package index.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.netns import run_in_netns

ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
           "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def _hook_repo(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "NEEDS_PYPROJECT.txt")
    for pkg in ("model_manager", "mm_lint", "pytest_mm"):
        if (ROOT / pkg).is_dir():
            shutil.copytree(ROOT / pkg, dest / pkg, ignore=ignore)
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "hooks")
    return dest


def test_pre_commit_try_repo(tmp_path: Path) -> None:
    hooks = _hook_repo(tmp_path / "hooks")
    sample = tmp_path / "sample"
    (sample / "src").mkdir(parents=True)
    (sample / "docs").mkdir()
    (sample / "src" / "bad.py").write_text(
        "import torch\nfrom transformers import AutoModel\nAutoModel.from_pretrained('bert-base-uncased')\n")
    (sample / "src" / "ok.py").write_text("import torch\ntorch.load('/m/w.pt', weights_only=True)\n")
    (sample / "profile.yaml").write_text(
        "components:\n  c:\n    r:\n      model_name: enc-a\n      model_version: '1'\n"
        "    s:\n      model_name: enc-b\n      model_version: '2'\n")
    (sample / "docs" / "MODEL_LICENSES.md").write_text(
        "| model_name | model_version | licence | source |\n|---|---|---|---|\n| enc-a | 1 | MIT | https://x |\n")
    git(sample, "init", "-q")
    git(sample, "add", "-A")
    wheelhouse = Path(os.environ.get("MM_WHEELHOUSE", Path(sys.prefix) / "wheelhouse"))
    if not any(wheelhouse.glob("pydantic-*.whl")):
        pytest.fail(f"no wheelhouse at {wheelhouse}: run `make test` (its setup fills it) or set MM_WHEELHOUSE")
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(tmp_path / "pc-home"), "PRE_COMMIT_COLOR": "never",
           "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("VIRTUAL_ENV", None)

    def try_repo(*hook: str) -> subprocess.CompletedProcess[str]:
        # try-repo builds fresh hook envs on every call (a temporary store), so call it twice only.
        return run_in_netns([sys.executable, "-m", "pre_commit", "try-repo", str(hooks), *hook, "--all-files",
                             "--verbose"], cwd=sample, env=env, timeout=600)

    res = try_repo()
    out = res.stdout
    assert res.returncode == 1, out + res.stderr
    assert "src/bad.py:3:1: MM101" in out and "src/ok.py" not in out
    assert "profile.yaml:7:1: MM901 model 'enc-b'" in out
    assert "files were modified by this hook" in out  # mm-lint-fix
    assert "from_pretrained('bert-base-uncased', local_files_only=True)" in (sample / "src" / "bad.py").read_text()

    (sample / "docs" / "MODEL_LICENSES.md").write_text(
        "| model_name | model_version | licence | source |\n|---|---|---|---|\n"
        "| enc-a | 1 | MIT | https://x |\n| enc-b | 2 | Apache-2.0 | https://y |\n")
    git(sample, "add", "-A")  # the fixed bad.py and the completed inventory
    res = try_repo("mm-licenses")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "mm-licenses (every profile model has a licence row)" in res.stdout and "Passed" in res.stdout


@pytest.mark.parametrize("hook", ["mm-lint", "mm-lint-fix", "mm-licenses"])
def test_hook_definitions(hook: str) -> None:
    import yaml

    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks[hook]["language"] == "python"
    assert hooks[hook]["entry"].split()[0] == "mm-lint"
