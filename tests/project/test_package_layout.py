"""model_manager is organised by role, and the roles depend on each other in one direction only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "model_manager"
#: each unit may import only the units listed (lazy imports inside functions count too)
ALLOWED = {
    "errors": set(), "version": set(), "policy": set(), "runtimes": {"errors", "mapping", "artifacts"},
    "artifacts": {"errors"},
    "mapping": {"errors", "artifacts"},
    "provenance": {"errors", "mapping"},
    "guard": {"errors", "policy"},
    "manager": {"errors", "mapping", "artifacts", "provenance", "guard", "runtimes"},
    "cli": {"errors", "version", "mapping", "artifacts", "provenance", "manager"},
    "<package>": {"errors", "version", "manager", "mapping"},
}


def _unit(module: str) -> str:
    parts = module.split(".")
    unit = parts[1] if len(parts) > 1 else "<package>"
    return "errors" if unit == "error_codes" else unit  # the table of codes is part of the errors unit


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("model_manager"):
            found |= {f"{node.module}.{alias.name}" if node.module == "model_manager" else node.module
                      for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("model_manager")}
    return found


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def test_the_roles_are_subpackages() -> None:
    for role in ("mapping", "artifacts", "provenance", "guard", "runtimes"):
        assert (PACKAGE / role / "__init__.py").is_file(), role
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == {"__init__", "errors", "error_codes", "policy", "manager", "cli", "version"}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_the_roles_below_it(path: Path) -> None:
    unit = _unit(_module(path))
    for imported in _imports(path):
        target = _unit(imported)
        assert target == unit or target in ALLOWED[unit], f"{_module(path)} imports {imported}"


def test_the_allowed_graph_has_no_cycle() -> None:
    state: dict[str, int] = {}

    def visit(unit: str) -> None:
        assert state.get(unit) != 1, f"cycle through {unit}"
        if state.get(unit) == 2:
            return
        state[unit] = 1
        for target in ALLOWED[unit]:
            visit(target)
        state[unit] = 2

    for unit in ALLOWED:
        visit(unit)


@pytest.mark.parametrize("path", sorted([*ROOT.glob("model_manager/**/*.py"), *ROOT.glob("mm_lint/*.py"),
                                         *ROOT.glob("pytest_mm/*.py")]), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_about_400_lines(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 420, path
