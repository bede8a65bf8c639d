"""The checker: byte prefilter, one ``ast.parse``, and a walk that visits only the
statements on lines that mention a catalogue word or a name bound to one.

Walking every node of every tree costs more than parsing it; visiting only the
branches whose line span holds a candidate line keeps the checker near the
parser's own speed.
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_left
from dataclasses import asdict, dataclass
from functools import lru_cache

from mm_lint import checks, rules
from mm_lint.names import LOCAL, Scope
from model_manager import policy


@dataclass(frozen=True, slots=True)
class Finding:
    path: str
    line: int
    col: int  # 1-based
    code: str
    message: str
    fixable: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@lru_cache(maxsize=1)
def prefilter() -> re.Pattern[bytes]:
    words = sorted(rules.trigger_words(), key=len, reverse=True)
    return re.compile(rb"\b(?:" + b"|".join(w.encode() for w in words) + rb")\b")


def might_match(data: bytes) -> bool:
    """Cheap byte-level test: a file without any catalogue word cannot break a rule."""
    return prefilter().search(data) is not None


class _Collected:
    __slots__ = ("imports", "calls", "binds", "classes", "seen")

    def __init__(self) -> None:
        self.imports: list[ast.Import | ast.ImportFrom] = []
        self.calls: list[tuple[ast.Call, str | None]] = []
        self.binds: list[ast.stmt] = []
        self.classes: list[ast.ClassDef] = []
        self.seen: set[int] = set()


_BIND_TYPES = (ast.Assign, ast.With, ast.AsyncWith)
_SKIP = {"ctx", "id", "attr", "arg", "kind", "type_comment", "level", "module", "conversion",
         "is_async", "simple", "lineno", "col_offset", "end_lineno", "end_col_offset"}
_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(t: type) -> tuple[str, ...]:
    f = _FIELDS.get(t)
    if f is None:
        f = _FIELDS[t] = tuple(n for n in t._fields if n not in _SKIP)  # type: ignore[attr-defined]
    return f


def _walk(node: ast.AST, lines: list[int], out: _Collected, cls: str | None) -> None:
    """Collect calls, imports, classes and bindings in the branches that hold a candidate line."""
    AST, Call, ClassDef, Import, ImportFrom = ast.AST, ast.Call, ast.ClassDef, ast.Import, ast.ImportFrom
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
                    out.calls.append((child, cls))  # type: ignore[arg-type]
            elif t is Import or t is ImportFrom:
                if id(child) not in seen:
                    seen.add(id(child))
                    out.imports.append(child)  # type: ignore[arg-type]
                continue
            elif t is ClassDef:
                if id(child) not in seen:
                    seen.add(id(child))
                    out.classes.append(child)  # type: ignore[arg-type]
                _walk(child, lines, out, child.name)  # type: ignore[attr-defined]
                continue
            elif t in _BIND_TYPES and id(child) not in seen:
                seen.add(id(child))
                out.binds.append(child)  # type: ignore[arg-type]
            _walk(child, lines, out, cls)


_DOT = r"\s*\.\s*"


def _remainder_regex(rest: str) -> str:
    return _DOT + _DOT.join(r"\w+" if part == "*" else re.escape(part).replace(r"\*", r"\w*")
                            for part in rest.split("."))


@lru_cache(maxsize=4096)
def _verifier(alias: str, rests: tuple[str, ...]) -> re.Pattern[bytes]:
    alts = [_remainder_regex(rest) if rest else r"\b" for rest in rests]
    return re.compile((re.escape(alias) + "(?:" + "|".join(alts) + ")").encode())


_IDENT_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _call_lines(aliases: dict[str, tuple[str, ...]], data: bytes) -> set[int]:
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
            if (pos == 0 or data[pos - 1] not in _IDENT_BYTES) and verify(data, pos):
                positions.append(pos)
            pos = data.find(needle, pos + len(needle))
    positions.sort()
    out: set[int] = set()
    line, last = 1, 0
    for pos in positions:
        line += data.count(b"\n", last, pos)
        last = pos
        out.add(line)
    return out


def _find_word_lines(data: bytes, word: bytes) -> list[int]:
    out: list[int] = []
    line, last, pos = 1, 0, data.find(word)
    while pos != -1:
        line += data.count(b"\n", last, pos)
        last = pos
        if not out or out[-1] != line:
            out.append(line)
        pos = data.find(word, pos + len(word))
    return out


def _aliases(scope: Scope) -> dict[str, tuple[str, ...]]:
    m, prefixes = rules.matcher(), rules.name_prefixes()
    pairs: dict[str, set[str]] = {"from_pretrained": {""}}
    for alias, q in scope.imports.items():
        if not alias.isascii():
            continue
        if m.match(q) is not None:
            pairs.setdefault(alias, set()).add("")
        rests = prefixes.get(q)
        if rests:
            pairs.setdefault(alias, set()).update(rests)
    for var, q in scope.instances.items():
        match = m.match(q)
        if var.isascii() and match is not None and match.rule.category == policy.HTTP:
            pairs.setdefault(var, set()).update(rules.HTTP_VERBS)
    return {alias: tuple(sorted(r)) for alias, r in pairs.items()}


def check_tree(tree: ast.Module, data: bytes, allowed_hosts: frozenset[str] = frozenset()
               ) -> list[tuple[int, int, str, bool]]:
    """(line, 0-based col, message, fixable) for every finding in a parsed file."""
    scope = Scope()
    scope.add_module_constants(tree.body)
    out = _Collected()
    import_lines = _find_word_lines(data, b"import")
    if import_lines:
        _walk(tree, import_lines, out, None)
    for imp in out.imports:
        scope.add_import(imp)
    for cls_node in out.classes:
        scope.add_class(cls_node)
    # Then only the lines where a call can reach the catalogue through those bindings.
    lines = set(import_lines)
    for _ in range(2):  # a second round for client objects: ``s = requests.Session()``
        new = _call_lines(_aliases(scope), data) - lines
        if not new:
            break
        lines |= new
        _walk(tree, sorted(lines), out, None)
        for cls_node in out.classes:
            scope.add_class(cls_node)
        for node in out.binds:
            scope.add_binding(node)
    return [f for call, cls in out.calls for f in _check_call(scope, call, cls, allowed_hosts)]


def _receiver_qualname(scope: Scope, func: ast.Attribute, cls: str | None) -> str | None:
    """Qualified name for ``X.from_pretrained``; '' for a project's own method (not a finding)."""
    value = func.value
    if isinstance(value, ast.Name):
        name = value.id
        if name in ("self", "cls") and cls is not None and name not in scope.imports:
            name = cls
        info = scope.classes.get(name)
        if info is not None and name not in scope.imports:
            if info.own_from_pretrained:
                return ""
            base = scope.library_base(name)
            return f"{base}.{func.attr}" if base else ""
    q = scope.qualname(value)
    if q is None:
        return None
    if q.startswith((LOCAL + ".", ".")):
        return ""
    return f"{q}.{func.attr}"


