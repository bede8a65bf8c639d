"""Decide whether one matched call is local: the catalogue's LocalWhen, URLs, argv."""

from __future__ import annotations

import ast
from urllib.parse import urlsplit

from mm_lint.names import Scope
from mm_lint.rules import HTTP_VERBS, METHOD_FIRST, URL_KWARGS, Match, Rule
from model_manager import policy
from model_manager.guard import argv
from model_manager.guard.addresses import is_loopback

_ABSENT = object()
_UNKNOWN = object()  # the argument may be hidden in *args / **kwargs
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})
# Client classes whose construction sends nothing; their request methods are checked.
_HOST_IN_CONSTRUCTOR = frozenset({"HTTPConnection", "HTTPSConnection", "HTTPConnectionPool",
                                  "HTTPSConnectionPool", "FTP", "FTP_TLS"})
_CLIENT_CLASSES = frozenset({"Session", "Client", "AsyncClient", "ClientSession", "PoolManager",
                             "ProxyManager", "build_opener", "FTP", "FTP_TLS"})


def argument(call: ast.Call, kwarg: str | None, positional: int | None) -> object:
    """The expression passed for a parameter, ``_ABSENT``, or ``_UNKNOWN``."""
    has_star_kw = False
    for kw in call.keywords:
        if kw.arg is None:
            has_star_kw = True
        elif kw.arg == kwarg:
            return kw.value
    if positional is not None:
        for i, a in enumerate(call.args):
            if isinstance(a, ast.Starred):
                return _UNKNOWN
            if i == positional:
                return a
    return _UNKNOWN if has_star_kw else _ABSENT


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    """Loopback as the runtime guard judges it (IPv4-mapped too), or an allowed host."""
    host = host.strip("[]").lower()
    return host in _LOOPBACK_NAMES or host in allowed or is_loopback(host)


def url_verdict(scope: Scope, expr: ast.expr, allowed: frozenset[str]) -> str | None:
    """None when the URL provably targets loopback or an allowed host; else why not."""
    prefix = scope.static_prefix(expr)
    if not prefix:
        return "a URL the checker cannot read"
    if "://" not in prefix:
        if prefix.startswith("/"):
            return "a URL without a host"
        # A bare host ("localhost:8000", http.client style) when the text is complete.
        complete = "/" in prefix or ":" in prefix or scope.literal(expr)[0]
        host = prefix.split("/", 1)[0].rsplit(":", 1)[0] if complete else ""
        if not host:
            return "a URL the checker cannot read"
        return None if host_allowed(host, allowed) else f"host {host!r}"
    scheme, _, rest = prefix.partition("://")
    if scheme.lower() == "file":
        return None
    # The host is known once the static text reaches the port or path, or is the whole value.
    whole = scope.literal(expr)[0]
    if not (whole or any(c in rest for c in ":/?#")):
        return "a URL whose host the checker cannot read"
    try:
        host = urlsplit(prefix).hostname or ""
    except ValueError:
        host = ""
    if not host:
        return "a URL whose host the checker cannot read"
    return None if host_allowed(host, allowed) else f"host {host!r}"


def _local_when_holds(scope: Scope, call: ast.Call, lw: policy.LocalWhen, allowed: frozenset[str]) -> bool:
    arg = argument(call, lw.kwarg, lw.positional)
    if arg is _ABSENT or arg is _UNKNOWN:
        # Hidden in **kwargs: benefit of the doubt only where the default is local anyway.
        return lw.absent_is_local
    assert isinstance(arg, ast.expr)
    if lw.value == policy.PATH:
        return scope.is_local_path(arg)
    if lw.value == policy.LOOPBACK_URL:
        return url_verdict(scope, arg, allowed) is None
    known, value = scope.literal(arg)
    return known and type(value) is type(lw.value) and value == lw.value


def _download_detail(rule: Rule, scope: Scope, call: ast.Call) -> str:
    for lw in rule.local_when:
        if lw.value == policy.PATH:
            arg = argument(call, lw.kwarg, lw.positional)
            if isinstance(arg, ast.expr):
                known, value = scope.literal(arg)
                if known and isinstance(value, str):
                    return f"{value!r} is not a local path"
                return "a source the checker cannot prove local"
    return ""


