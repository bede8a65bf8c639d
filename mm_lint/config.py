"""``[tool.mm-lint]`` in pyproject.toml: allowed hosts, excludes, per-file ignores, the torch floor."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from mm_lint.errors import LINT_CONFIG_INVALID, LintConfigInvalid, ModelManagerError

CONFIG_INVALID = LINT_CONFIG_INVALID

# A pattern starting with "/" matches at the project root only: a package's own `dist/` or
# `build/` module folder (mmengine/dist) is code, the root's are build outputs.
DEFAULT_EXCLUDES = (".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "__pycache__", "/build",
                    "/dist", ".eggs", "*.egg-info", "node_modules", ".mm-cache", ".corpus", ".corpus2")

_KEYS = {"allowed-hosts", "exclude", "extend-exclude", "per-file-ignores", "ignore", "select", "cache-dir",
         "torch-min-version"}
#: torch.load defaults to weights_only=True from this version on
TORCH_SAFE_LOAD = (2, 6)


@dataclass(frozen=True, slots=True)
class Options:
    """What the checks need from the configuration."""

    allowed_hosts: frozenset[str] = frozenset()
    torch_before_2_6: bool = False  # torch.load without weights_only unpickles (MM204)


def _version(text: str) -> tuple[int, ...] | None:
    parts = text.strip().lstrip("v=>~ ").split(".")
    try:
        return tuple(int(p) for p in parts[:2])
    except ValueError:
        return None


@dataclass(frozen=True)
class Config:
    root: Path = field(default_factory=Path.cwd)
    allowed_hosts: frozenset[str] = frozenset()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    ignore: tuple[str, ...] = ()
    select: tuple[str, ...] = ("MM",)
    cache_dir: str = ".mm-cache"
    torch_min_version: str = ""  # '' = assume torch >= 2.6
    source: str = ""  # the file the settings came from ('' = defaults)

    def options(self) -> Options:
        floor = _version(self.torch_min_version) if self.torch_min_version else None
        return Options(self.allowed_hosts, floor is not None and floor < TORCH_SAFE_LOAD)

    def fingerprint(self) -> str:
        data = [sorted(self.allowed_hosts), list(self.exclude), [list(p) for p in self.per_file_ignores],
                list(self.ignore), list(self.select), self.torch_min_version]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]

    def excluded(self, rel: str) -> bool:
        rel = rel.replace(os.sep, "/")
        parts = rel.split("/")
        for pat in self.exclude:
            if pat.startswith("/"):  # anchored at the root
                anchored = pat.strip("/")
                if fnmatch.fnmatchcase(rel, anchored) or fnmatch.fnmatchcase(rel, anchored + "/*") or (
                        "/" not in anchored and fnmatch.fnmatchcase(parts[0], anchored)):
                    return True
            elif "/" in pat.strip("/"):
                if fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(rel, pat.rstrip("/") + "/*"):
                    return True
            elif any(fnmatch.fnmatchcase(p, pat.strip("/")) for p in parts):
                return True
        return False

    def wanted(self, rel: str, code: str, via: str = "") -> bool:
        """Whether a finding with ``code`` in file ``rel`` (relative to root) is reported; ``via``
        (an MM604's inner code) is ignored wherever it is, but not selected."""
        if not any(code.startswith(s) for s in self.select):
            return False
        return not self.ignored(rel, code) and not (via and self.ignored(rel, via))

    def ignored(self, rel: str, code: str) -> bool:
        if any(code.startswith(i) for i in self.ignore):
            return True
        rel = rel.replace(os.sep, "/")
        for pat, codes in self.per_file_ignores:
            matches = fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(os.path.basename(rel), pat)
            if matches and any(code.startswith(c) for c in codes):
                return True
        return False


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
    if "torch-min-version" in table:
        value = table["torch-min-version"]
        if not isinstance(value, str) or _version(value) is None:
            raise _invalid(pyproject, "torch-min-version", f"`torch-min-version` must be a version string "
                           f"like \"2.4\", got {value!r}")
        kwargs["torch_min_version"] = value
    if "per-file-ignores" in table:
        pfi = table["per-file-ignores"]
        if not isinstance(pfi, dict):
            raise _invalid(pyproject, "per-file-ignores", "must be a table of glob = [codes]")
        kwargs["per_file_ignores"] = tuple(
            (pat, _str_list(pyproject, f"per-file-ignores.{pat}", codes)) for pat, codes in pfi.items())
    return Config(**kwargs)  # type: ignore[arg-type]
