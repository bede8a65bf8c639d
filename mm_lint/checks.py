"""Decide whether one matched call is local: the catalogue's LocalWhen, URLs, argv."""

from __future__ import annotations

import ast
from urllib.parse import urlsplit

from mm_lint import signals
from mm_lint.config import Options
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
# Building these sends nothing: only a URL keyword (base_url=) is judged; their requests are checked.
_CLIENT_CLASSES = frozenset({"Session", "Client", "AsyncClient", "ClientSession", "PoolManager",
                             "ProxyManager", "build_opener", "FTP", "FTP_TLS", "Request"})
_REQUEST = "urllib.request.Request"


def _star_dict(scope: Scope | None, expr: ast.expr) -> dict[str, ast.expr] | None:
    """The keys of a ``**`` argument the checker can read: ``**{"k": v}``, ``**dict(k=v)``, or a
    name bound once to one of those."""
    if scope is not None:
        expr = scope.constant(expr)
    if isinstance(expr, ast.Dict) and all(isinstance(k, ast.Constant) and isinstance(k.value, str)
                                          for k in expr.keys):
        return {k.value: v for k, v in zip(expr.keys, expr.values, strict=True)}  # type: ignore[union-attr]
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "dict" \
            and not expr.args and all(kw.arg for kw in expr.keywords):
        return {kw.arg: kw.value for kw in expr.keywords}  # type: ignore[misc]
    return None


def argument(call: ast.Call, kwarg: str | None, positional: int | None, scope: Scope | None = None) -> object:
    """The expression passed for a parameter, ``_ABSENT``, or ``_UNKNOWN``."""
    has_star_kw = False
    for kw in call.keywords:
        if kw.arg is None:
            known = _star_dict(scope, kw.value) if kwarg else None
            if known is None:
                has_star_kw = True
            elif kwarg in known:
                return known[kwarg]
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


def remote_text(scope: Scope, expr: ast.expr) -> bool:
    """The expression provably starts with a remote or model-zoo scheme."""
    prefix = (scope.static_prefix(expr) or "").lower()
    return prefix.startswith(signals.REMOTE_URL_SCHEMES + signals.MODEL_URL_SCHEMES)


def _local_when_holds(scope: Scope, call: ast.Call, lw: policy.LocalWhen, allowed: frozenset[str]) -> bool:
    arg = argument(call, lw.kwarg, lw.positional, scope)
    if arg is _ABSENT or arg is _UNKNOWN:
        # Hidden in **kwargs: benefit of the doubt only where the default is local anyway.
        return lw.absent_is_local or lw.value == policy.NOT_URL
    assert isinstance(arg, ast.expr)
    if lw.value == policy.PATH:
        return scope.is_local_path(arg)
    if lw.value == policy.LOOPBACK_URL:
        return url_verdict(scope, arg, allowed) is None
    if lw.value == policy.NOT_URL:
        return not remote_text(scope, arg)
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
    if match.via_instance is not None and match.via_instance != "connect" \
            and qualname.rsplit(".", 2)[-2] in _HOST_IN_CONSTRUCTOR:
        return None  # the host was checked where the connection was built
    arg = url_argument(match, call, qualname, scope)
    if arg is None:
        return None  # building a client sends nothing; its requests are checked
    if not isinstance(arg, ast.expr):
        return "a URL the checker cannot read"
    request = scope.constant(arg)
    if isinstance(request, ast.Call) and scope.qualname(request.func) == _REQUEST:
        inner = argument(request, "url", 0, scope)  # urlopen(req) after req = Request(url): judge url
        if not isinstance(inner, ast.expr):
            return "a URL the checker cannot read"
        arg = inner
    return url_verdict(scope, arg, allowed)


def url_argument(match: Match, call: ast.Call, qualname: str, scope: Scope | None = None) -> object:
    """The URL argument of an HTTP call (None: a client being built with no URL given)."""
    if match.via_instance is not None:
        pos = HTTP_VERBS[match.via_instance]
        arg = argument(call, "url", pos, scope)
        if arg is _ABSENT and pos:
            arg = argument(call, "url", 0, scope)  # session.request(url=...) style variants
        return arg
    last = qualname.rsplit(".", 1)[-1]
    for kw in URL_KWARGS:
        given = argument(call, kw, None, scope)
        if given is not _ABSENT and given is not _UNKNOWN:
            return given
    if last in _CLIENT_CLASSES and last not in _HOST_IN_CONSTRUCTOR:
        # positional arguments of a client class are handlers or pool sizes, not a URL
        # (aiohttp's ClientSession takes base_url first)
        if last == "ClientSession" and call.args and not isinstance(call.args[0], ast.Starred):
            return call.args[0]
        return None
    return argument(call, None, 1 if qualname in METHOD_FIRST else 0, scope)


def _readable_text(scope: Scope, expr: ast.expr) -> str | None:
    """A command string, or its beginning up to the last whole word the checker can read
    (``f"git clone {url}"`` -> ``"git clone"``); None when nothing is readable."""
    known, value = scope.literal(expr)
    if known:
        return value if isinstance(value, str) else None
    expr = scope.constant(expr)
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "format":
        template = scope.literal(expr.func.value)
        prefix = template[1].split("{", 1)[0] if template[0] and isinstance(template[1], str) else ""
    elif isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod):
        template = scope.literal(expr.left)
        prefix = template[1].split("%", 1)[0] if template[0] and isinstance(template[1], str) else ""
    else:
        prefix = scope.static_prefix(expr) or ""
    head, _, _ = prefix.rpartition(" ")
    return head.strip() or None


