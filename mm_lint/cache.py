"""Findings per file, keyed by its stat (mtime_ns, size, ctime_ns, inode): unchanged files are not
read again, and an edit that keeps size and mtime still changes ctime.

Each entry also keeps the file's part of the project index (project.py). A file checked a second
time, knowing the index, keeps those findings and the wrappers that look found (callers passing
their parameter on to another file's wrapper), valid while the index's fingerprint holds.
The whole cache is one JSON file, dropped when the linter version, the catalogue or the
configuration changes (the key says which findings are still valid).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mm_lint.findings import Finding
from mm_lint.project import Summary
from model_manager.version import version

_FILE = "mm-lint-cache.json"


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
        # path -> [stamp, finding rows, summary or None, index fingerprint, second-pass rows, wrapper rows]
        self.entries: dict[str, list[object]] = {}
        self.index = ""  # the project index's fingerprint when the second-look entries were written
        self.dirty = False
        if self.path is not None:
            try:
                with open(self.path, encoding="utf-8") as fh:
                    data = json.load(fh)
                if data.get("key") == self.key and isinstance(data.get("files"), dict):
                    self.entries = data["files"]
                    self.index = str(data.get("index", ""))
            except (OSError, ValueError):
                pass  # no cache or a broken one: start empty

    def _entry(self, path: str, st: os.stat_result) -> list[object] | None:
        entry = self.entries.get(path)
        return entry if entry is not None and len(entry) == 6 and entry[0] == _stamp(st) else None

    def get(self, path: str, st: os.stat_result) -> tuple[list[Finding], Summary | None] | None:
        entry = self._entry(path, st)
        if entry is None:
            return None
        return [Finding.from_row(path, row) for row in entry[1]], entry[2]  # type: ignore[attr-defined,return-value]

    def put(self, path: str, st: os.stat_result, findings: list[Finding], summary: Summary | None) -> None:
        self.entries[path] = [_stamp(st), [f.row() for f in findings], summary, "", [], []]
        self.dirty = True

    def get_second(self, path: str, st: os.stat_result, fingerprint: str
                   ) -> tuple[list[Finding], list[list[object]]] | None:
        """The second look's findings and the wrappers it found, when taken under ``fingerprint``."""
        entry = self._entry(path, st)
        if entry is None or not fingerprint or entry[3] != fingerprint:
            return None
        return [Finding.from_row(path, row) for row in entry[4]], entry[5]  # type: ignore[attr-defined,return-value]

    def put_second(self, path: str, st: os.stat_result, fingerprint: str, findings: list[Finding],
                   wrappers: list[list[object]]) -> None:
        entry = self._entry(path, st)
        if entry is None:
            return
        entry[3], entry[4], entry[5] = fingerprint, [f.row() for f in findings], wrappers
        self.dirty = True

    def set_index(self, fingerprint: str) -> None:
        if fingerprint != self.index:
            self.index, self.dirty = fingerprint, True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            gitignore = self.path.parent / ".gitignore"
            if not gitignore.exists():
                gitignore.write_text("*\n", encoding="utf-8")
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            text = json.dumps({"key": self.key, "index": self.index, "files": self.entries}, separators=(",", ":"))
            with open(tmp, "w", encoding="utf-8") as fh:  # dumps: the C encoder (dump to a file is pure Python)
                fh.write(text)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only tree still gets its findings, only slower next time
