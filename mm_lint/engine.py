"""The checker: byte prefilter, one ``ast.parse``, and a walk that visits only the statements on
lines that can hold a finding (see candidates.py).

Per call: the catalogue's rules, then the callee-agnostic ones (generic.py), then calls to
the project's own wrappers (wrappers.py). One download gets one finding: the most specific
rule on a call wins, and a finding inside the arguments of another call's finding is dropped.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import lru_cache

from mm_lint import candidates, checks, generic, index, mocked, rules, wrappers
from mm_lint.config import Options
from mm_lint.findings import Finding, Hit
from mm_lint.names import LOCAL, MODULE, Context, Scope
from mm_lint.project import Project, module_of, outline
from model_manager import policy

DEFAULT_OPTIONS = Options()
# Which rule wins when several report one call: the catalogue's, then a known wrapper, then the
# callee-agnostic ones.
_PRIORITY = {rules.WRAPPER_CALL: 1, rules.DOWNLOAD_NAME: 2, rules.PRETRAINED_ANY: 3, rules.WEIGHTS_URL: 4}


@lru_cache(maxsize=1)
def prefilter() -> re.Pattern[bytes]:
    words = sorted(rules.trigger_words(), key=len, reverse=True)
    signals = [b"pretrained", b"weights", b"download", b"://", b"load_url", b"from_url", b"urlretrieve"]
    return re.compile(rb"\b(?:" + b"|".join(w.encode() for w in words) + rb")\b|" + b"|".join(signals))


def might_match(data: bytes) -> bool:
    """Cheap byte-level test: a file without any catalogue word or signal cannot break a rule."""
    return prefilter().search(data) is not None


@dataclass(slots=True)
class Result:
    module: str = ""
    hits: list[Hit] = field(default_factory=list)
    wrappers: dict[str, wrappers.Wrapper] = field(default_factory=dict)  # defined in this file
    imports: dict[str, str] = field(default_factory=dict)  # its import bindings (the project index)
    outline: list[list[object]] = field(default_factory=list)  # its top-level statements (project.outline)


@dataclass(slots=True)
class _Found:
    node: ast.AST  # the call, or the string of an MM603
    call: ast.Call | None
    hit: Hit
    priority: int


def check_tree(tree: ast.Module, data: bytes, options: Options = DEFAULT_OPTIONS, module: str = "",
               package: str = "", path: str = "", project: Project | None = None,
               functions: frozenset[str] = frozenset()) -> Result:
    """Every finding in a parsed file, the wrappers it defines and what it imports. ``functions``:
    module-level functions of a file parsed only in part (project.narrowed)."""
    scope = Scope(module=module, package=package)
    if project is not None:
        scope.project = project.exports
    scope.add_module_constants(tree.body)
    scope.functions |= functions
    out = candidates.Collected()
    import_lines = candidates.word_lines(data, b"import")
    if import_lines:
        candidates.walk(tree, import_lines, out)
    for imp in out.imports:
        scope.add_import(imp)
    for cls_node in out.classes:
        scope.add_class(cls_node)
    lines = set(import_lines)
    pending = candidates.signal_lines(data)
    searched: dict[str, tuple[str, ...]] = {}
    bound = -1
    for _ in range(3):  # later rounds for client objects and aliases: ``s = requests.Session()``
        if bound == len(scope.imports) + len(scope.instances):
            break  # the last walk bound nothing new: no new alias either
        bound = len(scope.imports) + len(scope.instances)
        aliases = candidates.aliases(scope)
        pending |= candidates.call_lines({a: r for a, r in aliases.items() if searched.get(a) != r}, data)
        searched = aliases
        new = pending - lines
        if not new:
            break
        lines |= new
        _rewalk(tree, new, out, scope)
    found: dict[int, _Found] = {}
    for call, ctx in out.calls:
        scope.context = ctx
        _check_call(scope, call, ctx, options, found)
    scope.module_only = True
    dict_hits = []
    for node, ctx in out.dicts:
        scope.context = ctx
        dict_hits += generic.check_dict(scope, node, options.allowed_hosts)
    scope.context = MODULE
    for bind in out.binds:
        dict_hits += generic.check_assign(scope, bind, options.allowed_hosts)
    scope.module_only = False
    for value, code, message in dict_hits:
        _add(found, value, None, _hit_at(value, code, message), _PRIORITY[code])
    result = Result(module, imports=dict(scope.imports), outline=outline(tree))
    index.learn_and_judge(scope, tree, data, out, lines, found, project or Project(), result, path)
    if found and b"patch" in data:
        _drop_patched(scope, tree, data, found)
    result.hits = _one_per_download(found)
    return result


def _drop_patched(scope: Scope, tree: ast.Module, data: bytes, found: dict[int, _Found]) -> None:
    """A test that patched the network out where the call would reach it (mocked.py)."""
    lines = sorted({*candidates.word_lines(data, b"patch"), *candidates.word_lines(data, b"setattr")})
    patched = mocked.spans(tree, lines)
    if patched:
        scope.context = MODULE
        calls = [_span(f.call) for f in found.values()
                 if f.call is not None and mocked.patched_out(scope, f.call, patched)]
        for key, f in list(found.items()):  # with what lies in their arguments (the URL they were given)
            if any(_inside(_span(f.node), call) for call in calls):
                del found[key]


def _rewalk(tree: ast.Module, lines: set[int], out: candidates.Collected, scope: Scope) -> None:
    """Walk the branches holding ``lines`` (new ones: what older lines hold was collected already)."""
    candidates.walk(tree, sorted(lines), out)
    for cls_node in out.classes:
        scope.add_class(cls_node)
    for node in out.binds:
        scope.add_binding(node)


def _add(found: dict[int, _Found], node: ast.AST, call: ast.Call | None, hit: Hit, priority: int) -> None:
    key = id(call if call is not None else node)
    old = found.get(key)
    if old is None or priority < old.priority:
        found[key] = _Found(node, call, hit, priority)


def _defined_here(scope: Scope, func: ast.expr, ctx: Context) -> bool:
    """A function or method of this file (the wrapper index judges calls to those)."""
    if isinstance(func, ast.Name):
        return func.id in scope.functions and func.id not in scope.imports
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        base = func.value.id
        cls = ctx.cls if base in ("self", "cls") else None
        if cls is None and base in scope.classes and base not in scope.imports:
            return True
        return cls is not None and any(isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == func.attr
                                       for s in cls.body)
    return False


def _receiver_qualname(scope: Scope, func: ast.Attribute, cls: ast.ClassDef | None) -> str | None:
    """Qualified name for ``X.from_pretrained``; '' for a project's own method (not a finding)."""
    value = func.value
    if isinstance(value, ast.Name):
        name = value.id
        if name in ("self", "cls") and cls is not None and name not in scope.imports:
            name = cls.name
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


