"""Name and value resolution over one file's ``ast``: imports, aliases, constants.

Flow-insensitive on purpose (one binding table per file): it is what keeps the
checker at the speed of the parser, and real code rarely rebinds an import.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

LOCAL = "<local>"  # qualname prefix of classes defined in the checked file

# Module spellings that are the same library (checked after the raw name).
_CANONICAL = (("tensorflow.keras.", "keras."), ("tf_keras.", "keras."), ("tensorflow.python.keras.", "keras."))

# Calls that return a path object/str built from a path start.
_PATH_FUNCS = frozenset({
    "os.path.join", "os.path.dirname", "os.path.abspath", "os.path.realpath", "os.path.normpath",
    "os.path.expanduser", "os.path.expandvars", "os.fspath", "pathlib.Path", "pathlib.PurePath",
    "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePosixPath", "str",
})
_PATH_ROOTS = frozenset({"os.getcwd", "pathlib.Path.cwd", "pathlib.Path.home", "tempfile.mkdtemp",
                         "tempfile.gettempdir"})
_PATH_METHODS = frozenset({"joinpath", "resolve", "absolute", "expanduser", "with_name", "with_suffix",
                           "parent", "as_posix", "__fspath__"})


def canonical_forms(qualname: str) -> tuple[str, ...]:
    for old, new in _CANONICAL:
        if qualname.startswith(old):
            return (qualname, new + qualname[len(old):])
    return (qualname,)


@dataclass(slots=True)
class ClassInfo:
    name: str
    bases: list[ast.expr]
    own_from_pretrained: bool


@dataclass(slots=True)
class Scope:
    """What the file binds: local name -> qualified name, class, or constant expression."""

    imports: dict[str, str] = field(default_factory=dict)
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    constants: dict[str, ast.expr | None] = field(default_factory=dict)  # None: bound more than once
    instances: dict[str, str] = field(default_factory=dict)  # variable -> qualname of its constructor
    imported_tops: set[str] = field(default_factory=set)

    # --- building -------------------------------------------------------
    def add_import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    self.imports[a.asname] = a.name
                else:
                    top = a.name.split(".", 1)[0]
                    self.imports.setdefault(top, top)
                self.imported_tops.add(a.name.split(".", 1)[0])
            return
        module = node.module or ""
        if node.level:
            module = "." * node.level + module  # relative: never a third-party library
        else:
            self.imported_tops.add(module.split(".", 1)[0])
        for a in node.names:
            if a.name != "*":
                self.imports[a.asname or a.name] = f"{module}.{a.name}" if module else a.name

    def add_class(self, node: ast.ClassDef) -> None:
        own = any(isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == "from_pretrained"
                  for s in node.body)
        self.classes[node.name] = ClassInfo(node.name, list(node.bases), own)

    def add_module_constants(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                self._bind_constant(stmt.targets[0].id, stmt.value)
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                self._bind_constant(stmt.target.id, stmt.value)
            elif isinstance(stmt, ast.ClassDef):
                self.add_class(stmt)

    def _bind_constant(self, name: str, value: ast.expr) -> None:
        self.constants[name] = None if name in self.constants else value

    def add_binding(self, node: ast.stmt) -> None:
        """Remember ``x = requests.Session()`` and ``with httpx.Client() as x`` (instance types)."""
        if isinstance(node, ast.Assign):
            if isinstance(node.value, ast.Call):
                q = self.qualname(node.value.func)
                if q and not q.startswith(LOCAL):
                    for t in node.targets:
                        if isinstance(t, ast.Name):
                            self.instances[t.id] = q
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if isinstance(item.context_expr, ast.Call) and isinstance(item.optional_vars, ast.Name):
                    q = self.qualname(item.context_expr.func)
                    if q and not q.startswith(LOCAL):
                        self.instances[item.optional_vars.id] = q

    # --- resolving ------------------------------------------------------
    def qualname(self, expr: ast.expr, depth: int = 0) -> str | None:
        """Dotted qualified name of a callee or receiver, or None when unknown.

        An instance is named after its constructor: ``requests.Session().get``
        resolves to ``requests.Session.get``.
        """
        if depth > 20:
            return None
        if isinstance(expr, ast.Name):
            n = expr.id
            if n in self.imports:
                return self.imports[n]
            if n in self.classes:
                return f"{LOCAL}.{n}"
            return self.instances.get(n)
        if isinstance(expr, ast.Attribute):
            base = self.qualname(expr.value, depth + 1)
            return f"{base}.{expr.attr}" if base else None
        if isinstance(expr, ast.Call):
            return self.qualname(expr.func, depth + 1)
        return None

    def library_base(self, cls: str, seen: frozenset[str] = frozenset()) -> str | None:
        """Qualified name of the first third-party base of a class defined in this file."""
        info = self.classes.get(cls)
        if info is None or cls in seen:
            return None
        for base in info.bases:
            q = self.qualname(base)
            if q is None:
                continue
            if q.startswith(LOCAL + "."):
                inner = self.library_base(q[len(LOCAL) + 1:], seen | {cls})
                if inner:
                    return inner
            elif not q.startswith("."):
                return q
        return None

    def constant(self, expr: ast.expr, depth: int = 0) -> ast.expr:
        """Follow a module-level constant name to its value expression."""
        while isinstance(expr, ast.Name) and depth < 10:
            value = self.constants.get(expr.id)
            if value is None:
                return expr
            expr, depth = value, depth + 1
        return expr

    def literal(self, expr: ast.expr) -> tuple[bool, object]:
        """(known, value) of a constant expression, following module constants."""
        expr = self.constant(expr)
        if isinstance(expr, ast.Constant):
            return True, expr.value
        return False, None

    def static_prefix(self, expr: ast.expr, depth: int = 0) -> str | None:
        """The text a string expression is known to start with ('' if none is known)."""
        expr = self.constant(expr)
        if depth > 10:
            return ""
        if isinstance(expr, ast.Constant):
            return expr.value if isinstance(expr.value, str) else None
        if isinstance(expr, ast.JoinedStr):
            out = []
            for part in expr.values:
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    out.append(part.value)
                    continue
                if isinstance(part, ast.FormattedValue) and part.format_spec is None:
                    inner = self.static_prefix(part.value, depth + 1)
                    if inner is not None:
                        known = self.literal(part.value)[0]
                        out.append(inner)
                        if known:
                            continue
                break
            return "".join(out)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Mod)):
            return self.static_prefix(expr.left, depth + 1)
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "format":
            return self.static_prefix(expr.func.value, depth + 1)
        return ""

    def is_local_path(self, expr: ast.expr, depth: int = 0) -> bool:
        """True only when the expression provably names a local path: it starts at a path."""
        if depth > 10:
            return False
        expr = self.constant(expr)
        if isinstance(expr, ast.Name):
            return expr.id == "__file__"
        if isinstance(expr, (ast.Constant, ast.JoinedStr)) or (
                isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add)):
            head = expr.values[0] if isinstance(expr, ast.JoinedStr) and expr.values else None
            if isinstance(head, ast.FormattedValue) and self.is_local_path(head.value, depth + 1):
                return True
            if isinstance(expr, ast.BinOp) and self.is_local_path(expr.left, depth + 1):
                return True
            prefix = self.static_prefix(expr)
            return prefix is not None and bool(prefix) and _starts_at_path(prefix)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Div):  # Path(...) / "x"
            return self.is_local_path(expr.left, depth + 1)
        if isinstance(expr, ast.Attribute) and expr.attr in _PATH_METHODS:
            return self.is_local_path(expr.value, depth + 1)
        if isinstance(expr, ast.Call):
            func = expr.func
            if isinstance(func, ast.Attribute) and func.attr in _PATH_METHODS:
                return self.is_local_path(func.value, depth + 1)
            q = self.qualname(func)
            if q in _PATH_ROOTS:
                return True
            if q in _PATH_FUNCS and expr.args:
                return self.is_local_path(expr.args[0], depth + 1)
        return False


def _starts_at_path(text: str) -> bool:
    if text.startswith(("/", "./", "../", "~/", "file://")) or text in (".", "..", "~"):
        return True
    return len(text) > 2 and text[0].isalpha() and text[1] == ":" and text[2] in "\\/"  # C:\ or C:/
