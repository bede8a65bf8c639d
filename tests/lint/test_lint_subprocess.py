"""MM501 reads a command as the runtime guard does: one interpreter (model_manager.guard.argv) for both."""

from __future__ import annotations

import pytest

from mm_lint.engine import check_bytes
from model_manager.guard.argv import scan_argv


def findings(src: str) -> list[str]:
    return [f.message for f in check_bytes(src.encode(), "example.py", frozenset()) if f.code == "MM501"]


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