def check_http(match: Match, scope: Scope, call: ast.Call, qualname: str,
               allowed: frozenset[str]) -> str | None:
    """None when local; else the detail of the finding."""
    if match.via_instance is not None:
        if match.via_instance != "connect" and qualname.rsplit(".", 2)[-2] in _HOST_IN_CONSTRUCTOR:
            return None  # the host was checked where the connection was built
        pos = HTTP_VERBS[match.via_instance]
        arg = argument(call, "url", pos)
        if arg is _ABSENT and pos:
            arg = argument(call, "url", 0)  # session.request(url=...) style variants
    else:
        last = qualname.rsplit(".", 1)[-1]
        pos = 1 if qualname in METHOD_FIRST else 0
        arg = _ABSENT
        for kw in URL_KWARGS:
            arg = argument(call, kw, None)
            if arg is not _ABSENT and arg is not _UNKNOWN:
                break
        if arg is _ABSENT or arg is _UNKNOWN:
            arg = argument(call, None, pos)
        if arg is _ABSENT and last in _CLIENT_CLASSES:
            return None  # building a client sends nothing; its requests are checked
    if not isinstance(arg, ast.expr):
        return "a URL the checker cannot read"
    return url_verdict(scope, arg, allowed)


def _command(scope: Scope, call: ast.Call) -> list[str | None] | str | None:
    """The command as words (None: a word the checker cannot read), the text of a shell
    command, or None when the checker cannot read the command at all."""
    arg = argument(call, "args", 0)
    if not isinstance(arg, ast.expr):
        return None
    arg = scope.constant(arg)
    if isinstance(arg, (ast.List, ast.Tuple)):
        words: list[str | None] = []
        for elt in arg.elts:
            if isinstance(elt, ast.Starred):
                break  # how many words it holds is unknown: judge only what comes before
            known, value = scope.literal(elt)
            words.append(value if known and isinstance(value, str) else None)
        return words or None
    known, value = scope.literal(arg)
    return value if known and isinstance(value, str) else None


def check_subprocess(rule: Rule, scope: Scope, call: ast.Call) -> str | None:
    """A command the checker can read that reaches the network, as the runtime guard reads it
    (the same interpreter: model_manager.guard.argv). Unreadable words are never judged."""
    command = _command(scope, call)
    if command is None:
        return None
    finding = argv.scan_shell(command) if isinstance(command, str) else argv.scan_argv(command)
    return None if finding is None else f"runs {finding.describe()}"


# datasets' packaged builders read the data_files/data_dir they are given from disk;
# a LocalWhen cannot say "path is a builder AND its files are local", so it lives here.
_PACKAGED_BUILDERS = frozenset({"json", "csv", "parquet", "text", "arrow", "pandas", "imagefolder",
                                "audiofolder", "videofolder", "webdataset", "xml", "sql"})


def _local_data_files(scope: Scope, expr: ast.expr, depth: int = 0) -> bool:
    expr = scope.constant(expr)
    if isinstance(expr, (ast.List, ast.Tuple, ast.Set)) and depth < 3:
        return bool(expr.elts) and all(_local_data_files(scope, e, depth + 1) for e in expr.elts)
    if isinstance(expr, ast.Dict) and depth < 3:
        return bool(expr.values) and all(v is not None and _local_data_files(scope, v, depth + 1)
                                         for v in expr.values)
    if scope.is_local_path(expr):
        return True
    known, value = scope.literal(expr)
    return known and isinstance(value, str) and bool(value) and "://" not in value


def _datasets_packaged_local(scope: Scope, call: ast.Call) -> bool:
    path = argument(call, "path", 0)
    if not isinstance(path, ast.expr):
        return False
    known, builder = scope.literal(path)
    if not (known and builder in _PACKAGED_BUILDERS):
        return False
    given = [argument(call, "data_files", 3), argument(call, "data_dir", 2)]
    present = [g for g in given if isinstance(g, ast.expr)]
    if any(g is _UNKNOWN for g in given) or not present:
        return False
    return all(_local_data_files(scope, g) for g in present)


_CODE_SPECIFIC = {"MM106": _datasets_packaged_local}


def verdict(match: Match, scope: Scope, call: ast.Call, qualname: str,
            allowed: frozenset[str]) -> str | None:
    """None when the call is provably local; otherwise the finding's detail text ('' allowed)."""
    rule = match.rule
    special = _CODE_SPECIFIC.get(rule.code)
    if special is not None and special(scope, call):
        return None
    if rule.category == policy.HTTP:
        return check_http(match, scope, call, qualname, allowed)
    if rule.category == policy.SUBPROCESS:
        return check_subprocess(rule, scope, call)
    if match.via_instance is not None:
        return None
    for lw in rule.local_when:
        if _local_when_holds(scope, call, lw, allowed):
            return None
    return _download_detail(rule, scope, call)
