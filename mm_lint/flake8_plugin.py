"""flake8 entry point: ``flake8 --select MM`` runs the same rules on flake8's own tree.

flake8 parses each file once and hands plugins the ``ast``; the plugin adds only the
targeted walk (see engine.py). ``# noqa`` and ``# noqa: MM101`` are flake8's own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

from model_manager.version import version as package_version


class Plugin:
    name = "mm-lint"
    version = package_version()
    allowed_hosts: frozenset[str] = frozenset()

    def __init__(self, tree: ast.AST, lines: list[str]) -> None:
        self.tree = tree
        self.lines = lines

    @classmethod
    def add_options(cls, manager: Any) -> None:
        manager.add_option("--mm-allowed-hosts", default="", parse_from_config=True,
                           comma_separated_list=True,
                           help="Hosts besides loopback that MM4xx rules accept (also read from "
                                "[tool.mm-lint] allowed-hosts in pyproject.toml).")

    @classmethod
    def parse_options(cls, options: Any) -> None:
        hosts = {h.strip().lower() for h in (options.mm_allowed_hosts or []) if h.strip()}
        from mm_lint import config
        from model_manager.errors import ModelManagerError

        try:
            hosts |= config.load().allowed_hosts
        except ModelManagerError:
            # A broken [tool.mm-lint] is mm-lint's error to report; flake8 then allows only
            # loopback and --mm-allowed-hosts, which can add findings but never hide one.
            pass
        cls.allowed_hosts = frozenset(hosts)

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        from mm_lint import engine

        data = "".join(self.lines).encode("utf-8", "surrogatepass")
        if not engine.might_match(data) or not isinstance(self.tree, ast.Module):
            return
        for line, col, message, _fixable in engine.check_tree(self.tree, data, self.allowed_hosts):
            yield line, col, message, type(self)
