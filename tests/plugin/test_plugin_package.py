"""The shape of the pytest_mm package: every hook reachable from the ``pytest_mm`` module the
entry point names, no run state in module globals, a light import, documentation in step."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from plugin_runs import ROOT, inner_env, run_pytest

PACKAGE = ROOT / "pytest_mm"
#: the plugin's own modules (fixture families such as a fake Triton server have their own rules)
PLUGIN_MODULES = ["__init__.py", "plugin.py", "network.py", "_state.py", "_forks.py", "_watch.py"]
NAMES = ["--mm-allow-hosts", "mm_allow_hosts", "mm_allow_network", "mm_expect_refusal"]


def test_the_plugin_module_holds_every_hook_and_fixture_and_the_package_none() -> None:
    import pytest_mm
    import pytest_mm.network
    import pytest_mm.plugin

    hooks = {name for name in vars(pytest_mm.plugin) if name.startswith("pytest_") and name != "pytest_plugins"}
    assert hooks, "the hooks are in pytest_mm.plugin"
    assert not {name for name in vars(pytest_mm) if name.startswith("pytest_") and name != "pytest_plugins"}
    assert pytest_mm.pytest_plugins == ("pytest_mm.plugin",)  # what `-p pytest_mm` loads
    assert pytest_mm.plugin.mm_expect_refusal is pytest_mm.network.mm_expect_refusal
    assert pytest_mm.plugin.mm_allow_network is pytest_mm.network.mm_allow_network
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'\[project\.entry-points\.pytest11\]\s*pytest_mm = "pytest_mm.plugin"', pyproject)


def test_the_fake_triton_server_imports_without_pytest() -> None:
    """The demo and worker processes use the fake server where pytest is not installed."""
    code = ("import sys\nclass Block:\n    def find_spec(self, name, *a):\n"
            "        if name == 'pytest' or name.startswith(('pytest.', '_pytest')):\n"
            "            raise ImportError('blocked: ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from pytest_mm.fake_triton import FakeModel, FakeTriton\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def _constant(node: ast.expr | None) -> bool:
    """A module-level value that holds no run state."""
    if node is None or isinstance(node, (ast.Constant, ast.Name, ast.Attribute, ast.Lambda)):
        return True
    if isinstance(node, ast.Tuple):
        return all(_constant(e) for e in node.elts)
    if isinstance(node, ast.Call):  # StashKey[...](), frozenset({...}), TypeVar(...)
        func = node.func.value if isinstance(node.func, ast.Subscript) else node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name in {"StashKey", "frozenset"} and all(_constant(a) or isinstance(a, ast.Set) for a in node.args)
    return isinstance(node, ast.Subscript)  # type aliases


@pytest.mark.parametrize("module", PLUGIN_MODULES)
def test_no_run_state_in_module_globals(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Global):
            pytest.fail(f"{module}: global statement")
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and ast.unparse(node).split()[0] != "__all__":
            assert _constant(node.value), f"{module}:{node.lineno}: module-level state"
    for node in ast.walk(tree):
        assert not isinstance(node, ast.Global), f"{module}:{node.lineno}: global statement"


def _fixtures(module: str) -> set[str]:
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
            and any("fixture" in ast.unparse(d) for d in node.decorator_list)}


def test_each_fixture_family_declares_its_fixtures() -> None:
    from pytest_mm.plugin import FAMILIES

    for module, fixtures in FAMILIES:
        assert _fixtures(module) == set(fixtures), module


def test_a_family_is_registered_when_a_test_asks_for_its_fixture(tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text(textwrap.dedent('''
        def test_fake_triton(fake_triton):
            assert fake_triton.url.startswith("127.0.0.1:")
    '''))
    run = run_pytest(tmp_path, "-p", "pytest_mm", "test_one.py")
    assert run.proc.returncode == 0, run.out


def test_importing_pytest_mm_loads_nothing_heavy() -> None:
    probe = "import sys, json, pytest_mm; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True,
                         env=inner_env()).stdout
    loaded = set(json.loads(out))
    assert not loaded & {"numpy", "onnxruntime", "tritonclient", "yaml", "pydantic", "pytest_mm.fake_triton"}


@pytest.mark.parametrize("where", ["docs/pytest-mm.md", "pytest_mm/__init__.py"])
def test_the_guide_names_every_option_marker_and_fixture(where: str) -> None:
    text = (ROOT / where).read_text(encoding="utf-8")
    assert not [name for name in NAMES if name not in text]


def test_the_guard_loads_past_the_assertion_rewriter_which_stays_for_test_modules(tmp_path: Path) -> None:
    # With the entry point loaded, pytest marks every module of this distribution for rewriting.
    (tmp_path / "test_one.py").write_text(textwrap.dedent('''
        import sys

        def test_loaders():
            rewriter = "_pytest.assertion.rewrite"
            assert any(type(f).__module__ == rewriter for f in sys.meta_path)
            for name in ("model_manager.guard", "model_manager.guard.checks", "model_manager.policy"):
                assert type(sys.modules[name].__spec__.loader).__module__ != rewriter, name
            assert type(sys.modules["test_one"].__spec__.loader).__module__ == rewriter

        def test_asserts_still_rewritten():
            assert [1, 2] == [1, 3]
    '''))
    run = run_pytest(tmp_path, "-p", "pytest_mm", "test_one.py", autoload=True)
    assert run.outcome("test_loaders") == "passed", run.out
    assert run.outcome("test_asserts_still_rewritten") == "failure"
    assert "At index 1 diff" in run.text("test_asserts_still_rewritten"), run.out
