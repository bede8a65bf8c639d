"""Which lines can hold a finding, and a walk that visits only the branches holding one.

Walking every node of every tree costs more than parsing it. ``bytes.find`` locates the
lines that mention an import, a name bound to a catalogue module, or a callee-agnostic
signal (``pretrained=``, ``weights=``, a download function's name, ``://``); the walk then
descends only into statements whose line span holds one of those lines.
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_left
from functools import lru_cache

from mm_lint import rules, signals
from mm_lint.names import MODULE, Context, Scope
from model_manager import policy


class Collected:
    __slots__ = ("imports", "calls", "binds", "classes", "dicts", "seen")

    def __init__(self) -> None:
        self.imports: list[ast.Import | ast.ImportFrom] = []
        self.calls: list[tuple[ast.Call, Context]] = []
        self.binds: list[ast.stmt] = []
        self.classes: list[ast.ClassDef] = []
        self.dicts: list[tuple[ast.Dict, Context]] = []
        self.seen: set[int] = set()


_BIND_TYPES = (ast.Assign, ast.AnnAssign, ast.With, ast.AsyncWith)
_FUNC_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef)
_SKIP = {"ctx", "id", "attr", "arg", "kind", "type_comment", "level", "module", "conversion",
         "is_async", "simple", "lineno", "col_offset", "end_lineno", "end_col_offset"}
_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(t: type) -> tuple[str, ...]:
    f = _FIELDS.get(t)
    if f is None:
        f = _FIELDS[t] = tuple(n for n in t._fields if n not in _SKIP)  # type: ignore[attr-defined]
    return f


def walk(node: ast.AST, lines: list[int], out: Collected, ctx: Context = MODULE) -> None:
    """Collect calls, imports, classes, dicts and bindings in the branches that hold a candidate line."""
    AST, Call, ClassDef, Import, ImportFrom, Dict = (ast.AST, ast.Call, ast.ClassDef, ast.Import, ast.ImportFrom,
                                                     ast.Dict)
    seen, n_lines = out.seen, len(lines)
    for name in _fields(type(node)):
        value = getattr(node, name, None)
        if type(value) is list:
            children = value
        elif isinstance(value, AST):
            children = [value]
        else:
            continue
        for child in children:
            if not isinstance(child, AST):
                continue
            start = getattr(child, "lineno", None)
            if start is not None:
                i = bisect_left(lines, start)
                if i == n_lines or lines[i] > child.end_lineno:  # type: ignore[attr-defined]
                    continue
            t = type(child)
            if t is Call:
                if id(child) not in seen:
                    seen.add(id(child))
                    out.calls.append((child, ctx))  # type: ignore[arg-type]
            elif t is Import or t is ImportFrom:
                if id(child) not in seen:
                    seen.add(id(child))
                    out.imports.append(child)  # type: ignore[arg-type]
                continue
            elif t is ClassDef:
                if id(child) not in seen:
                    seen.add(id(child))
                    out.classes.append(child)  # type: ignore[arg-type]
                # a method of a module-level class can be called from outside: it has an owner
                top = ctx.func is None and ctx.cls is None
                cls_node: ast.ClassDef = child  # type: ignore[assignment]
                walk(cls_node, lines, out, Context(cls_node, None, cls_node.name if top else ""))
                continue
            elif t in _FUNC_TYPES:
                callable_outside = ctx.func is None and (ctx.cls is None or bool(ctx.owner))
                owner = (f"{ctx.owner}.{child.name}" if ctx.cls is not None  # type: ignore[attr-defined]
                         else child.name) if callable_outside else ""  # type: ignore[attr-defined]
                walk(child, lines, out, Context(ctx.cls, child, owner))  # type: ignore[arg-type]
                continue
            elif t is Dict:
                if id(child) not in seen:
                    seen.add(id(child))
                    out.dicts.append((child, ctx))  # type: ignore[arg-type]
            elif t in _BIND_TYPES and id(child) not in seen:
                seen.add(id(child))
                out.binds.append(child)  # type: ignore[arg-type]
            walk(child, lines, out, ctx)


_DOT = r"\s*\.\s*"


def _remainder_regex(rest: str) -> str:
    parts = rest.split(".")
    out = []
    for i, part in enumerate(parts):
        if part == "*":  # an inner `*` is one or more parts, a final one exactly one
            out.append(r"\w+" if i == len(parts) - 1 else r"\w+(?:\s*\.\s*\w+)*?")
        else:
            out.append(re.escape(part).replace(r"\*", r"\w*"))
    return _DOT + _DOT.join(out)


@lru_cache(maxsize=4096)
def _verifier(alias: str, rests: tuple[str, ...]) -> re.Pattern[bytes]:
    alts = [_remainder_regex(rest) if rest else r"\b" for rest in rests]
    # ``hub = torch.hub`` and ``p = pooch.create(...)``: a module path, or a call of one, that makes
    # the variable an alias or an instance
    alts += [_remainder_regex(p) + r"(?![ \t]*[.\w])" for p in _module_rests(rests)]
    return re.compile((re.escape(alias) + "(?:" + "|".join(alts) + ")").encode())


def _module_rests(rests: tuple[str, ...]) -> list[str]:
    out = {".".join(r.split(".")[:i]) for r in rests for i in range(1, r.count(".") + 1)}
    # ``pooch.*.fetch``: any object the module makes (``GOOD = pooch.create(...)``) may be the one
    return sorted(p for p in out if "*" not in p or p == "*")


IDENT = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _lines_of(positions: list[int], data: bytes) -> set[int]:
    positions.sort()
    out: set[int] = set()
    line, last = 1, 0
    for pos in positions:
        line += data.count(b"\n", last, pos)
        last = pos
        out.add(line)
    return out


def call_lines(aliases: dict[str, tuple[str, ...]], data: bytes) -> set[int]:
    """Lines a call to the catalogue can start on: ``alias.rest``, a bound callable, from_pretrained.

    ``bytes.find`` per alias, then an anchored regex at each hit: much faster than one
    alternation regex scanned over every byte.
    """
    positions: list[int] = []
    for alias, rests in aliases.items():
        needle = alias.encode()
        verify = _verifier(alias, rests).match
        pos = data.find(needle)
        while pos != -1:
            if (pos == 0 or data[pos - 1] not in IDENT) and verify(data, pos):
                positions.append(pos)
            pos = data.find(needle, pos + len(needle))
    return _lines_of(positions, data)


def word_lines(data: bytes, word: bytes) -> list[int]:
    out: list[int] = []
    line, last, pos = 1, 0, data.find(word)
    while pos != -1:
        line += data.count(b"\n", last, pos)
        last = pos
        if not out or out[-1] != line:
            out.append(line)
        pos = data.find(word, pos + len(word))
    return out


_PRETRAINED = frozenset(w.encode() for w in signals.PRETRAINED_KEYWORDS)
_WEIGHTS = frozenset(w.encode() for w in signals.WEIGHTS_KEYWORDS)
_FUNCTIONS = frozenset(w.encode() for w in signals.DOWNLOAD_FUNCTION_NAMES)
# Every keyword above holds one of these, and so does every download function name but those
# with "url" in them: a call of one of those is found where its name is imported (aliases()).
# Each needle is one more scan of every file: "url" alone would cost as much as the rest.
NEEDLES = (b"pretrained", b"weights", b"download", b"://")
_SPACE = b" \t\\\r\n"
_QUOTES = b"\"'"
_SCHEME = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-._")
_TRUTHY = (b"True", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9", b"\"", b"'")


def _signal_at(data: bytes, pos: int, n: int) -> bool:
    """Whether the identifier around ``pos`` is a signal keyword given a value that can be one
    (``pretrained=True``/a string, ``weights="DEFAULT"``/``X_Weights.Y``) or a download function
    name being called. Values through a name are left to the lines found otherwise."""
    start, end, size = pos, pos + n, len(data)
    while start and data[start - 1] in IDENT:
        start -= 1
    while end < size and data[end] in IDENT:
        end += 1
    word = data[start:end]
    nxt = end
    while nxt < size and data[nxt] in _SPACE:
        nxt += 1
    if data[nxt:nxt + 1] == b"(":
        return word in _FUNCTIONS
    if data[nxt:nxt + 1] != b"=" or data[nxt + 1:nxt + 2] == b"=":
        return False
    value = nxt + 1
    while value < size and data[value] in _SPACE:
        value += 1
    if word in _PRETRAINED and data.startswith(_TRUTHY, value):
        return True
    if word in _WEIGHTS:
        token = data[value:value + 80].split(b",", 1)[0].split(b")", 1)[0]
        return data[value:value + 1] in (b"\"", b"'") or b"Weights." in token
    return False


def _in_string_start(data: bytes, pos: int) -> bool:
    """A ``://`` whose scheme begins a string literal (not prose in a comment or a docstring)."""
    start = pos
    while start and data[start - 1] in _SCHEME:
        start -= 1
    return start > 0 and data[start - 1] in _QUOTES


