"""The project's wrappers within one parsed file (the second half of engine.check_tree): learn the
functions that download from a parameter (or always), then judge every call to a known one (MM604).
See wrappers.py for what a wrapper is and project.py for the index across files."""

from __future__ import annotations

import ast
import os
from typing import TYPE_CHECKING

from mm_lint import candidates, checks, rules, wrappers
from mm_lint.findings import Hit
from mm_lint.names import Context, Scope
from mm_lint.project import Project

if TYPE_CHECKING:
    from mm_lint import engine


def learn_and_judge(scope: Scope, tree: ast.Module, data: bytes, out: candidates.Collected, lines: set[int],
              found: dict[int, engine._Found], project: Project, result: engine.Result, path: str) -> None:
    """Find the wrappers this file defines, then judge every call to a known one (MM604)."""
    from mm_lint import engine

    shown: list[str] = []

    def at(line: int) -> str:  # "path:line" of a wrapper's download, the path made relative once
        if not shown:
            shown.append(_shown(path))
        return f"{shown[0]}:{line}"

    by_call = {id(c): (c, ctx) for c, ctx in out.calls}
    passed: dict[int, str | None] = {}  # MM604 call -> the caller's parameter it passes on (None: none)

    def learn(f: engine._Found) -> None:
        """The function holding a download: a wrapper of the parameter it comes from, or always."""
        if f.call is None or f.hit.code in _NOT_A_DOWNLOAD or id(f.call) not in by_call:
            return
        call, ctx = by_call[id(f.call)]
        if not ctx.owner:
            return
        scope.context = ctx
        guard = wrappers.guard_of(ctx, call.lineno)
        if guard is not None:
            param: str | None = guard  # ``if pretrained: download(...)``: the flag decides, not the source
        elif f.hit.code == rules.WRAPPER_CALL:
            param = passed.get(id(call), "")
            if param == "":
                return  # a call of a function that always downloads: no further up
        else:
            source = _source(scope, call, ctx, f.hit.code)
            param = wrappers.param_of(source, ctx) if source is not None else None
        w = wrappers.make(scope, ctx, param or "", at(call.lineno), f.hit.via or f.hit.code)
        old = result.wrappers.get(w.key) if w is not None else None
        if w is not None and (old is None or (old.param and not w.param)):
            result.wrappers[w.key] = w  # always downloading wins over a parameter

    for f in list(found.values()):
        learn(f)
    if not result.wrappers and not project.wrappers:
        return
    prefix = wrappers.module_key(scope) + "."
    own = {k: w for k, w in project.wrappers.items() if k.startswith(prefix)} if project.wrappers else {}
    for _ in range(4):  # a caller that passes its parameter on is a wrapper too: to a fixed point
        table = {**project.wrappers, **result.wrappers}
        more = candidates.call_lines(_wrapper_aliases(scope, {**own, **result.wrappers}, project.rests, data),
                                     data) - lines
        if more:
            lines |= more
            engine._rewalk(tree, lines, out, scope)
            by_call = {id(c): (c, ctx) for c, ctx in out.calls}
        known = dict(result.wrappers)
        shorts = {k.rpartition(".")[2] for k in table} | {  # and a wrapper imported under another name
            a for a, q in scope.imports.items() if (scope.reexported(q) if scope.project else q) in table}
        for call, ctx in out.calls:
            func = call.func
            if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) not in shorts:
                continue
            scope.context = ctx
            key = wrappers.call_key(scope, call.func, ctx)
            w = table.get(key) if key else None
            if w is None:
                continue
            detail, caller = wrappers.judge(scope, call, ctx, w, at(call.lineno))
            guard = wrappers.guard_of(ctx, call.lineno) if caller is not None else None
            if guard is not None and caller is not None and guard != caller.param:
                caller = wrappers.make(scope, ctx, guard, caller.where, caller.code)  # the flag decides
                detail = None if caller is not None and caller.default_local else detail
            if detail is not None:
                engine._add(found, call, call, Hit(call.lineno, call.col_offset, rules.WRAPPER_CALL,
                                            wrappers.message(key or "", detail), via=w.code), 1)
                passed[id(call)] = caller.param if caller is not None else (None if w.param else "")
            elif caller is not None and caller.key not in result.wrappers:
                result.wrappers[caller.key] = caller  # a pass-through with a local default: no finding
        for f in list(found.values()):
            if f.hit.code == rules.WRAPPER_CALL:
                learn(f)
        if result.wrappers == known:
            return


def _shown(path: str) -> str:
    """A path as a message names it: relative to the current folder when inside it."""
    if not path:
        return "this file"
    rel = os.path.relpath(path) if os.path.isabs(path) else path
    return path if rel.startswith("..") else rel


# Findings that do not make the function holding them download (MM105: building a hub client).
_NOT_A_DOWNLOAD = frozenset({rules.WEIGHTS_URL, rules.PRETRAINED_ANY, "MM105", "MM204"})


def _source(scope: Scope, call: ast.Call, ctx: Context, code: str) -> ast.expr | None:
    from mm_lint import engine

    if code in (rules.DOWNLOAD_NAME, rules.WRAPPER_CALL):
        given = next((a for kw in checks.SOURCE_KWARGS
                      if isinstance(a := checks.argument(call, kw, None, scope), ast.expr)), None)
        first = given or checks.argument(call, None, 0, scope)
        return first if isinstance(first, ast.expr) else None
    q, matches = engine._catalogue(scope, call, ctx)
    match = next((m for m in matches if m.rule.code == code), None)
    return checks.source_argument(match, scope, call, q or "") if match is not None else None


def _wrapper_aliases(scope: Scope, local: dict[str, wrappers.Wrapper], rests: dict[str, tuple[str, ...]],
                     data: bytes) -> dict[str, tuple[str, ...]]:
    """Local names a call to a known wrapper can start with: the function, self/cls/Class.method,
    or an imported module or name of the project."""
    mod = wrappers.module_key(scope)
    pairs: dict[str, set[str]] = {}
    for key in local:
        if key.startswith(mod + "."):
            rest = key[len(mod) + 1:]
            head, _, method = rest.partition(".")
            if method:
                for alias in ("self", "cls", head):
                    pairs.setdefault(alias, set()).add(method)
            else:
                pairs.setdefault(head, set()).add("")
    for alias, q in scope.imports.items():
        more = rests.get(scope.reexported(q) if scope.project else q)
        if more:  # only the wrappers this file names at all (a package can hold hundreds)
            pairs.setdefault(alias, set()).update(r for r in more if r.rpartition(".")[2].encode() in data)
    return {a: tuple(sorted(r)) for a, r in pairs.items() if a.isascii()}
