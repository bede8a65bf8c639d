"""The callee-agnostic rules: signals in the code that mean a download whatever the function is.

MM601 a truthy ``pretrained=``/``download=`` or a weights enum (``weights="DEFAULT"``);
MM602 a function named like a download helper, from any module;
MM603 a URL to a weights file (or a model-zoo scheme) passed to a call or kept in a dict.
Their data (keywords, names, suffixes, schemes) is policy.py's.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from urllib.parse import urlsplit

from mm_lint import rules, signals
from mm_lint.names import Scope
from model_manager import policy

_PRETRAINED = frozenset(signals.PRETRAINED_KEYWORDS)
_WEIGHTS = frozenset(signals.WEIGHTS_KEYWORDS)
_FUNCTIONS = frozenset(signals.DOWNLOAD_FUNCTION_NAMES)
_ENUM = re.compile(signals.WEIGHTS_ENUM_PATTERN)
_FALSY_WORDS = frozenset({"", "none", "false", "no", "0", "off", "null", "scratch", "random"})
_TAG = re.compile(r"[A-Za-z][\w.\-]*\Z")
_SUFFIXES = tuple(sorted(signals.WEIGHT_FILE_SUFFIXES, key=len, reverse=True))
_REMOTE = tuple(signals.REMOTE_URL_SCHEMES)
_SCHEMES = tuple(signals.MODEL_URL_SCHEMES)


@lru_cache(maxsize=1)
def known_modules() -> dict[str, tuple[str, ...]]:
    """Download function name -> the catalogued qualified names that carry it."""
    out: dict[str, list[str]] = {}
    for rule in policy.CATALOGUE:
        for name in rule.names:
            last = name.rsplit(".", 1)[-1]
            if last in _FUNCTIONS:
                out.setdefault(last, []).append(name)
    return {k: tuple(v) for k, v in out.items()}


def callee_text(func: ast.expr) -> str:
    text = ast.unparse(func)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_model_string(text: str, allowed: frozenset[str]) -> bool:
    """A remote URL to a weights file, or any model-zoo scheme string."""
    low = text.strip().lower()
    if low.startswith(_SCHEMES):
        return not any(low == s for s in _SCHEMES)  # the scheme alone names nothing
    if not low.startswith(_REMOTE) or any(c.isspace() for c in low):
        return False
    path = re.split(r"[?#]", low, maxsplit=1)[0]
    if not path.endswith(_SUFFIXES):
        return False
    from mm_lint.checks import host_allowed

    try:
        host = urlsplit(path).hostname or ""
    except ValueError:
        host = ""
    return not (host and host_allowed(host, allowed))


def weight_url(scope: Scope, expr: ast.expr, allowed: frozenset[str], depth: int = 0) -> str | None:
    """The text of a string expression that points at remote weights ('{}' for unknown parts)."""
    expr = scope.constant(expr)
    if isinstance(expr, ast.Constant):
        text = expr.value if isinstance(expr.value, str) else None
    elif isinstance(expr, ast.JoinedStr):
        text = "".join(v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{}"
                       for v in expr.values)
    elif isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Mod)) and depth < 4:
        left = weight_url(scope, expr.left, allowed, depth + 1)
        if left is not None or isinstance(expr.op, ast.Mod):
            return left
        head = scope.static_prefix(expr.left)
        right = scope.constant(expr.right)
        tail = right.value if isinstance(right, ast.Constant) and isinstance(right.value, str) else None
        text = f"{head}{{}}{tail}" if head and tail is not None else None
    elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "format" \
            and depth < 4:
        return weight_url(scope, expr.func.value, allowed, depth + 1)
    else:
        return None
    return text if text is not None and _is_model_string(text, allowed) else None


def _url_values(scope: Scope, values: list[ast.expr], allowed: frozenset[str]) -> list[tuple[ast.expr, str]]:
    found = []
    for v in values:
        if isinstance(v, (ast.List, ast.Tuple, ast.Set)):
            found += [(e, u) for e in v.elts if (u := weight_url(scope, e, allowed)) is not None]
        elif (u := weight_url(scope, v, allowed)) is not None:
            found.append((v, u))
    return found


Found = tuple[ast.AST, str, str]  # (node reported, code, message)


def _hit(node: ast.AST, code: str, called: str, detail: str) -> Found:
    return node, code, rules.message(rules.by_code()[code], called, detail)


def _keyword_signal(scope: Scope, kw: ast.keyword) -> str | None:
    """Why ``kw`` asks for pretrained weights, or None."""
    name = kw.arg
    value = scope.constant(kw.value)
    if name in _WEIGHTS:
        if isinstance(value, ast.Attribute) and value.attr.isupper() and isinstance(
                value.value, (ast.Attribute, ast.Name)) and _enum_class(value.value).endswith("_Weights"):
            return f"{name}={callee_text(kw.value)}"
        if isinstance(value, ast.Constant) and isinstance(value.value, str) and (
                _ENUM.fullmatch(value.value) or _is_model_string(value.value, frozenset())):
            return f"{name}={value.value!r}"
    if name in _PRETRAINED and isinstance(value, ast.Constant):
        v = value.value
        if v is True:
            return f"{name}={v!r}"
        if isinstance(v, str) and name != "download" and v.strip().lower() not in _FALSY_WORDS and (
                _is_model_string(v, frozenset()) or (_TAG.match(v) and not v.lower().endswith(_SUFFIXES))):
            return f"{name}={v!r}"
    return None


def _enum_class(expr: ast.expr) -> str:
    return expr.attr if isinstance(expr, ast.Attribute) else expr.id if isinstance(expr, ast.Name) else ""


def check_call(scope: Scope, call: ast.Call, qualname: str | None, allowed: frozenset[str],
               own_method: bool, catalogued: bool) -> list[Found]:
    """MM601/MM602/MM603 findings of one call. A function of this file (``own_method``) is the wrapper
    index's to judge, a catalogued one the catalogue's: neither is judged by its name."""
    out = []
    called = qualname or callee_text(call.func)
    for kw in call.keywords:
        if kw.arg is not None and (kw.arg in _PRETRAINED or kw.arg in _WEIGHTS):
            why = _keyword_signal(scope, kw)
            if why is not None:
                out.append(_hit(call, rules.PRETRAINED_ANY, called, why))
                break
    func = call.func
    last = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if last in _FUNCTIONS and not own_method and not catalogued:
        out.append(_hit(call, rules.DOWNLOAD_NAME, called, _name_detail(last, qualname)))
    values = [*call.args, *(kw.value for kw in call.keywords)]
    out += [_hit(node, rules.WEIGHTS_URL, called, f"passes {url!r}")
            for node, url in _url_values(scope, values, allowed)]
    return out


def _name_detail(name: str, qualname: str | None) -> str:
    known = known_modules().get(name)
    where = f"catalogued as {', '.join(f'`{k}`' for k in known[:2])}" if known else "not catalogued"
    if qualname is None:
        return f"a function named `{name}` from a module the checker cannot tell ({where})"
    return f"a function named `{name}` from `{qualname.rpartition('.')[0] or qualname}` ({where})"


def check_dict(scope: Scope, node: ast.Dict, allowed: frozenset[str]) -> list[Found]:
    """MM603 in a config dict literal: ``{"checkpoint": "https://.../x.pth"}`` (values: a table keyed
    by URL, a checksum table, fetches nothing)."""
    values = [v for v in node.values if v is not None]
    return [_hit(v, rules.WEIGHTS_URL, "a config dict", f"holds {url!r}")
            for v, url in _url_values(scope, values, allowed)]


def check_assign(scope: Scope, node: ast.stmt, allowed: frozenset[str]) -> list[Found]:
    """MM603 in a name, class attribute or ``self.x`` that keeps a URL for a later download:
    ``WEIGHTS_URL = "https://.../w.h5"``, ``url = "https://.../{}.zip"``, ``urls = [...]``."""
    value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
    if value is None or (isinstance(value, (ast.Dict, ast.Call)) and not _is_format(value)):
        return []  # dicts and calls are judged as such
    target = node.targets[0] if isinstance(node, ast.Assign) else node.target  # type: ignore[attr-defined]
    name = ast.unparse(target)[:40]
    return [_hit(v, rules.WEIGHTS_URL, name, f"keeps {url!r}") for v, url in _url_values(scope, [value], allowed)]


def _is_format(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
