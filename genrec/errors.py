"""Errors with a location: bad input names the file, line or field it came from."""

from __future__ import annotations


class GenrecError(Exception):
    """Base class of genrec's own errors."""


class DataError(GenrecError, ValueError):
    """Malformed input data. Names where the problem is."""

    def __init__(self, message: str, *, path: object | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        self.path, self.line, self.field = path, line, field
        super().__init__(f"{': '.join([', '.join(where), message]) if where else message}")


class UnknownNameError(GenrecError, KeyError):
    """An unknown model or dataset name; lists the known ones."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(sorted(known))}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]


class ConfigError(DataError):
    """A bad run configuration (``genrec bench``): names the file and the field."""
