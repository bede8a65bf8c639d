"""``mm-lint licenses``: every model a profile names has a licensed, sourced inventory row.

The inventory is the Markdown table in ``docs/MODEL_LICENSES.md`` (see docs/mm-lint.md#licences)
with at least the columns model_name, model_version, licence (or license) and
source. A profile is the YAML/JSON mapping of docs/mapping.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from mm_lint.errors import LICENSE_INVENTORY_INVALID, InvalidModelSpec, LicenseInventoryInvalid
from mm_lint.findings import Finding

INVENTORY_INVALID = LICENSE_INVENTORY_INVALID

MISSING_ROW = "MM901"
NO_LICENCE = "MM902"
NO_SOURCE = "MM903"
CODES = {
    MISSING_ROW: "a model named in a profile has no row in the licence inventory",
    NO_LICENCE: "an inventory row has an empty licence",
    NO_SOURCE: "an inventory row has an empty source",
}

_COLUMNS = {
    "name": ("model_name", "model", "name"),
    "version": ("model_version", "version"),
    "licence": ("licence", "license"),
    "source": ("source", "url", "origin", "source_url"),
}
_EMPTY = {"", "-", "—", "?", "tbd", "todo", "unknown", "n/a"}


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    name: str
    versions: tuple[str, ...]
    licence: str
    source: str


def _cells(line: str) -> list[str]:
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    return [c.strip().strip("`").strip() for c in re.split(r"(?<!\\)\|", text)]


def read_inventory(path: Path) -> list[Row]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LicenseInventoryInvalid(f"{path}: cannot read the licence inventory: {exc}",
                                hint="Pass --inventory the path of docs/MODEL_LICENSES.md.") from exc
    lines = text.splitlines()
    rows: list[Row] = []
    found_table = False
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.lstrip().startswith("|") and re.fullmatch(r"\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*", nxt):
            header = [c.lower().replace(" ", "_") for c in _cells(line)]
            cols = {key: next((header.index(a) for a in aliases if a in header), None)
                    for key, aliases in _COLUMNS.items()}
            i += 2
            if cols["name"] is None or cols["licence"] is None:
                continue  # some other table
            found_table = True
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                cells = _cells(lines[i])

                def cell(key: str, cells: list[str] = cells, cols: dict[str, int | None] = cols) -> str:
                    idx = cols[key]
                    return cells[idx] if idx is not None and idx < len(cells) else ""

                versions = tuple(v.strip().strip("`\"'") for v in cell("version").split(",") if v.strip())
                rows.append(Row(i + 1, cell("name"), versions, cell("licence"), cell("source")))
                i += 1
            continue
        i += 1
    if not found_table:
        raise LicenseInventoryInvalid(f"{path}: no Markdown table with model_name and licence columns",
            field="table",
            hint="Add a table with the header | model_name | model_version | licence | source |.")
    return rows


def profile_models(path: Path) -> list[tuple[str, str, int]]:
    """(model_name, model_version, line) of every (component, role) in a profile."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidModelSpec(f"{path}: cannot read the profile: {exc}",
                                hint="Pass the path of a YAML or JSON model profile.") from exc
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidModelSpec(f"{path}: not valid JSON: {exc}", hint="Fix the profile's syntax.") from exc
    else:
        from model_manager.mapping.yaml_reader import parse_yaml  # the runtime's reader: no duplicate keys, no tags

        data = parse_yaml(text, source=str(path))
    if isinstance(data, dict) and "resolved_model_mapping" in data:
        data = data["resolved_model_mapping"]
    components = data.get("components") if isinstance(data, dict) else None
    if not isinstance(components, dict):
        raise InvalidModelSpec(f"{path}: no `components` mapping", field="components",
                                hint="A profile maps components -> roles -> model entries (docs/mapping.md).")
    out = []
    lines = text.splitlines()
    seen: dict[str, int] = {}  # the k-th entry naming a model sits on its k-th `model_name:` line
    for comp, roles in components.items():
        if not isinstance(roles, dict):
            raise InvalidModelSpec(f"{path}: component {comp!r} is not a mapping of roles",
                                    component=str(comp), hint="See docs/mapping.md for the shape.")
        for role, entry in roles.items():
            name = entry.get("model_name") if isinstance(entry, dict) else None
            version = entry.get("model_version") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not name or version is None:
                raise InvalidModelSpec(f"{path}: entry lacks model_name or model_version",
                                        component=str(comp), role=str(role), field="model_name",
                                        hint="Every entry pins model_name and model_version.")
            seen[name] = seen.get(name, 0) + 1
            hits = [n for n, t in enumerate(lines, 1) if re.search(rf"model_name\W+{re.escape(name)}\b", t)]
            line = hits[seen[name] - 1] if len(hits) >= seen[name] else (hits[0] if hits else 1)
            out.append((name, str(version), line))
    return out


def check(inventory: Path, profiles: list[Path], display: dict[Path, str] | None = None) -> list[Finding]:
    show = (display or {}).get
    inv_name = show(inventory) or str(inventory)
    rows = read_inventory(inventory)
    findings: list[Finding] = []
    used_rows: set[int] = set()
    for profile in profiles:
        for name, version, line in profile_models(profile):
            row = next((r for r in rows if r.name == name and (version in r.versions)), None)
            if row is None:
                findings.append(Finding(show(profile) or str(profile), line, 1, MISSING_ROW,
                                        f"{MISSING_ROW} model {name!r} version {version!r} has no row in "
                                        f"{inv_name}. Fix: add | {name} | {version} | <licence> | <source> |"))
                continue
            if row.line in used_rows:
                continue
            used_rows.add(row.line)
            if row.licence.lower() in _EMPTY:
                findings.append(Finding(inv_name, row.line, 1, NO_LICENCE,
                                        f"{NO_LICENCE} {name!r} {version!r} has no licence. "
                                        "Fix: name the licence (SPDX id where there is one)."))
            if row.source.lower() in _EMPTY:
                findings.append(Finding(inv_name, row.line, 1, NO_SOURCE,
                                        f"{NO_SOURCE} {name!r} {version!r} has no source. "
                                        "Fix: link where the weights and their licence come from."))
    # Rows with an empty licence are findings even when no profile uses them.
    for row in rows:
        if row.line not in used_rows and row.name and row.licence.lower() in _EMPTY:
            findings.append(Finding(inv_name, row.line, 1, NO_LICENCE,
                                    f"{NO_LICENCE} {row.name!r} has no licence. "
                                    "Fix: name the licence (SPDX id where there is one)."))
    return findings