def _check_call(scope: Scope, call: ast.Call, cls: str | None, allowed: frozenset[str]
                ) -> list[tuple[int, int, str, bool]]:
    func = call.func
    m = rules.matcher()
    matches: tuple[rules.Match, ...]
    if isinstance(func, ast.Attribute) and func.attr == "from_pretrained":
        q = _receiver_qualname(scope, func, cls)
        if q == "":
            return []
        if q is None:
            # A receiver the checker cannot resolve (a variable holding a class): attribute it
            # to the first from_pretrained library this file imports, or let it go.
            lib = next(((r, top) for r, top in m.from_pretrained_rules if top in scope.imported_tops), None)
            if lib is None:
                return []
            q = f"{lib[1]}.<unresolved>.from_pretrained"
            matches = (rules.Match(lib[0], None),)
        else:
            matches = m.match_all(q)
    else:
        if isinstance(func, ast.Name) and func.id not in scope.imports and func.id in scope.instances:
            return []  # calling an object (``model(x)``) is not calling its constructor
        q = scope.qualname(func)
        if q is None or q.startswith((LOCAL, ".")):
            return []
        matches = m.match_all(q)
    out = []
    for match in matches:
        detail = checks.verdict(match, scope, call, q, allowed)
        if detail is not None:
            out.append((call.lineno, call.col_offset, rules.message(match.rule, q, detail), _fixable(match.rule, call)))
    return out


