"""The command-line reader shared by the guard and the linter (model_manager.guard.argv).

Pure functions: nothing here starts a process. The same commands run for real, in the private
namespace, in test_guard_netns.py.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

import pytest

from model_manager.guard.argv import scan_argv, scan_shell
from model_manager.guard.children import scan_event

REACHES = [
    ("curl -s http://x", "curl"), ("timeout 5 curl x", "curl"), ("timeout -s KILL 5 curl x", "curl"),
    ("nice -n 5 wget x", "wget"), ("nice -5 wget x", "wget"), ("env A=1 curl x", "curl"),
    ("env -i PATH=/x curl x", "curl"), ("env -S 'curl -s' x", "curl"), ("python3 -m pip install x", "pip"),
    ("python -mpip install x", "pip"), ("python3 -I -m pip x", "pip"), ("python -W ignore -m pip", "pip"),
    ("/usr/bin/python3.11 -m uv pip", "uv"), ("git -C repo clone u", "git clone"), ("git fetch", "git fetch"),
    ("git -c alias.x=!curl x", "curl"), ("git x", "git x"), ("git -c alias.x=clone x", "git x"),
    ("git -c core.fsmonitor=curl status", "curl"), ("git lfs pull", "git lfs"), ("pip3.11 install x", "pip3.11"),
    ("busybox wget x", "wget"), ("bash -lc 'curl x'", "curl"), ("sh -ec 'wget x'", "wget"),
    ("bash -o pipefail -c 'curl x'", "curl"), ("find . -exec curl {} ;", "curl"), ("perl -MIO::Socket -e 1", "perl"),
    ("perl -e 'use IO::Socket; 1'", "perl"), ("python -c 'import socket'", "python"),
    ("python -c 'import json, socket'", "python"), ("python -c 'from urllib.request import urlopen'", "python"),
    ("ruby -rsocket -e 1", "ruby"), ("node -e \"require('net').connect(80, 'h')\"", "node"),
    ("xargs -n1 curl", "curl"), ("sudo -u root wget x", "wget"),
    ("openssl s_client -connect x:443", "openssl s_client"),
    ("gawk 'BEGIN{ s=\"/inet/tcp/0/h/80\" }'", "gawk"), ("flock /tmp/l curl x", "curl"),
    ("flock -c 'curl x' /tmp/l", "curl"), ("su -c 'wget x' root", "wget"), ("watch -n 1 curl x", "curl"),
    ("command curl x", "curl"), ("stdbuf -oL curl x", "curl"), ("chroot /x wget y", "wget"),
    ("taskset 0x1 curl", "curl"), ("parallel curl ::: a b", "curl"), ("ionice -c 3 nice wget x", "wget"),
    ("$c x", "$c"),
]
LOCAL = ["git status", "git --no-pager log", "bash -xc 'echo hi'", "bash script.sh", "find . -name x",
         "perl -ne 'print'", "python -c 'print(1)'", "python -c 'import os as o, sys'", "ls -l curl",
         "openssl dgst x", "awk '{print}'", "command -v curl", "python3", "python script.py -c socket",
         "python -c 'import sys; import model_manager.guard; bad = {\"requests\"}'"]


@pytest.mark.parametrize(("command", "program"), REACHES)
def test_commands_that_reach_the_network(command: str, program: str) -> None:
    finding = scan_argv(shlex.split(command))
    assert finding is not None and finding.program == program, finding


@pytest.mark.parametrize("command", LOCAL)
def test_local_commands(command: str) -> None:
    assert scan_argv(shlex.split(command)) is None


@pytest.mark.parametrize(("command", "program"), [
    ("cd /tmp && wget -q x | tar x", "wget"), ("echo hi; $(curl x)", "curl"), ("c=curl; $c x", "$c"),
    ("${CURL:-curl} x", "${CURL:-curl}"), ("exec 3<>/dev/tcp/1.2.3.4/80", "/dev/tcp"), ("bash <<< 'curl x'", "curl"),
    ("bash <<EOF\ncurl x\nEOF\n", "curl"), ("echo `wget x`", "wget"), ("f() { curl x; }", "curl"),
    ("for u in a b; do curl $u; done", "curl"), ("if true; then wget x; fi", "wget"), ("eval \"$x\"", "$x"),
    ("eval curl x", "curl"), ("diff <(curl a) b", "curl"), ("A=1 B=2 git clone x", "git clone"),
    ("time -p curl x", "curl"), ("sh -c \"echo a; curl x\"", "curl"), ("alias c=curl", "curl"),
    ("python3 - <<EOF\nimport urllib.request\nEOF\n", "python"), ("env LANG=C /usr/bin/curl x", "curl"),
])
def test_shell_commands_that_reach_the_network(command: str, program: str) -> None:
    finding = scan_shell(command)
    assert finding is not None and finding.program == program, finding


@pytest.mark.parametrize("command", ["cat <<EOF\ncurl x\nEOF\n", "grep wget notes.txt", "echo 'curl x'",
                                     "ls 2>&1 >/dev/null", "echo ok # curl", "echo $HOME", "x=$(echo hi)"])
def test_local_shell_commands(command: str) -> None:
    assert scan_shell(command) is None


@pytest.mark.parametrize(("event", "args", "program"), [
    ("subprocess.Popen", ("/usr/bin/curl", ["ls", "http://x"], None, None), "curl"),  # executable= wins
    ("subprocess.Popen", ("/bin/busybox", ["wget", "http://x"], None, None), "wget"),  # argv[0] picks the applet
    ("os.exec", (b"/usr/bin/curl", [b"curl", b"x"], None), "curl"),
    ("os.posix_spawn", ("/usr/bin/env", ["env", "-S", "curl -s", "x"], None), "curl"),
    ("os.system", ("c=wget; $c x",), "$c"),
    ("subprocess.Popen", (sys.executable, [sys.executable, "-c", "print(1)"], None, None), None),
])
def test_process_events(event: str, args: tuple[Any, ...], program: str | None) -> None:
    finding = scan_event(event, args)
    assert (finding.program if finding else None) == program


def test_words_the_caller_cannot_read_are_never_judged() -> None:
    assert scan_argv([None, "x"]) is None
    assert scan_argv(["git", None, "x"]) is None
    assert scan_argv(["python", "-c", None]) is None
    assert scan_argv(["timeout", "5", None]) is None
    assert scan_argv(["curl", None]) is not None  # the program itself is readable
