"""Name and value resolution over one file's ``ast``: imports, aliases, constants.

Flow-insensitive on purpose (one binding table per file): it is what keeps the
checker at the speed of the parser, and real code rarely rebinds an import.
Values of a function's local names and of ``self.x`` attributes are looked up
lazily, only for a call that would otherwise be a finding, and only a name
bound exactly once in its function (or class) has a value.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from mm_lint import rules
from mm_lint.bindings import attr_values, local_values, parameters

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
                           "parent", "as_posix", "__fspath__", "full_path"})
# Temporary folders: the name a `with` binds (its `.name` for a file), pytest's fixtures, test-case
# helpers (tf.test / keras `self.get_temp_dir()`, absltest `self.create_tempdir()`), tmp_path_factory.
_TEMP_CALLS = frozenset({"tempfile.TemporaryDirectory", "tempfile.NamedTemporaryFile", "tempfile.mktemp"})
_TEMP_FIXTURES = frozenset({"tmp_path", "tmpdir"})
_TEMP_HELPERS = {"self": frozenset({"get_temp_dir", "create_tempdir", "create_tempfile"}),
                 "tmp_path_factory": frozenset({"mktemp", "getbasetemp"}),
                 "tmpdir_factory": frozenset({"mktemp", "getbasetemp"})}


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


Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True, slots=True)
class Context:
    """Where a call sits: its class and function, and the dotted name of the module-level function
    or method holding it ("" when it is nested deeper: nothing outside can call that one)."""

    cls: ast.ClassDef | None = None
    func: Function | None = None
    owner: str = ""


MODULE = Context()


@dataclass(slots=True)
class Scope:
    """What the file binds: local name -> qualified name, class, or constant expression."""

    imports: dict[str, str] = field(default_factory=dict)
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    constants: dict[str, ast.expr | None] = field(default_factory=dict)  # None: bound more than once
    instances: dict[str, str] = field(default_factory=dict)  # variable or self.x -> qualname of its constructor
    imported_tops: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)  # module-level def names
    module: str = ""  # this file's dotted module name ('' when unknown)
    package: str = ""  # the package relative imports start from
    project: dict[str, str] = field(default_factory=dict)  # the project's re-exports: qualname -> target
    context: Context = MODULE
    # module constants only: the callee-agnostic checks look at every collected call's arguments,
    # and reading a function's or class's bindings for each would cost more than the parse
    module_only: bool = False
    _locals: dict[int, dict[str, ast.expr | None]] = field(default_factory=dict)
    _attrs: dict[int, dict[str, ast.expr | None]] = field(default_factory=dict)
    import_aliases: tuple[int, dict[str, tuple[str, ...]]] | None = None  # candidates.py's, by import count

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
            module = self.absolute(node.level, module)
        if not module.startswith("."):
            self.imported_tops.add(module.split(".", 1)[0])
        for a in node.names:
            if a.name != "*":
                self.imports[a.asname or a.name] = f"{module}.{a.name}" if module else a.name

    def absolute(self, level: int, module: str) -> str:
        """The module a relative import names; dots kept when the file's package is unknown."""
        parts = self.package.split(".") if self.package else []
        if level - 1 >= len(parts) or not parts:
            return "." * level + module
        base = ".".join(parts[:len(parts) - (level - 1)])
        return f"{base}.{module}" if module else base

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
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions.add(stmt.name)

    def _bind_constant(self, name: str, value: ast.expr) -> None:
        self.constants[name] = None if name in self.constants else value

    def add_binding(self, node: ast.stmt) -> None:
        """Remember ``x = requests.Session()``, ``self.s = aiohttp.ClientSession()`` and
        ``with httpx.Client() as x`` (instance types), and ``hub = torch.hub`` (an alias)."""
        if isinstance(node, ast.Assign):
            if isinstance(node.value, ast.Call):
                q = self.qualname(node.value.func)
                if q and not q.startswith(LOCAL):
                    for t in node.targets:
                        if isinstance(t, ast.Name):
                            self.instances[t.id] = q
                        elif isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) \
                                and t.value.id in ("self", "cls"):
                            self.instances[f"self.{t.attr}"] = q
            elif isinstance(node.value, (ast.Attribute, ast.Name)):
                q = self.qualname(node.value)
                if q and (q in rules.module_paths() or rules.matcher().match(q) is not None):
                    for t in node.targets:
                        if isinstance(t, ast.Name) and t.id not in self.imports:
                            self.imports[t.id] = q
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
        q: str | None = None
        if isinstance(expr, ast.Name):
            n = expr.id
            if n in self.imports:
                q = self.imports[n]
            elif n in self.classes:
                return f"{LOCAL}.{n}"
            else:
                q = self.instances.get(n)
        elif isinstance(expr, ast.Attribute):
            value = expr.value
            if isinstance(value, ast.Name) and value.id in ("self", "cls") and value.id not in self.imports:
                q = self.instances.get(f"self.{expr.attr}")
            else:
                base = self.qualname(value, depth + 1)
                q = f"{base}.{expr.attr}" if base else None
        elif isinstance(expr, ast.Call):
            q = self.qualname(expr.func, depth + 1)
        if q is not None and self.project and depth == 0:
            q = self.reexported(q)
        return q

    def reexported(self, q: str) -> str:
        """``pkg.AutoModel`` -> ``transformers.AutoModel`` when pkg/__init__.py re-exports it."""
        for _ in range(8):
            head, rest = q, ""
            while head and head not in self.project:
                head, _, tail = head.rpartition(".")
                rest = f"{tail}.{rest}" if rest else tail
            if not head:
                return q
            q = f"{self.project[head]}.{rest}" if rest else self.project[head]
        return q

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
        """Follow a name (local to the call's function, else module-level) or ``self.x`` to its
        one assigned value expression."""
        while depth < 10:
            value = self.value_of(expr)
            if value is None:
                return expr
            expr, depth = value, depth + 1
        return expr

    def value_of(self, expr: ast.expr) -> ast.expr | None:
        ctx = self.context
        if self.module_only:
            return self.constants.get(expr.id) if isinstance(expr, ast.Name) and ctx.func is None else None
        if isinstance(expr, ast.Name):
            if ctx.func is not None:
                table = self._locals.get(id(ctx.func))
                if table is None:
                    table = self._locals[id(ctx.func)] = local_values(ctx.func)
                if expr.id in table:
                    return table[expr.id]
            return self.constants.get(expr.id)
        if isinstance(expr, ast.Attribute) and ctx.cls is not None and isinstance(expr.value, ast.Name) \
                and expr.value.id in ("self", "cls"):
            attrs = self._attrs.get(id(ctx.cls))
            if attrs is None:
                attrs = self._attrs[id(ctx.cls)] = attr_values(ctx.cls)
            return attrs.get(expr.attr)
        return None

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
        bound = self.constant(expr)
        if isinstance(expr, ast.Name) and bound is expr and expr.id in _TEMP_FIXTURES:
            fn = self.context.func
            return fn is not None and any(p.arg == expr.id for p in parameters(fn)) and not any(
                type(n) is ast.Name and n.id == expr.id and type(n.ctx) is ast.Store for n in ast.walk(fn))
        expr = bound
        if isinstance(expr, ast.Name):
            return expr.id == "__file__"
        if isinstance(expr, ast.Attribute) and expr.attr == "name":  # NamedTemporaryFile(...).name
            return self.qualname(self.constant(expr.value)) in _TEMP_CALLS
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
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                    and func.attr in _TEMP_HELPERS.get(func.value.id, ()):
                return True
            q = self.qualname(func)
            if q in _PATH_ROOTS or q in _TEMP_CALLS:
                return True
            if q in _PATH_FUNCS and expr.args:
                return self.is_local_path(expr.args[0], depth + 1)
        return False


def _starts_at_path(text: str) -> bool:
    if text.startswith(("/", "./", "../", "~/", "file://")) or text in (".", "..", "~"):
        return True
    return len(text) > 2 and text[0].isalpha() and text[1] == ":" and text[2] in "\\/"  # C:\ or C:/
