"""The project's own download functions (MM604).

A function whose body downloads from one of its parameters is a wrapper: a call to it that fills
that parameter with anything but a provably local value (a local path, None, False, a loopback
URL) is a finding naming the wrapper. A call that passes the caller's own parameter on is one too,
and makes the caller a wrapper (a chain of helpers is followed to its end). A function whose body
downloads whatever its arguments (``self._download()``) makes every call to it a finding; that
does not go further up (the callers of a caller are not all downloads).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from mm_lint import rules, signals
from mm_lint.bindings import derivations, parameters
from mm_lint.names import LOCAL, Context, Scope


@dataclass(frozen=True, slots=True)
class Wrapper:
    key: str                    # module.function or module.Class.method
    param: str                  # the parameter the download comes from ('': it always downloads)
    index: int | None           # its position in a call (self/cls not counted); None: keyword-only
    default_local: bool | None  # None: no default; else whether the default is local
    where: str                  # "path:line" of the download inside
    code: str                   # the inner finding's code
    method: bool = False        # called on an instance: other files cannot be followed to it

    def row(self) -> list[object]:
        return [self.key, self.param, self.index, self.default_local, self.where, self.code, self.method]

    @classmethod
    def from_row(cls, row: list[object]) -> Wrapper:
        key, param, index, default_local, where, code, method = row
        return cls(str(key), str(param), index if isinstance(index, int) else None,
                   default_local if isinstance(default_local, bool) else None, str(where), str(code), bool(method))


def module_key(scope: Scope) -> str:
    return scope.module or LOCAL


def local_value(scope: Scope, expr: ast.expr) -> bool:
    """Provably local: None/False/empty, a local path, or a loopback URL."""
    from mm_lint.checks import url_verdict

    known, value = scope.literal(expr)
    if known and (value is None or value is False or value == "" or value == 0):
        return True
    if scope.is_local_path(expr):
        return True
    prefix = scope.static_prefix(expr) or ""
    return "://" in prefix and url_verdict(scope, expr, frozenset()) is None


def _positional(func: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> list[ast.arg]:
    args = [*func.args.posonlyargs, *func.args.args]
    is_static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in func.decorator_list)
    return args[1:] if method and not is_static and args else args


_DERIVED: dict[int, tuple[ast.AST, dict[str, list[ast.expr]]]] = {}


def param_of(expr: ast.expr, ctx: Context) -> str | None:
    """The caller's parameter ``expr`` is built from, through local names (``url = base + name``,
    ``for url in urls``)."""
    func = ctx.func
    if func is None:
        return None
    names = {p.arg for p in parameters(func)} - {"self", "cls"}
    cached = _DERIVED.get(id(func))
    if cached is None or cached[0] is not func:
        _DERIVED.clear()  # one file at a time
        cached = _DERIVED[id(func)] = (func, derivations(func))
    derived = cached[1]
    todo: list[ast.expr] = [expr]
    seen: set[str] = set()
    while todo and len(seen) < 50:
        for node in ast.walk(todo.pop()):
            if isinstance(node, ast.Name) and node.id not in seen:
                if node.id in names:
                    return node.id
                seen.add(node.id)
                todo.extend(derived.get(node.id, ()))
    return None


_FLAGS = frozenset(signals.PRETRAINED_KEYWORDS)


def guard_of(ctx: Context, line: int) -> str | None:
    """The parameter, off by default, that a download on ``line`` waits for: ``if pretrained:`` around
    ``load_state_dict_from_url(cfg.url)`` in ``def build(variant, pretrained=False)``. The download is
    then the caller's choice of that flag, not of the variant."""
    func = ctx.func
    if func is None:
        return None
    a = func.args
    every = [*a.posonlyargs, *a.args]
    defaults = dict(zip([p.arg for p in every[len(every) - len(a.defaults):]], a.defaults, strict=True))
    defaults.update((p.arg, d) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None)
    off = {name for name, d in defaults.items() if isinstance(d, ast.Constant) and not d.value}
    off.update(p.arg for p in [*every, *a.kwonlyargs] if p.arg in _FLAGS)  # ``pretrained: bool``, no default
    todo: list[ast.stmt] = list(func.body)
    while todo and off:
        node = todo.pop()
        if not (node.lineno <= line <= (node.end_lineno or node.lineno)):
            continue
        if isinstance(node, ast.If) and any(s.lineno <= line <= (s.end_lineno or s.lineno) for s in node.body):
            tests = node.test.values if isinstance(node.test, ast.BoolOp) and isinstance(node.test.op, ast.And) \
                else [node.test]
            name = next((t.id for t in tests if isinstance(t, ast.Name) and t.id in off), None)
            if name is not None:
                return name
        for field_name in ("body", "orelse", "finalbody", "handlers"):
            for child in getattr(node, field_name, None) or ():
                todo.extend(child.body if isinstance(child, ast.ExceptHandler) else [child])
    return None