def signal_lines(data: bytes) -> set[int]:
    """Lines with a callee-agnostic signal: a keyword, a download function's name, a URL."""
    positions: list[int] = []
    for needle in NEEDLES:
        n = len(needle)
        pos = data.find(needle)
        if needle == b"://":
            while pos != -1:
                if _in_string_start(data, pos):
                    positions.append(pos)
                pos = data.find(needle, pos + 3)
            continue
        while pos != -1:
            if _signal_at(data, pos, n):
                positions.append(pos)
            pos = data.find(needle, pos + n)
    return _lines_of(positions, data)


@lru_cache(maxsize=65536)
def _import_rests(q: str) -> tuple[str, ...]:
    """The rests after a name bound to ``q`` that reach the catalogue ('' for the name itself)."""
    m = rules.matcher()
    rests = set(rules.name_prefixes().get(q, ()))
    if m.match(q) is not None or q.rpartition(".")[2] in _FUNCTION_NAMES:
        rests.add("")
    # a class a glob names a method of (``pooch.*.fetch``): its constructor makes the instance
    methods = [last for last in _glob_methods().get(q.partition(".")[0], ()) if m.match(f"{q}.{last}")]
    if methods and "." in q:
        rests.update(["", *methods])
    return tuple(sorted(rests))


_FUNCTION_NAMES = frozenset(signals.DOWNLOAD_FUNCTION_NAMES)


