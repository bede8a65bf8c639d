"""What the names of one function or class are bound to: read lazily, only for a call that would
otherwise be a finding (walking every function would cost more than the parse)."""

from __future__ import annotations

import ast

Function = ast.FunctionDef | ast.AsyncFunctionDef


def parameters(func: Function) -> list[ast.arg]:
    a = func.args
    return [*a.posonlyargs, *a.args, *a.kwonlyargs, *([a.vararg] if a.vararg else []),
            *([a.kwarg] if a.kwarg else [])]


_TEMPORARY = frozenset({"TemporaryDirectory", "NamedTemporaryFile"})


def _temporary(expr: ast.expr) -> bool:
    func = expr.func if isinstance(expr, ast.Call) else None
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    return name in _TEMPORARY


def local_values(func: Function) -> dict[str, ast.expr | None]:
    """Name -> its one assigned value in ``func``; None for a parameter or a name bound otherwise.

    Statements only: a nested function's or class's body and a comprehension are scopes of their own.
    """
    out: dict[str, ast.expr | None] = {p.arg: None for p in parameters(func)}

    def unknown(target: ast.AST) -> None:
        for n in ast.walk(target):
            if isinstance(n, ast.Name):
                out[n.id] = None

    todo: list[ast.stmt] = list(func.body)
    while todo:
        node = todo.pop()
        t = type(node)
        if t is ast.Assign:
            targets = node.targets  # type: ignore[attr-defined]
            if len(targets) == 1 and type(targets[0]) is ast.Name:
                name = targets[0].id
                out[name] = node.value if name not in out else None  # type: ignore[attr-defined]
            else:
                for target in targets:
                    unknown(target)
        elif t is ast.AnnAssign and type(node.target) is ast.Name:  # type: ignore[attr-defined]
            name = node.target.id  # type: ignore[attr-defined]
            value = node.value  # type: ignore[attr-defined]
            out[name] = value if value is not None and name not in out else None
        elif t in (ast.AugAssign, ast.For, ast.AsyncFor):
            unknown(node.target)  # type: ignore[attr-defined]
        elif t in (ast.With, ast.AsyncWith):
            for item in node.items:  # type: ignore[attr-defined]
                target = item.optional_vars
                if type(target) is ast.Name and target.id not in out and _temporary(item.context_expr):
                    out[target.id] = item.context_expr  # `with TemporaryDirectory() as d`: d is a temp path
                elif target is not None:
                    unknown(target)
        elif t in (ast.Import, ast.ImportFrom):
            for a in node.names:  # type: ignore[attr-defined]
                out[(a.asname or a.name).partition(".")[0]] = None
        elif t in (ast.Global, ast.Nonlocal):
            for name in node.names:  # type: ignore[attr-defined]
                out[name] = None
        elif t in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            out[node.name] = None  # type: ignore[attr-defined]
            continue
        for field_name in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(node, field_name, None)
            if block:
                for child in block:
                    if isinstance(child, (ast.ExceptHandler, ast.match_case)):
                        if isinstance(child, ast.ExceptHandler) and child.name:
                            out[child.name] = None
                        todo.extend(child.body)
                    else:
                        todo.append(child)
    return out


def attr_values(cls: ast.ClassDef) -> dict[str, ast.expr | None]:
    """``self.x``/``cls.x`` -> its one assigned value in the class (class-level ``x = ...`` too)."""
    out: dict[str, ast.expr | None] = {}

    def bind(name: str, value: ast.expr | None) -> None:
        out[name] = value if name not in out else None

    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            bind(stmt.targets[0].id, stmt.value)
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            bind(stmt.target.id, stmt.value)
    for node in ast.walk(cls):
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value if len(node.targets) == 1 else None
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets, value = [node.target], node.value if isinstance(node, ast.AnnAssign) else None
        for t in targets:
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in ("self", "cls"):
                bind(t.attr, value)
            elif isinstance(t, ast.Tuple):
                for e in t.elts:
                    if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name):
                        bind(e.attr, None)
    return out


def derivations(func: Function) -> dict[str, list[ast.expr]]:
    """Name -> every expression it is bound from in ``func`` (assignments, loop iterables, ``with``
    items): what a value may be built from, for the wrapper index (not a value: ``for u in urls``
    gives ``u`` the iterable ``urls``)."""
    out: dict[str, list[ast.expr]] = {}
    todo: list[ast.stmt] = list(func.body)
    while todo:
        node = todo.pop()
        pairs: list[tuple[ast.AST, ast.expr]] = []
        if isinstance(node, ast.Assign):
            pairs = [(t, node.value) for t in node.targets]
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            pairs = [(node.target, node.value)]
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            pairs = [(node.target, node.iter)]
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            pairs = [(i.optional_vars, i.context_expr) for i in node.items if i.optional_vars is not None]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for target, value in pairs:
            for n in ast.walk(target):
                if isinstance(n, ast.Name):
                    out.setdefault(n.id, []).append(value)
        for field_name in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(node, field_name, None) or ():
                todo.extend(child.body if isinstance(child, (ast.ExceptHandler, ast.match_case)) else [child])
    return out
