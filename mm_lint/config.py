"""``[tool.mm-lint]`` in pyproject.toml: allowed hosts, excludes, per-file ignores."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from model_manager.error_codes import LINT_CONFIG_INVALID
from model_manager.errors import LintConfigInvalid, ModelManagerError

CONFIG_INVALID = LINT_CONFIG_INVALID

DEFAULT_EXCLUDES = (".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "__pycache__", "build",
                    "dist", ".eggs", "*.egg-info", "node_modules", ".mm-cache", ".corpus")

_KEYS = {"allowed-hosts", "exclude", "extend-exclude", "per-file-ignores", "ignore", "select", "cache-dir"}


@dataclass(frozen=True)
class Config:
    root: Path = field(default_factory=Path.cwd)
    allowed_hosts: frozenset[str] = frozenset()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    ignore: tuple[str, ...] = ()
    select: tuple[str, ...] = ("MM",)
    cache_dir: str = ".mm-cache"
    source: str = ""  # the file the settings came from ('' = defaults)

    def fingerprint(self) -> str:
        data = [sorted(self.allowed_hosts), list(self.exclude), [list(p) for p in self.per_file_ignores],
                list(self.ignore), list(self.select)]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]

    def excluded(self, rel: str) -> bool:
        parts = rel.replace(os.sep, "/").split("/")
        for pat in self.exclude:
            if "/" in pat.strip("/"):
                if fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(rel, pat.rstrip("/") + "/*"):
                    return True
            elif any(fnmatch.fnmatchcase(p, pat.strip("/")) for p in parts):
                return True
        return False

    def wanted(self, rel: str, code: str) -> bool:
        """Whether a finding with ``code`` in file ``rel`` (relative to root) is reported."""
        if not any(code.startswith(s) for s in self.select):
            return False
        if any(code.startswith(i) for i in self.ignore):
            return False
        rel = rel.replace(os.sep, "/")
        for pat, codes in self.per_file_ignores:
            matches = fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(os.path.basename(rel), pat)
            if matches and any(code.startswith(c) for c in codes):
                return False
        return True


def _invalid(path: Path, key: str, message: str) -> ModelManagerError:
    return LintConfigInvalid(f"{path}: [tool.mm-lint] {message}", field=key,
        hint="See docs/mm-lint.md#configuration for the keys and their types.")


def _str_list(path: Path, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(path, key, f"`{key}` must be a list of strings, got {value!r}")
    return tuple(value)


def find_pyproject(start: Path) -> Path | None:
    start = start.resolve()
    for d in (start, *start.parents):
        candidate = d / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load(pyproject: Path | None = None, start: Path | None = None) -> Config:
    """Read ``[tool.mm-lint]``; a missing file or table means the defaults."""
    if pyproject is None:
        pyproject = find_pyproject(start or Path.cwd())
        if pyproject is None:
            return Config(root=(start or Path.cwd()).resolve())
    import tomllib

    try:
        with open(pyproject, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LintConfigInvalid(f"{pyproject}: cannot read: {exc}",
                                hint="Fix the TOML syntax of pyproject.toml.") from exc
    table = data.get("tool", {}).get("mm-lint", {})
    root = pyproject.parent.resolve()
    if not isinstance(table, dict):
        raise _invalid(pyproject, "tool.mm-lint", "must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise _invalid(pyproject, unknown[0], f"unknown key(s) {unknown}; known: {sorted(_KEYS)}")
    kwargs: dict[str, object] = {"root": root, "source": str(pyproject)}
    if "allowed-hosts" in table:
        hosts = _str_list(pyproject, "allowed-hosts", table["allowed-hosts"])
        kwargs["allowed_hosts"] = frozenset(h.lower() for h in hosts)
    if "exclude" in table:
        kwargs["exclude"] = _str_list(pyproject, "exclude", table["exclude"])
    if "extend-exclude" in table:
        base = kwargs.get("exclude", DEFAULT_EXCLUDES)
        kwargs["exclude"] = tuple(base) + _str_list(pyproject, "extend-exclude",  # type: ignore[arg-type]
                                                    table["extend-exclude"])
    for key in ("ignore", "select"):
        if key in table:
            kwargs[key] = _str_list(pyproject, key, table[key])
    if "cache-dir" in table:
        if not isinstance(table["cache-dir"], str):
            raise _invalid(pyproject, "cache-dir", "`cache-dir` must be a string")
        kwargs["cache_dir"] = table["cache-dir"]
    if "per-file-ignores" in table:
        pfi = table["per-file-ignores"]
        if not isinstance(pfi, dict):
            raise _invalid(pyproject, "per-file-ignores", "must be a table of glob = [codes]")
        kwargs["per_file_ignores"] = tuple(
            (pat, _str_list(pyproject, f"per-file-ignores.{pat}", codes)) for pat, codes in pfi.items())
    return Config(**kwargs)  # type: ignore[arg-type]
