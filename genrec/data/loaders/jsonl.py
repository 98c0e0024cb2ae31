"""Reading JSON-lines files record by record, with errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from genrec.errors import DataError


def iter_json_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line; a DataError names the line of a
    record that is not UTF-8, not JSON, or not a JSON object."""
    path = Path(path)
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"not UTF-8 (byte {e.start}: {e.reason})", path=path, line=n) from None
            if not text.strip():
                continue
            try:
                d = json.loads(text)
            except json.JSONDecodeError as e:
                raise DataError(f"bad JSON ({e.msg}, column {e.colno})", path=path, line=n) from None
            if not isinstance(d, dict):
                raise DataError(f"expected a JSON object, got {type(d).__name__}", path=path, line=n)
            yield n, d