def _catalogue(scope: Scope, call: ast.Call, ctx: Context) -> tuple[str | None, tuple[rules.Match, ...]]:
    func = call.func
    m = rules.matcher()
    if isinstance(func, ast.Attribute) and func.attr == "from_pretrained":
        q = _receiver_qualname(scope, func, ctx.cls)
        if q == "":
            return None, ()
        if q is None:
            # A receiver the checker cannot resolve (a variable holding a class): attribute it
            # to the first from_pretrained library this file imports, or let it go.
            lib = next(((r, top) for r, top in m.from_pretrained_rules if top in scope.imported_tops), None)
            if lib is None:
                return None, ()
            return f"{lib[1]}.<unresolved>.from_pretrained", (rules.Match(lib[0], None),)
        return q, m.match_all(q)
    if isinstance(func, ast.Name) and func.id not in scope.imports and func.id in scope.instances:
        return None, ()  # calling an object (``model(x)``) is not calling its constructor
    q = scope.qualname(func)
    if q is None or q.startswith((LOCAL, ".")):
        return None, ()
    return q, m.match_all(q)


def _check_call(scope: Scope, call: ast.Call, ctx: Context, options: Options, found: dict[int, _Found]) -> None:
    q, matches = _catalogue(scope, call, ctx)
    for match in matches:
        detail = checks.verdict(match, scope, call, q or "", options)
        if detail is not None:
            hit = Hit(call.lineno, call.col_offset, match.rule.code, rules.message(match.rule, q or "", detail),
                      _fixable(match.rule, call))
            _add(found, call, call, hit, 0)
            break
    own = _defined_here(scope, call.func, ctx)
    scope.module_only = True
    try:
        generic_hits = generic.check_call(scope, call, q, options.allowed_hosts, own, bool(matches))
    finally:
        scope.module_only = False
    for node, code, message in generic_hits:
        _add(found, node, call if node is call else None, _hit_at(node, code, message), _PRIORITY[code])


def _hit_at(node: ast.AST, code: str, message: str) -> Hit:
    return Hit(node.lineno, node.col_offset, code, message)  # type: ignore[attr-defined]


Span = tuple[tuple[int, int], tuple[int, int]]  # (line, col) of a node's start and end


def _span(node: ast.AST) -> Span:
    return ((node.lineno, node.col_offset),  # type: ignore[attr-defined]
            (node.end_lineno or node.lineno, node.end_col_offset or 0))  # type: ignore[attr-defined]


