"""Findings per file, keyed by its stat (mtime_ns, size, ctime_ns, inode): unchanged files are not
read again, and an edit that keeps size and mtime still changes ctime.

The whole cache is one JSON file, dropped when the linter version, the catalogue or
the configuration changes (the key says which findings are still valid).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mm_lint.engine import Finding
from model_manager.version import version

_FILE = "mm-lint-cache.json"
Entry = tuple[str, list[list[object]]]


def _code_fingerprint() -> str:
    """The checker's own sources (size, mtime): an edited rule must not reuse old findings."""
    here = Path(__file__).parent
    parts = []
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            st = os.stat(here / name)
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return _digest("|".join(parts))


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _stamp(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ctime_ns}:{st.st_ino}"


class Cache:
    def __init__(self, directory: Path | None, key: str) -> None:
        self.path = directory / _FILE if directory is not None else None
        self.key = f"{version()}:{_code_fingerprint()}:{key}"
        self.entries: dict[str, Entry] = {}
        self.dirty = False
        if self.path is not None:
            try:
                with open(self.path, encoding="utf-8") as fh:
                    data = json.load(fh)
                if data.get("key") == self.key and isinstance(data.get("files"), dict):
                    self.entries = data["files"]
            except (OSError, ValueError):
                pass  # no cache or a broken one: start empty

    def get(self, path: str, st: os.stat_result) -> list[Finding] | None:
        entry = self.entries.get(path)
        if entry is None or entry[0] != _stamp(st):
            return None
        return [Finding(path, *row) for row in entry[1]]  # type: ignore[arg-type]

    def put(self, path: str, st: os.stat_result, findings: list[Finding]) -> None:
        rows = [[f.line, f.col, f.code, f.message, f.fixable] for f in findings]
        self.entries[path] = (_stamp(st), rows)
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            gitignore = self.path.parent / ".gitignore"
            if not gitignore.exists():
                gitignore.write_text("*\n", encoding="utf-8")
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({"key": self.key, "files": self.entries}, fh, separators=(",", ":"))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only tree still gets its findings, only slower next time