def _fixable(rule: rules.Rule, call: ast.Call) -> bool:
    lw = rules.fix_kwarg(rule)
    if lw is None:
        return False
    # Safe only when adding the keyword cannot collide: no **kwargs and not already passed.
    return all(kw.arg is not None and kw.arg != lw.kwarg for kw in call.keywords)


_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.I)


def suppressed(line_text: str, code: str) -> bool:
    m = _NOQA.search(line_text)
    if m is None:
        return False
    codes = m.group("codes")
    if not codes:
        return True
    return any(code.startswith(c.upper()) for c in re.split(r"[,\s]+", codes) if c)


def check_bytes(data: bytes, path: str, allowed_hosts: frozenset[str] = frozenset(),
                prefiltered: bool = False) -> list[Finding]:
    """Every finding in one file's bytes, ``# noqa`` applied. Never raises on bad input."""
    if not prefiltered and not might_match(data):
        return []
    try:
        tree = ast.parse(data, filename=path)
    except SyntaxError as exc:
        return [_parse_failure(data, path, exc)]
    except (ValueError, UnicodeDecodeError) as exc:  # null bytes, bad encoding cookie
        code = rules.DECODE_ERROR if isinstance(exc, UnicodeDecodeError) else rules.SYNTAX_ERROR
        return [Finding(path, 1, 1, code, f"{code} cannot parse: {exc}")]
    except (RecursionError, MemoryError) as exc:
        return [Finding(path, 1, 1, rules.SYNTAX_ERROR,
                        f"{rules.SYNTAX_ERROR} cannot parse: too deeply nested ({type(exc).__name__})")]
    try:
        raw = check_tree(tree, data, allowed_hosts)
    except RecursionError:
        return [Finding(path, 1, 1, rules.SYNTAX_ERROR, f"{rules.SYNTAX_ERROR} too deeply nested to check")]
    if not raw:
        return []
    text_lines = data.splitlines()
    found = []
    for line, col, message, fixable in raw:
        code = message.split(" ", 1)[0]
        text = text_lines[line - 1].decode("utf-8", "replace") if line <= len(text_lines) else ""
        if "noqa" in text and suppressed(text, code):
            continue
        found.append(Finding(path, line, col + 1, code, message, fixable))
    found.sort(key=lambda f: (f.line, f.col, f.code))
    return found


def _parse_failure(data: bytes, path: str, exc: SyntaxError) -> Finding:
    msg = str(exc.msg or exc)
    if "unicode error" in msg or "codec can't decode" in msg or "encoding problem" in msg:
        return Finding(path, exc.lineno or 1, 1, rules.DECODE_ERROR,
                       f"{rules.DECODE_ERROR} cannot decode the file: {msg}")
    return Finding(path, exc.lineno or 1, max(exc.offset or 1, 1), rules.SYNTAX_ERROR,
                   f"{rules.SYNTAX_ERROR} syntax error, no rule could check this file: {msg}")


def rule_for(code: str) -> rules.Rule | None:
    return policy.by_code().get(code)


__all__ = ["Finding", "check_bytes", "check_tree", "might_match", "suppressed", "rule_for", "policy"]