def _inside(inner: Span, outer: Span) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def _one_per_download(found: dict[int, _Found]) -> list[Hit]:
    """Drop a finding that lies inside the arguments of another call's finding."""
    calls = [_span(f.call) for f in found.values() if f.call is not None]
    kept = []
    for f in found.values():
        span = _span(f.node)
        if not any(_inside(span, call) and span != call for call in calls):
            kept.append(f.hit)
    kept.sort(key=lambda h: (h.line, h.col, h.code))
    return kept


def _fixable(rule: rules.Rule, call: ast.Call) -> bool:
    lw = rules.fix_kwarg(rule)
    if lw is None:
        return False
    # Safe only when adding the keyword cannot collide: no **kwargs and not already passed.
    return all(kw.arg is not None and kw.arg != lw.kwarg for kw in call.keywords)


_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.I)


def suppressed(line_text: str, code: str) -> bool:
    """``# noqa: MM604`` (or a prefix, ``MM6``) silences a finding on its line. A bare ``# noqa`` does
    not: it is written for style checks (a long URL line) far more often than to allow a download,
    and a download must be allowed by name. (flake8's own noqa handling still applies under flake8.)"""
    m = _NOQA.search(line_text)
    if m is None or not m.group("codes"):
        return False
    return any(code.startswith(c.upper()) for c in re.split(r"[,\s]+", m.group("codes")) if c)


def check_file(data: bytes, path: str, options: Options = DEFAULT_OPTIONS, prefiltered: bool = False,
               project: Project | None = None, functions: frozenset[str] = frozenset()
               ) -> tuple[list[Finding], Result | None]:
    """Every finding in one file's bytes, ``# noqa`` applied, and what the project index needs
    (None when the file was not parsed). Never raises on bad input."""
    if not prefiltered and project is None and not might_match(data):
        return [], None
    try:
        tree = ast.parse(data, filename=path)
    except SyntaxError as exc:
        return [_parse_failure(data, path, exc)], None
    except (ValueError, UnicodeDecodeError) as exc:  # null bytes, bad encoding cookie
        code = rules.DECODE_ERROR if isinstance(exc, UnicodeDecodeError) else rules.SYNTAX_ERROR
        return [Finding(path, 1, 1, code, f"{code} cannot parse: {exc}")], None
    except (RecursionError, MemoryError) as exc:
        return [Finding(path, 1, 1, rules.SYNTAX_ERROR,
                        f"{rules.SYNTAX_ERROR} cannot parse: too deeply nested ({type(exc).__name__})")], None
    module, package = module_of(path)
    try:
        result = check_tree(tree, data, options, module, package, path, project, functions)
    except RecursionError:
        return [Finding(path, 1, 1, rules.SYNTAX_ERROR, f"{rules.SYNTAX_ERROR} too deeply nested to check")], None
    return apply_noqa(data, path, result.hits), result


def apply_noqa(data: bytes, path: str, hits: list[Hit]) -> list[Finding]:
    if not hits:
        return []
    text_lines = data.splitlines()
    found = []
    for h in hits:
        text = text_lines[h.line - 1].decode("utf-8", "replace") if h.line <= len(text_lines) else ""
        if "noqa" in text and (suppressed(text, h.code) or (h.via and suppressed(text, h.via))):
            continue
        found.append(Finding(path, h.line, h.col + 1, h.code, h.message, h.fixable, h.via))
    return found


def check_bytes(data: bytes, path: str, options: Options = DEFAULT_OPTIONS, prefiltered: bool = False) -> list[Finding]:
    """Every finding in one file's bytes (``# noqa`` applied)."""
    return check_file(data, path, options, prefiltered)[0]


def _parse_failure(data: bytes, path: str, exc: SyntaxError) -> Finding:
    msg = str(exc.msg or exc)
    if "unicode error" in msg or "codec can't decode" in msg or "encoding problem" in msg:
        return Finding(path, exc.lineno or 1, 1, rules.DECODE_ERROR,
                       f"{rules.DECODE_ERROR} cannot decode the file: {msg}")
    return Finding(path, exc.lineno or 1, max(exc.offset or 1, 1), rules.SYNTAX_ERROR,
                   f"{rules.SYNTAX_ERROR} syntax error, no rule could check this file: {msg}")


def rule_for(code: str) -> rules.Rule | None:
    return rules.by_code().get(code)


__all__ = ["Finding", "Result", "check_bytes", "check_file", "check_tree", "might_match", "suppressed",
           "rule_for", "policy"]