def aliases(scope: Scope) -> dict[str, tuple[str, ...]]:
    """Local names through which a call can reach the catalogue -> the dotted rests after them.
    A name imported as one of the download functions (MM602) counts, from any module."""
    pairs = _import_aliases(scope, len(scope.imports))
    for var, q in scope.instances.items():
        if not var.isascii():
            continue
        rests = _instance_rests(q)
        if rests:  # ``s = requests.Session()`` then ``s.get``; ``p = pooch.create(...)`` then ``p.fetch(...)``
            old = pairs.get(var)
            pairs[var] = tuple(sorted({*old, *rests})) if old else rests
    return pairs


def _import_aliases(scope: Scope, count: int) -> dict[str, tuple[str, ...]]:
    """The import part, computed again only when the scope's imports grew (``hub = torch.hub``)."""
    cached = scope.import_aliases
    if cached is not None and cached[0] == count:
        return dict(cached[1])
    pairs: dict[str, tuple[str, ...]] = {"from_pretrained": ("",)}
    for alias, q in scope.imports.items():
        if q.startswith(".") and not scope.project:
            continue
        rests = _import_rests(scope.reexported(q) if scope.project else q)
        if rests and alias.isascii():
            pairs[alias] = rests
    scope.import_aliases = (count, pairs)
    return dict(pairs)


@lru_cache(maxsize=4096)
def _instance_rests(q: str) -> tuple[str, ...]:
    m = rules.matcher()
    match = m.match(q)
    rests = set(rules.name_prefixes().get(q, ()))
    if match is not None and match.rule.category == policy.HTTP:
        rests.update(rules.HTTP_VERBS)
    # methods a glob names on any object of the library (``pooch.*.fetch``)
    top = q.partition(".")[0]
    rests.update(last for last in _glob_methods().get(top, ()) if m.match(f"{q}.{last}") is not None)
    return tuple(sorted(rests))


@lru_cache(maxsize=1)
def _glob_methods() -> dict[str, tuple[str, ...]]:
    out: dict[str, set[str]] = {}
    for rule in policy.CATALOGUE:
        for name in rule.names:
            head, _, last = name.rpartition(".")
            if "*" in head and "*" not in last and last != "from_pretrained":  # that one is always searched
                out.setdefault(name.partition(".")[0], set()).add(last)
    return {k: tuple(sorted(v)) for k, v in out.items()}
