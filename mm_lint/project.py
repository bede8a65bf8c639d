"""The project index: what each file defines and imports, across files.

The first pass over the files records, per file, its module name, the wrappers it defines
(wrappers.py) and its import bindings. From those the index knows every wrapper and every
re-export that leads to one or to the catalogue (``pkg/__init__.py: from .hub import fetch``,
``from transformers import AutoModel``). Only files that import such a name are checked a
second time, knowing the index; it is cached with the rest (cache.py).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache

from mm_lint import rules, signals
from mm_lint.wrappers import Wrapper

#: a file's entry in the index: module, wrapper rows, import bindings (alias -> target)
Summary = dict[str, object]
# Calls of these are MM602 findings on the first look already, and wrappers of them are found there.
_BY_NAME = frozenset(signals.DOWNLOAD_FUNCTION_NAMES)
_STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


@lru_cache(maxsize=8192)
def _package_of_dir(directory: str) -> str:
    """Dotted package name of a folder ('' when it is not a package)."""
    if not os.path.isfile(os.path.join(directory, "__init__.py")):
        return ""
    parent = os.path.dirname(directory)
    name = os.path.basename(directory)
    if not name.isidentifier():
        return ""
    above = _package_of_dir(parent) if parent != directory else ""
    return f"{above}.{name}" if above else name


def module_of(path: str) -> tuple[str, str]:
    """(module, package) of a file, from the ``__init__.py`` files above it."""
    if not path.endswith((".py", ".pyi")):
        return "", ""
    directory, base = os.path.split(os.path.abspath(path))
    package = _package_of_dir(directory)
    stem = base.rsplit(".", 1)[0]
    if stem == "__init__":
        return package, package
    if not stem.isidentifier():
        return "", package
    return (f"{package}.{stem}" if package else stem), package


def summary(module: str, wrappers: dict[str, Wrapper], imports: dict[str, str],
            top: list[list[object]] | None = None) -> Summary:
    kept = {alias: target for alias, target in imports.items()
            if target.partition(".")[0] not in _STDLIB and not target.startswith(".")}
    entry: Summary = {"m": module, "w": [w.row() for w in wrappers.values()], "i": kept}
    if top:
        entry["t"] = top
    return entry


def outline(tree: ast.Module) -> list[list[object]]:
    """[first line, last line, kind, name] of each top-level statement: i an import (or a try/if
    holding one), a an assignment, f a def, o anything else (a class: its methods are not called
    by name). What a second look keeps of the file (narrowed)."""
    out: list[list[object]] = []
    kinds = _KINDS
    for stmt in tree.body:
        t = type(stmt)
        kind = kinds.get(t, "o")
        start, name = stmt.lineno, ""
        if kind == "f" or t is ast.ClassDef:
            start = min([start, *(d.lineno for d in stmt.decorator_list)])  # type: ignore[attr-defined]
            name = stmt.name if kind == "f" else ""  # type: ignore[attr-defined]
        elif kind == "t" and not any(type(s) in _IMPORTS for s in stmt.body):  # type: ignore[attr-defined]
            kind = "o"
        out.append([start, stmt.end_lineno, "i" if kind == "t" else kind, name])
    return out


_IMPORTS = (ast.Import, ast.ImportFrom)
_KINDS = {ast.Import: "i", ast.ImportFrom: "i", ast.Try: "t", ast.If: "t", ast.Assign: "a", ast.AnnAssign: "a",
          ast.FunctionDef: "f", ast.AsyncFunctionDef: "f"}


def _lines(data: bytes, needles: Needles) -> list[int]:
    hits: list[int] = []
    for name, _times in needles:
        pos = data.find(name)
        while pos != -1:
            hits.append(pos)
            pos = data.find(name, pos + len(name))
    out: list[int] = []
    line, last = 1, 0
    for pos in sorted(hits):
        line += data.count(b"\n", last, pos)
        last = pos
        out.append(line)
    return out


def covered(data: bytes, needles: Needles, spans: list[tuple[int, int]]) -> bool:
    """Every line holding a needle lies in ``spans``."""
    return all(any(s <= n <= e for s, e in spans) for n in _lines(data, needles))


def narrowed(data: bytes, top: list[list[object]], needles: Needles) -> tuple[bytes, list[tuple[int, int]]] | None:
    """The file with its imports, assignments and the statements holding a needle kept, every other
    line blank (lines and columns stay where they are), and the spans looked at again. None when
    that keeps most of the file: parsing it whole costs as much."""
    lines = _lines(data, needles)
    # imports and short assignments (the constants a call's arguments may name) stay; a long
    # one (timm's table of a thousand configs) only when it holds a needle
    spans = [(int(s), int(e)) for s, e, kind, _ in top  # type: ignore[call-overload]
             if kind == "i" or (kind == "a" and e - s < 4)  # type: ignore[operator]
             or any(s <= n <= e for n in lines)]  # type: ignore[operator]
    text = data.split(b"\n")
    if sum(e - s + 1 for s, e in spans) * 2 > len(text):
        return None
    pieces, line = [], 1
    if data.startswith(b"#"):  # a coding cookie is a comment of the first two lines
        spans = [(1, 2), *spans]
    for first, e in sorted(spans):
        if e < line:
            continue
        s = max(first, line)
        pieces.append(b"\n" * (s - line))
        pieces.append(b"\n".join(text[s - 1:e]))
        pieces.append(b"\n")
        line = e + 1
    pieces.append(b"\n" * (len(text) - line))
    return b"".join(pieces), spans

_FROM = re.compile(rb"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)", re.M)
_IMPORT = re.compile(rb"^[ \t]*import[ \t]+([^\n#;]+)", re.M)


def scanned(path: str, data: bytes) -> Summary | None:
    """The index entry of a file the prefilter kept from the parser: its imports, read from the text
    (a file with no trigger word can still call a project wrapper)."""
    if b"import" not in data:
        return None
    module, package = module_of(path)
    imports: dict[str, str] = {}
    for m in _FROM.finditer(data):
        source = m.group(1).decode("ascii", "replace")
        level = len(source) - len(source.lstrip("."))
        base = _absolute(package, level, source[level:]) if level else source
        for item in m.group(2).decode("utf-8", "replace").strip("()").replace("\\", " ").split(","):
            name, _, alias = item.strip().partition(" as ")
            if name.strip().isidentifier() and base:
                imports[(alias or name).strip()] = f"{base}.{name.strip()}"
    for m in _IMPORT.finditer(data):
        for item in m.group(1).decode("utf-8", "replace").split(","):
            name, _, alias = item.strip().partition(" as ")
            if alias.strip():
                imports[alias.strip()] = name.strip()
            elif name.strip():
                imports[name.strip().partition(".")[0]] = name.strip().partition(".")[0]
    return summary(module, {}, imports)


def _absolute(package: str, level: int, module: str) -> str:
    parts = package.split(".") if package else []
    if level - 1 >= len(parts) or not parts:
        return ""
    base = ".".join(parts[:len(parts) - (level - 1)])
    return f"{base}.{module}" if module else base


@dataclass(frozen=True)
class Project:
    wrappers: dict[str, Wrapper] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)  # re-export -> what it finally names
    rests: dict[str, tuple[str, ...]] = field(default_factory=dict)  # qualname prefix -> rests to a wrapper
    children: dict[str, frozenset[str]] = field(default_factory=dict)  # module/class -> its wrappers' names
    fingerprint: str = ""

    @property
    def wanted(self) -> frozenset[str]:
        """Import targets that make a file worth a second look."""
        return frozenset(self.children) | frozenset(self.wrappers) | frozenset(self.exports)

    def needles(self, imports: dict[str, str], seen: frozenset[str] = frozenset()) -> Needles:
        """(text, count) pairs one of which a file importing ``imports`` must hold for a second look
        to find anything: a call of an imported wrapper (``alias(``), or of one in an imported module
        or class (``alias.wrapper(``). Targets in ``seen`` (looked
        for already) and the wrappers named like download functions (MM602 finds those) do not count."""
        out: Needles = []
        for alias, target in imports.items():
            if target in seen:
                continue
            final = self.exports.get(target, target)
            if final in self.wrappers and final.rpartition(".")[2] not in _BY_NAME:
                out.append((f"{alias}(".encode(), 1))
            elif target in self.exports and final not in self.children:  # a catalogue name re-exported
                out.append((alias.encode(), 2))
            out += [(f"{alias}.{name}(".encode(), 1) for name in self.children.get(final, ())
                    if name.rpartition(".")[2] not in _BY_NAME]
        return out


Needles = list[tuple[bytes, int]]


def worth_a_look(data: bytes, needles: Needles) -> bool:
    return any(data.count(name) >= times for name, times in needles)


def _chase(exports: dict[str, str], q: str) -> str:
    for _ in range(8):
        nxt = exports.get(q)
        if nxt is None or nxt == q:
            return q
        q = nxt
    return q


@dataclass(frozen=True)
class Bindings:
    """The import bindings of every file, as re-exports (the same in every round of a run)."""

    raw: dict[str, str]  # module.alias -> what it is bound to
    catalogue: dict[str, str]  # the ones that lead to a catalogue name from a name that is not one
    finals: dict[str, list[str]]  # what a binding finally names -> the bindings (module.alias)
    wrappers: dict[str, Wrapper]  # those the files define (their first look)
    namespaces: dict[str, str]  # top package -> its name inside a namespace package ("audio" -> "pyannote.audio")

    def full(self, key: str) -> str | None:
        """``audio.utils.x`` as the project imports it, ``pyannote.audio.utils.x``, when they differ."""
        top, dot, rest = key.partition(".")
        outer = self.namespaces.get(top)
        return f"{outer}{dot}{rest}" if outer else None


def _namespaces(summaries: dict[str, Summary]) -> dict[str, str]:
    """A namespace package (PEP 420: no ``__init__.py``) hides its name from module_of. The folder
    above a top package is one when the project imports through it (``pyannote.audio.x`` for the
    package ``audio`` in ``.../pyannote/audio/``)."""
    above: dict[str, str] = {}
    for path, entry in summaries.items():
        module = str(entry.get("m") or "")
        top = module.partition(".")[0]
        if not top or top in above or "." not in module:
            continue
        parts = module.count(".") + (1 if os.path.basename(path) == "__init__.py" else 0)
        top_dir = os.path.dirname(path)
        for _ in range(parts - 1):
            top_dir = os.path.dirname(top_dir)
        outer = os.path.basename(os.path.dirname(top_dir))
        if outer.isidentifier() and not os.path.exists(os.path.join(os.path.dirname(top_dir), "__init__.py")):
            above[top] = outer
    out: dict[str, str] = {}
    for entry in summaries.values():
        imports = entry.get("i")
        for target in imports.values() if isinstance(imports, dict) else ():
            head, _, rest = target.partition(".")
            second = rest.partition(".")[0]
            if above.get(second) == head and head != second:  # src/easyocr/easyocr/: a folder, not a package
                out[second] = f"{head}.{second}"
    return out


def bindings(summaries: dict[str, Summary]) -> Bindings:
    namespaces = _namespaces(summaries)
    raw: dict[str, str] = {}
    for entry in summaries.values():
        module = entry.get("m")
        imports = entry.get("i")
        if module and isinstance(imports, dict):
            top, dot, rest = str(module).partition(".")
            outer = f"{namespaces[top]}{dot}{rest}" if top in namespaces else None
            for alias, target in imports.items():
                if f"{module}.{alias}" != target:
                    raw[f"{module}.{alias}"] = target
                    if outer:
                        raw[f"{outer}.{alias}"] = target
    catalogue = {}
    finals: dict[str, list[str]] = {}
    for key, target in raw.items():
        final = _chase(raw, target) if target in raw else target
        finals.setdefault(final, []).append(key)
        if "." in target and _catalogued(final) and not _catalogued(key):
            catalogue[key] = final
    partial = Bindings(raw, catalogue, finals, {}, namespaces)
    rows: list[list[object]] = [r for e in summaries.values() for r in e.get("w") or []]  # type: ignore[attr-defined]
    return Bindings(raw, catalogue, finals, _wrappers(partial, rows), namespaces)


def _wrappers(base: Bindings, rows: list[list[object]]) -> dict[str, Wrapper]:
    m = rules.matcher()
    out: dict[str, Wrapper] = {}
    for row in rows:
        w = Wrapper.from_row(row)
        # a catalogued name is judged by the catalogue already; a method is reached from another
        # file only through an instance the checker cannot type (``self.x()`` stays in its file)
        if not w.method and not m.match_all(w.key):
            out[w.key] = w
            full = base.full(w.key)
            if full:
                out[full] = w
    return out


def build(summaries: dict[str, Summary], derived: dict[str, list[list[object]]] | None = None,
          base: Bindings | None = None) -> Project:
    """The index: every file's wrappers (and those a second look found, ``derived``) and re-exports."""
    base = base or bindings(summaries)
    wrappers = {**base.wrappers, **_wrappers(base, [r for found in (derived or {}).values() for r in found])}
    if not wrappers and not base.catalogue:
        return Project()
    holders = {k.rpartition(".")[0] for k in wrappers}  # modules (and classes) holding a wrapper
    exports = dict(base.catalogue)
    for final in [*wrappers, *holders]:
        for key in base.finals.get(final, ()):
            # a catalogued public name (``datasets.load_dataset``) stays the catalogue's to judge
            if not _catalogued(key):
                exports[key] = final
    children: dict[str, set[str]] = {}  # every module or class above a wrapper -> the names below it
    for key in [*wrappers, *exports]:
        parts = key.split(".")
        for i in range(1, len(parts)):
            children.setdefault(".".join(parts[:i]), set()).add(".".join(parts[i:]))
    rests: dict[str, set[str]] = {}
    for key in [*wrappers, *(k for k, final in exports.items() if final in wrappers)]:
        parts = key.split(".")
        for i in range(1, len(parts)):
            rests.setdefault(".".join(parts[:i]), set()).add(".".join(parts[i:]))
        rests.setdefault(key, set()).add("")
    data = json.dumps([sorted(w.row() for w in wrappers.values()), sorted(exports.items())], default=str)
    return Project(wrappers, exports, {k: tuple(sorted(v)) for k, v in rests.items()},
                   {k: frozenset(v) for k, v in children.items()}, hashlib.sha256(data.encode()).hexdigest()[:16])


@lru_cache(maxsize=65536)
def _catalogued(q: str) -> bool:
    """``q`` names a catalogue entry point, a module or class on the way to one, or a class whose
    ``from_pretrained`` is one (its library's top-level class names, not any of its submodules)."""
    m = rules.matcher()
    if q in rules.name_prefixes() or m.match(q) is not None:
        return True
    return q.count(".") == 1 and m.match(q + ".from_pretrained") is not None
