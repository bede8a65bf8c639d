"""MM501 reads a command as the runtime guard does: one interpreter (model_manager.guard.argv) for both."""

from __future__ import annotations

import pytest

from mm_lint.engine import check_bytes
from model_manager.guard.argv import scan_argv


def findings(src: str) -> list[str]:
    return [f.message for f in check_bytes(src.encode(), "example.py") if f.code == "MM501"]


@pytest.mark.parametrize(("argv", "program"), [
    (["timeout", "5", "curl", "https://x.org/w.bin"], "curl"),
    (["nice", "-n", "5", "wget", "https://x.org/w.bin"], "wget"),
    (["env", "A=1", "curl", "https://x.org/w.bin"], "curl"),
    (["python3", "-m", "pip", "install", "x"], "pip"),
    (["git", "-C", "repo", "clone", "https://github.com/x/y"], "git clone"),
])
def test_wrapped_download_programs_are_found_as_the_guard_finds_them(argv: list[str], program: str) -> None:
    [message] = findings(f"import subprocess\nsubprocess.run({argv!r})\n")
    assert f"runs `{program}`" in message
    finding = scan_argv(argv)
    assert finding is not None and finding.program == program  # the guard's own verdict


@pytest.mark.parametrize("src", [
    'import os\nos.system("c=curl; $c https://x.org/w.bin")',
    'import subprocess\nsubprocess.run(["bash", "-lc", "curl -s https://x.org"])',
    'import subprocess\nsubprocess.run(["git", "-c", "alias.x=!curl https://x.org", "x"])',
    'import subprocess\nsubprocess.run(["perl", "-MIO::Socket::INET", "-e", "1"])',
])
def test_shell_tricks_are_found(src: str) -> None:
    assert findings(src)


@pytest.mark.parametrize("src", [
    'import subprocess\nsubprocess.run(["timeout", "5", "ls", "-l"])',
    'import subprocess\nsubprocess.run(["git", "-C", "repo", "status"])',
    'import subprocess\nsubprocess.run(["python3", "-m", "pytest"])',
    'import subprocess\nsubprocess.run(["nice", "-n", "5", url])',        # unreadable: not judged
    'import subprocess\nsubprocess.run(["git", sub, "x"])',
    'import subprocess\nsubprocess.run([*cmd, "curl"])',
])
def test_local_or_unreadable_commands_are_not_findings(src: str) -> None:
    assert findings(src) == []


@pytest.mark.parametrize("src", [
    'import subprocess\nsubprocess.run(f"git clone {url} {dest}", shell=True)',
    'import os\nos.system("git lfs pull --include {}".format(pattern))',
    'import os\nos.system("wget -q %s" % url)',
    'import subprocess\nsubprocess.run(" ".join(["git", "clone", url]), shell=True)',
    'import subprocess\ndef get(url):\n    cmd = ["curl", "-LO", url]\n    subprocess.run(cmd)',
])
def test_commands_built_from_text_are_read_up_to_the_unknown_part(src: str) -> None:
    assert findings(src)


# The runtime guard's interpreter (model_manager/guard/argv.py) decides for both.
@pytest.mark.parametrize("argv", [["git", "remote", "-v"], ["git", "remote", "get-url", "origin"],
                                  ["git", "lfs", "version"], ["git", "lfs", "env"], ["git", "submodule", "status"]])
def test_read_only_git_is_not_a_finding(argv: list[str]) -> None:
    assert findings(f"import subprocess\nsubprocess.run({argv!r})\n") == []
    assert scan_argv(argv) is None


@pytest.mark.parametrize("argv", [["git", "remote", "update"], ["git", "lfs", "pull"], ["git", "lfs", "fetch"],
                                  ["git", "submodule", "update", "--init"], ["git", "remote", "show", "origin"],
                                  ["git", "remote", "add", "-f", "o", "u"], ["git", "remote", "-v", "update"],
                                  ["git", "lfs", "migrate", "export"], ["git", "submodule", "--quiet", "update"]])
def test_git_that_reaches_a_remote_stays_a_finding(argv: list[str]) -> None:
    assert findings(f"import subprocess\nsubprocess.run({argv!r})\n")
