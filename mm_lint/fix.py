"""``--fix``/``--diff``: libcst codemods that add the catalogue's safe keyword.

Only this module imports libcst, and only when a file has a fixable finding.
A fix adds the rule's first LocalWhen as a keyword (``local_files_only=True``,
``weights_only=True``) to the exact call the checker reported; the layout of
the call (one line or one argument per line) is kept.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from mm_lint import rules
from mm_lint.findings import Finding
from mm_lint.rules import by_code


def _targets(source: bytes, findings: Iterable[Finding]) -> dict[tuple[int, int], tuple[str, object]]:
    """(line, character column 0-based) of each fixable call -> (keyword, value)."""
    lines = source.splitlines()
    out: dict[tuple[int, int], tuple[str, object]] = {}
    for f in findings:
        if not f.fixable:
            continue
        rule = by_code().get(f.code)
        lw = rules.fix_kwarg(rule) if rule is not None else None
        if lw is None or f.line > len(lines):
            continue
        col = len(lines[f.line - 1][: f.col - 1].decode("utf-8", "replace"))  # ast counts bytes
        out[(f.line, col)] = (lw.kwarg, lw.value)
    return out


def fix_source(source: bytes, findings: Iterable[Finding]) -> bytes:
    """The source with every safe fix applied (unchanged when there is none)."""
    targets = _targets(source, findings)
    if not targets:
        return source
    try:
        import libcst as cst
        from libcst.metadata import MetadataWrapper, PositionProvider
    except ImportError as exc:
        from mm_lint.errors import LintFixUnavailable

        raise LintFixUnavailable(f"--fix/--diff need libcst: {exc}",
                                hint="pip install 'libcst>=1.1' (the dev extra has it).") from exc

    class AddKeyword(cst.CSTTransformer):
        METADATA_DEPENDENCIES = (PositionProvider,)

        def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
            pos = self.get_metadata(PositionProvider, original).start
            target = targets.get((pos.line, pos.column))
            if target is None:
                return updated
            kwarg, value = target
            if any(a.star == "**" or (a.keyword is not None and a.keyword.value == kwarg) for a in updated.args):
                return updated
            new = cst.Arg(
                value=cst.parse_expression(repr(value)), keyword=cst.Name(kwarg),
                equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                      whitespace_after=cst.SimpleWhitespace("")))
            args = list(updated.args)
            if args:
                last = args[-1]
                if isinstance(last.comma, cst.Comma):  # trailing comma: one argument per line
                    if len(args) > 1 and isinstance(args[-2].comma, cst.Comma):
                        sep = args[-2].comma
                    else:
                        sep = cst.Comma(whitespace_after=updated.whitespace_before_args)
                    args[-1] = last.with_changes(comma=sep)
                    new = new.with_changes(comma=last.comma)
                else:
                    args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            args.append(new)
            return updated.with_changes(args=args)

    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError:
        return source
    fixed = MetadataWrapper(module).visit(AddKeyword())
    return fixed.code.encode(module.encoding) if fixed.code != module.code else source


def unified_diff(path: str, before: bytes, after: bytes) -> str:
    a = before.decode("utf-8", "replace").splitlines(keepends=True)
    b = after.decode("utf-8", "replace").splitlines(keepends=True)
    name = path.replace("\\", "/").lstrip("/")
    return "".join(difflib.unified_diff(a, b, f"a/{name}", f"b/{name}"))
