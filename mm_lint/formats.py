"""Output formats: text, json, sarif (2.1.0), github (workflow commands)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from mm_lint.findings import Finding
from model_manager.version import version

FORMATS = ("text", "json", "sarif", "github")


def render(findings: Sequence[Finding], fmt: str) -> str:
    if fmt == "text":
        return "".join(f"{f.path}:{f.line}:{f.col}: {f.message}\n" for f in findings)
    if fmt == "json":
        return json.dumps([f.to_dict() for f in findings], indent=2) + "\n"
    if fmt == "github":
        return "".join(
            f"::error file={_gh(f.path)},line={f.line},col={f.col},title={f.code}::{_gh(f.message)}\n"
            for f in findings)
    if fmt == "sarif":
        return json.dumps(sarif(findings), indent=2) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


def _gh(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def sarif(findings: Sequence[Finding]) -> dict[str, object]:
    from mm_lint import rules

    descriptors = [
        {"id": code, "name": code, "shortDescription": {"text": text}}
        for code, text in rules.INTERNAL_CODES.items()
    ] + [
        {"id": r.code, "name": rules.title(r), "shortDescription": {"text": r.why},
         "help": {"text": r.fix}, "properties": {"library": r.library, "category": r.category}}
        for r in rules.all_rules()
    ]
    index = {d["id"]: i for i, d in enumerate(descriptors)}
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": index.get(f.code, -1),
            "level": "error",
            "message": {"text": f.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": f.path.replace("\\", "/")},
                "region": {"startLine": f.line, "startColumn": f.col},
            }}],
        }
        for f in findings
    ]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "mm-lint", "version": version(), "rules": descriptors}},
            "results": results,
        }],
    }