def _words(scope: Scope, expr: ast.expr) -> list[str | None] | None:
    """Words of a list/tuple, ``shlex.split(text)`` or ``text.split()``."""
    if isinstance(expr, (ast.List, ast.Tuple)):
        words: list[str | None] = []
        for elt in expr.elts:
            if isinstance(elt, ast.Starred):
                break  # how many words it holds is unknown: judge only what comes before
            known, value = scope.literal(elt)
            words.append(value if known and isinstance(value, str) else None)
        return words or None
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "split" \
            and not expr.args and not expr.keywords:  # "git clone {}".format(u).split(), f"...".split()
        text = _readable_text(scope, expr.func.value)
        return list(text.split()) if text else None
    if isinstance(expr, ast.Call) and expr.args and scope.qualname(expr.func) == "shlex.split":
        text = _readable_text(scope, expr.args[0])
        return list(text.split()) if text else None
    return None


def _command(scope: Scope, call: ast.Call) -> list[str | None] | str | None:
    """The command as words (None: a word the checker cannot read), the text of a shell
    command, or None when the checker cannot read the command at all."""
    arg = argument(call, "args", 0, scope)
    if not isinstance(arg, ast.expr):
        return None
    arg = scope.constant(arg)
    words = _words(scope, arg)
    if words is not None:
        return words
    if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr == "join" \
            and arg.args and isinstance(arg.func.value, ast.Constant):
        joined = _words(scope, scope.constant(arg.args[0]))  # " ".join([...]) for a shell
        if joined is not None:
            return joined
    return _readable_text(scope, arg)


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


def _backbone_not_downloaded(scope: Scope, call: ast.Call) -> bool:
    """torchvision drops weights_backbone when weights is given (or legacy pretrained=True), and
    pretrained_backbone=False is the legacy weights_backbone=None."""
    weights = argument(call, "weights", None, scope)
    if isinstance(weights, ast.expr):
        known, value = scope.literal(weights)
        if (known and value is not None) or isinstance(scope.constant(weights), (ast.Attribute, ast.Call)):
            return True
    pretrained = argument(call, "pretrained", None, scope)
    if isinstance(pretrained, ast.expr) and scope.literal(pretrained)[1] is True:
        return True
    legacy = argument(call, "pretrained_backbone", None, scope)
    return isinstance(legacy, ast.expr) and scope.literal(legacy) == (True, False)


_CODE_SPECIFIC = {"MM106": _datasets_packaged_local, "MM310": _backbone_not_downloaded}


def verdict(match: Match, scope: Scope, call: ast.Call, qualname: str, options: Options) -> str | None:
    """None when the call is provably local; otherwise the finding's detail text ('' allowed)."""
    rule = match.rule
    allowed = options.allowed_hosts
    special = _CODE_SPECIFIC.get(rule.code)
    if special is not None and special(scope, call):
        return None
    if rule.category == policy.HTTP:
        return check_http(match, scope, call, qualname, allowed)
    if rule.category == policy.SUBPROCESS:
        return check_subprocess(rule, scope, call)
    if match.via_instance is not None:
        return None
    if rule.category == policy.UNSAFE_LOAD:
        weights_only = argument(call, "weights_only", None, scope)
        given = scope.literal(weights_only) if isinstance(weights_only, ast.expr) else (False, None)
        if options.torch_before_2_6:  # left out means False before torch 2.6
            return None if given == (True, True) else "" if weights_only is _ABSENT else "weights_only is not True"
        # None is the default (True since 2.6); only an explicit False (or 0) unpickles
        return "weights_only=False" if given[0] and given[1] is not None and not given[1] else None
    for lw in rule.local_when:
        if _local_when_holds(scope, call, lw, allowed):
            return None
    return _download_detail(rule, scope, call)


def source_argument(match: Match, scope: Scope, call: ast.Call, qualname: str) -> ast.expr | None:
    """The argument that decides what a matched call fetches (for the wrapper index)."""
    rule = match.rule
    if rule.category == policy.HTTP:
        arg = url_argument(match, call, qualname, scope)
    elif rule.category == policy.SUBPROCESS:
        arg = argument(call, "args", 0, scope)
    else:
        arg = next((a for lw in rule.local_when
                    if isinstance(a := argument(call, lw.kwarg, lw.positional, scope), ast.expr)), None)
        if arg is None:
            arg = next((a for kw in SOURCE_KWARGS if isinstance(a := argument(call, kw, None, scope), ast.expr)),
                       None) or argument(call, None, 0, scope)
    return arg if isinstance(arg, ast.expr) else None


#: keywords that name what a download function fetches, when no catalogue LocalWhen does
SOURCE_KWARGS = ("url", "repo_id", "model_id", "pretrained_model_name_or_path", "model_name_or_path", "name",
                 "path", "filename", "checkpoint", "uri", "origin", "key")
