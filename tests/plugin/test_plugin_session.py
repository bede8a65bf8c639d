"""Before the first test: a refusal swallowed in a session hook or at collection fails the run,
and the header names the plugins that loaded before pytest_mm (so before the guard was on).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from plugin_runs import run_pytest

SESSION_CONFTEST = '''
import urllib.request

def pytest_sessionstart(session):
    try:
        urllib.request.urlopen("http://192.0.2.7/", timeout=1)
    except Exception:
        pass
'''

SWALLOWS_AT_IMPORT = '''
import urllib.request
try:
    urllib.request.urlopen("http://192.0.2.8/", timeout=1)
except Exception:
    pass

def test_passes():
    pass
'''

RAISES_AT_IMPORT = '''
import urllib.request
urllib.request.urlopen("http://192.0.2.6/", timeout=1)
'''


def test_a_refusal_swallowed_before_the_first_test_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(SESSION_CONFTEST)
    (tmp_path / "test_swallows.py").write_text(SWALLOWS_AT_IMPORT)
    (tmp_path / "test_raises.py").write_text(RAISES_AT_IMPORT)
    run = run_pytest(tmp_path, "-p", "pytest_mm", "--continue-on-collection-errors", netns=True)
    assert run.proc.returncode == 1, run.out
    assert "1 passed" in run.proc.stdout
    outside = run.section("mm network guard: outside any test")
    assert "before the first test: a refusal was swallowed: connect to 192.0.2.7:80 from urllib.request" in outside
    assert "192.0.2.8:80 from urllib.request" in outside
    # A refusal that failed collection is visible as that error already: not listed again.
    assert "192.0.2.6" not in outside and "192.0.2.6" in run.out


def test_a_refusal_outside_tests_fails_a_run_that_passes_otherwise(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(SESSION_CONFTEST)
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    run = run_pytest(tmp_path, "-p", "pytest_mm", netns=True)
    assert run.proc.returncode == 1 and "1 passed" in run.proc.stdout, run.out
    assert "192.0.2.7:80 from urllib.request" in run.section("outside any test")


PLUGIN = "import os\nLOADED = os.getpid()\n"


def _plugin_folder(tmp_path: Path) -> Path:
    (tmp_path / "earlyplug.py").write_text(PLUGIN)
    (tmp_path / "lateplug.py").write_text(PLUGIN)
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    return tmp_path


def _header(out: str) -> str:
    return "\n".join(line for line in out.splitlines() if line.startswith("mm network guard: loaded before"))


@pytest.mark.parametrize("how", ["-p", "addopts", "PYTEST_PLUGINS", "entry point"])
def test_plugins_loaded_before_pytest_mm_are_named_in_the_header(tmp_path: Path, how: str) -> None:
    folder = _plugin_folder(tmp_path)
    args: list[str] = []
    env: dict[str, str] = {}
    extra = str(folder)
    if how == "-p":
        args = ["-p", "earlyplug", "-p", "pytest_mm", "-p", "lateplug"]
    elif how == "addopts":
        (folder / "pytest.ini").write_text("[pytest]\naddopts = -p earlyplug\n")
        args = ["-p", "pytest_mm", "-p", "lateplug"]
    elif how == "PYTEST_PLUGINS":
        env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTEST_PLUGINS": "earlyplug,pytest_mm,lateplug"}
    else:  # a distribution found first on sys.path: its entry point loads before pytest_mm's
        dist = folder / "site" / "early_fake-0.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: early-fake\nVersion: 0\n")
        (dist / "entry_points.txt").write_text("[pytest11]\nearlyplug = earlyplug\n")
        extra = f"{folder / 'site'}:{folder}"
    run = run_pytest(folder, *args, "test_one.py", extra_path=extra, env=env, autoload=True)
    assert run.proc.returncode == 0, run.out
    header = _header(run.proc.stdout)
    assert "earlyplug" in header and "lateplug" not in header, run.proc.stdout[:3000]
    assert "-p pytest_mm" in header


def test_nothing_is_named_when_pytest_mm_loads_first_and_later_plugins_import_guarded(tmp_path: Path) -> None:
    folder = _plugin_folder(tmp_path)
    (folder / "lateplug.py").write_text(textwrap.dedent('''
        from model_manager import guard
        ON_AT_IMPORT = guard.is_active()
    '''))
    (folder / "test_one.py").write_text(textwrap.dedent('''
        import lateplug
        def test_one():
            assert lateplug.ON_AT_IMPORT
    '''))
    run = run_pytest(folder, "-p", "pytest_mm", "-p", "lateplug", "test_one.py", extra_path=str(folder),
                     autoload=True)
    assert run.proc.returncode == 0, run.out
    assert "mm network guard: on" in run.proc.stdout
    assert _header(run.proc.stdout) == ""


def test_what_escapes_the_guard_from_the_start_is_in_the_header(tmp_path: Path) -> None:
    (tmp_path / "cplug.py").write_text("import uvloop\n")
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    run = run_pytest(tmp_path, "-p", "cplug", "-p", "pytest_mm", "test_one.py", extra_path=str(tmp_path))
    assert run.proc.returncode == 0, run.out  # not blamed on a test, not a failure of the run
    assert "loaded before pytest_mm, NOT guarded while they loaded: cplug" in run.proc.stdout
    assert "mm network guard: escaping it from the start: uvloop" in run.proc.stdout