def make(scope: Scope, ctx: Context, param: str, where: str, code: str, keyword_only: bool = False,
         default_local: bool | None = None) -> Wrapper | None:
    func = ctx.func
    if func is None or not ctx.owner:
        return None
    kinds = {d.id for d in func.decorator_list if isinstance(d, ast.Name)}
    method = ctx.cls is not None
    positional = _positional(func, method)
    index = next((i for i, a in enumerate(positional) if a.arg == param), None)
    default: ast.expr | None = None
    every = [*func.args.posonlyargs, *func.args.args]
    if index is not None:
        offset = len(every) - len(func.args.defaults)
        at = every.index(positional[index])
        default = func.args.defaults[at - offset] if at >= offset else None
    else:
        for a, d in zip(func.args.kwonlyargs, func.args.kw_defaults, strict=True):
            if a.arg == param:
                default = d
    if keyword_only:  # the wrapper's keyword, reached through this function's **kwargs
        index, default = None, None
    elif func.args.kwarg is not None and param == func.args.kwarg.arg:
        return None  # **kwargs itself: the caller's keyword is unknown
    else:
        default_local = None if default is None else local_value(scope, default)
    on_instance = method and not kinds & {"classmethod", "staticmethod"}
    return Wrapper(f"{module_key(scope)}.{ctx.owner}", param, index if param else None, default_local, where,
                   code, on_instance)


def call_key(scope: Scope, func: ast.expr, ctx: Context) -> str | None:
    """The key a call would have in the wrapper index."""
    mod = module_key(scope)
    if isinstance(func, ast.Name):
        if func.id in scope.imports:
            return scope.qualname(func)
        return f"{mod}.{func.id}" if func.id in scope.functions else None
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        base = func.value.id
        if base in ("self", "cls") and ctx.cls is not None and base not in scope.imports:
            return f"{mod}.{ctx.cls.name}.{func.attr}"
        if base in scope.classes and base not in scope.imports:
            return f"{mod}.{base}.{func.attr}"
    return scope.qualname(func)


def judge(scope: Scope, call: ast.Call, ctx: Context, w: Wrapper, here: str
          ) -> tuple[str | None, Wrapper | None]:
    """(the finding's detail or None, the caller as a new wrapper or None)."""
    from mm_lint.checks import _ABSENT, _UNKNOWN, argument

    if not w.param:
        return f"it downloads at {w.where} ({w.code})", None
    arg = argument(call, w.param, w.index, scope)
    if arg is _ABSENT:
        if w.default_local:
            return None, None
        return _detail(w, "leaves it to its default" if w.default_local is False else "does not pass it"), None
    if arg is _UNKNOWN:
        forwarded = _forwarded(call, ctx)
        if forwarded and ctx.func is not None and ctx.func.args.kwarg is not None \
                and forwarded == ctx.func.args.kwarg.arg:  # f(**kwargs): its callers' keyword decides
            caller = make(scope, ctx, w.param, here, w.code, keyword_only=True, default_local=w.default_local)
            return None, caller
        return _detail(w, f"passes it in *{forwarded}" if forwarded else "passes it in *args/**kwargs"), None
    assert isinstance(arg, ast.expr)
    if local_value(scope, arg):  # before the caller's parameters: pytest's tmp_path is one
        return None, None
    param = param_of(arg, ctx)
    if param is not None:
        caller = make(scope, ctx, param, here, w.code)
        if caller is not None and caller.default_local:
            return None, caller  # ``def resnet50(pretrained=False)``: only a caller asking for it downloads
        return _detail(w, f"passes on its own parameter `{param}`"), caller
    return _detail(w, f"passes {ast.unparse(arg)[:60]}"), None


def _forwarded(call: ast.Call, ctx: Context) -> str | None:
    func = ctx.func
    if func is None:
        return None
    star = {a.arg for a in (func.args.vararg, func.args.kwarg) if a is not None}
    for node in [*call.args, *(kw.value for kw in call.keywords if kw.arg is None)]:
        inner = node.value if isinstance(node, ast.Starred) else node
        if isinstance(inner, ast.Name) and inner.id in star:
            return inner.id
    return None


def _detail(w: Wrapper, what: str) -> str:
    return (f"it downloads from its parameter `{w.param}` at {w.where} ({w.code}); this call {what}")


def message(called: str, detail: str) -> str:
    return rules.message(rules.by_code()[rules.WRAPPER_CALL], called, detail)
