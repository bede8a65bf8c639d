"""Inner pytest runs for the plugin's tests (imported by the test modules here): a fresh
interpreter each, junit results parsed.

A run that aims at anything but loopback goes through ``run_in_netns`` (a private network
namespace with only loopback); the others touch loopback or nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from helpers.netns import run_in_netns

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class InnerRun:
    proc: subprocess.CompletedProcess[str]
    results: dict[str, tuple[str, str]]   # test name -> (passed|failure|error|skipped, text)

    @property
    def out(self) -> str:
        return self.proc.stdout + self.proc.stderr

    def outcome(self, name: str) -> str:
        return self.results[name][0]

    def text(self, name: str) -> str:
        return self.results[name][1]

    def section(self, title: str) -> str:
        """The lines of one terminal-summary section ('' if absent)."""
        lines = self.proc.stdout.splitlines()
        start = next((i for i, line in enumerate(lines) if title in line and line.startswith("=")), None)
        if start is None:
            return ""
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("=")), len(lines))
        return "\n".join(lines[start + 1:end])


def _junit(path: Path) -> dict[str, tuple[str, str]]:
    """test name -> (outcome, text), where a teardown error wins over a pass."""
    results: dict[str, tuple[str, str]] = {}
    if not path.exists():
        return results
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        outcome, text = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, text = child.tag, (child.get("message") or "") + (child.text or "")
        if results.get(name, ("passed",))[0] == "passed":
            results[name] = (outcome, text)
    return results


def inner_env(extra_path: str = "", **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, str(ROOT)) if p)
    # The outer run's guard exports its switch and allow-list: the inner run starts clean.
    for name in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
                 "MM_NETWORK_GUARD", "MM_NETWORK_GUARD_ALLOW"):
        env.pop(name, None)
    env.update(extra)
    return env


def run_pytest(folder: Path, *args: str, netns: bool = False, extra_path: str = "", autoload: bool = False,
               env: dict[str, str] | None = None, timeout: float = 120) -> InnerRun:
    """pytest in a subprocess (in a private network namespace with ``netns=True``), junit parsed.

    Entry-point plugins are not loaded unless ``autoload=True`` (name plugins with ``-p``): the
    installed ones (hypothesis above all) cost a second a run and are not under test here.
    """
    xml = folder / "out.xml"
    xml.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={xml}",
            "-o", "junit_family=xunit1", "-rA", *args]
    full_env = inner_env(extra_path, **(env or {}))
    if not autoload:
        full_env.setdefault("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    if netns:
        proc = run_in_netns(argv, env=full_env, cwd=folder, timeout=timeout)
    else:
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=folder, env=full_env, timeout=timeout)
    return InnerRun(proc, _junit(xml))
