"""flake8 entry point: ``flake8 --select MM`` runs the same rules on flake8's own tree.

flake8 parses each file once and hands plugins the ``ast``; the plugin adds only the
targeted walk (see engine.py). ``# noqa`` and ``# noqa: MM101`` are flake8's own.
flake8 checks files one by one, so a wrapper defined in another file (MM604 across
files) is ``mm-lint``'s alone; wrappers called in the file that defines them are found here too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

from mm_lint.config import Options
from model_manager.version import version as package_version


class Plugin:
    name = "mm-lint"
    version = package_version()
    options: Options = Options()

    def __init__(self, tree: ast.AST, lines: list[str], filename: str = "") -> None:
        self.tree = tree
        self.lines = lines
        self.filename = filename

    @classmethod
    def add_options(cls, manager: Any) -> None:
        manager.add_option("--mm-allowed-hosts", default="", parse_from_config=True,
                           comma_separated_list=True,
                           help="Hosts besides loopback that MM4xx rules accept (also read from "
                                "[tool.mm-lint] allowed-hosts in pyproject.toml).")

    @classmethod
    def parse_options(cls, options: Any) -> None:
        import dataclasses

        from mm_lint import config
        from mm_lint.errors import ModelManagerError

        hosts = {h.strip().lower() for h in (options.mm_allowed_hosts or []) if h.strip()}
        try:
            loaded = config.load().options()
        except ModelManagerError:
            # A broken [tool.mm-lint] is mm-lint's error to report; flake8 then allows only
            # loopback and --mm-allowed-hosts, which can add findings but never hide one.
            loaded = Options()
        cls.options = dataclasses.replace(loaded, allowed_hosts=frozenset(hosts) | loaded.allowed_hosts)

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        from mm_lint import engine
        from mm_lint.project import module_of

        data = "".join(self.lines).encode("utf-8", "surrogatepass")
        if not engine.might_match(data) or not isinstance(self.tree, ast.Module):
            return
        module, package = module_of(self.filename) if self.filename else ("", "")
        result = engine.check_tree(self.tree, data, self.options, module, package, self.filename)
        for hit in result.hits:
            yield hit.line, hit.col, hit.message, type(self)
