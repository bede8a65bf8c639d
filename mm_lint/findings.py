"""What a check reports: a record whose code is data, never parsed back out of the message."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True, slots=True)
class Hit:
    """One finding inside a parsed file, before ``# noqa`` and before it has a path."""

    line: int
    col: int  # 0-based, as ast gives it
    code: str
    message: str  # starts with the code (flake8 requires it)
    fixable: bool = False
    via: str = ""  # MM604: the code of the download inside the wrapper


@dataclass(frozen=True, slots=True)
class Finding:
    path: str
    line: int
    col: int  # 1-based
    code: str
    message: str
    fixable: bool = False
    # MM604: the code of the download inside the wrapper. A noqa comment or an ignore of that code
    # silences the call too (a file allowed to reach loopback Triton may call its helpers).
    via: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def at(self, path: str) -> Finding:
        return replace(self, path=path)

    def row(self) -> list[object]:
        """The cache's form (the path is the cache entry's key)."""
        return [self.line, self.col, self.code, self.message, self.fixable, self.via]

    @classmethod
    def from_row(cls, path: str, row: list[object]) -> Finding:
        line, col, code, message, fixable, via = row
        return cls(path, int(line), int(col), str(code), str(message), bool(fixable),  # type: ignore[call-overload]
                   str(via))
