"""Downloads a test has patched out.

A call made inside ``with patch("pkg.loader.requests.get"):`` (or ``mock.patch``, ``patch.object``,
under a ``@patch(...)`` decorator, or after ``monkeypatch.setattr(...)`` in the same function) is not
a finding when the patch replaces a network function that the call is, or that lives in the called
function's own module: the test put a fake where the request would go. A patch of anything else
(``os.path.exists``), or of a network function in another module, leaves the finding.
"""

from __future__ import annotations

import ast
import bisect

from mm_lint.names import Scope

# The last part of a patch target that names a way out: HTTP verbs, openers, clients, download helpers.
_NETWORK = frozenset({
    "get", "post", "put", "patch", "delete", "head", "options", "request", "stream", "send", "urlopen",
    "urlretrieve", "Request", "Session", "ClientSession", "Client", "AsyncClient", "PoolManager", "fetch",
    "retrieve", "download", "hf_hub_download", "snapshot_download", "cached_download", "download_url_to_file",
    "load_state_dict_from_url", "load_url", "get_file", "cached_path", "create_connection", "getaddrinfo",
    "run", "Popen", "call", "check_call", "check_output", "system",
})
_PATCHERS = frozenset({"patch", "patch.object", "mock.patch", "mock.patch.object", "unittest.mock.patch",
                       "unittest.mock.patch.object", "monkeypatch.setattr", "mocker.patch", "mocker.patch.object"})

Span = tuple[int, int, str]  # first line, last line, patch target


def _target(call: ast.Call) -> str | None:
    """The dotted target a patcher call replaces, when it is written out."""
    name = ast.unparse(call.func)
    if name not in _PATCHERS or not call.args:
        return None
    first = call.args[0]
    if name.endswith(".object") or (name.endswith("setattr") and len(call.args) >= 3):
        attr = call.args[1] if len(call.args) > 1 else None
        if isinstance(attr, ast.Constant) and isinstance(attr.value, str):
            return f"{ast.unparse(first)}.{attr.value}"
        return None
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def spans(tree: ast.Module, lines: list[int]) -> list[Span]:
    """Where a network function is patched: ``with`` bodies, decorated functions, the rest of a function
    after ``monkeypatch.setattr``. ``lines``: those that hold "patch" or "setattr" (sorted); only the
    statements around them are visited."""
    out: list[Span] = []
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.match_case):
            todo.extend(node.body)
            continue
        first: int = getattr(node, "lineno", 0)
        last: int = getattr(node, "end_lineno", None) or first
        decorators = getattr(node, "decorator_list", None)
        if decorators:
            first = min(first, *(d.lineno for d in decorators))
        i = bisect.bisect_left(lines, first)
        if i == len(lines) or lines[i] > last:
            continue  # nothing patched in this statement
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                t = _target(item.context_expr) if isinstance(item.context_expr, ast.Call) else None
                if t is not None:
                    out.append((node.lineno, last, t))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for deco in node.decorator_list:
                t = _target(deco) if isinstance(deco, ast.Call) else None
                if t is not None:
                    out.append((node.lineno, last, t))
            for stmt in node.body:
                value = stmt.value if isinstance(stmt, ast.Expr) else None
                t = _target(value) if isinstance(value, ast.Call) else None
                if t is not None:
                    out.append((stmt.lineno, last, t))
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            todo.extend(getattr(node, name, None) or ())
    return [s for s in out if s[2].rpartition(".")[2] in _NETWORK]


def patched_out(scope: Scope, call: ast.Call, found_spans: list[Span]) -> bool:
    """The call lies where a network function it is, or one in its own module, is patched."""
    line = call.lineno
    targets = [t for first, last, t in found_spans if first <= line <= last]
    if not targets:
        return False
    called = scope.qualname(call.func) or ast.unparse(call.func)
    module = called.rpartition(".")[0]
    return any(t == called or (module and t.startswith(module + ".")) for t in targets)
