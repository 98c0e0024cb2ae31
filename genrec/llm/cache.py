"""Record-replay cache of LLM calls in one SQLite file.

A row per answered item (one prompt's generations, one prompt's continuation scores, one
prompt's next-token scores), keyed by the SHA-256 of (backend, model, operation, prompt,
parameters) as canonical JSON. Modes:

- ``off``: no cache (nothing is read or written);
- ``record``: answer from the cache when the key is there, else compute and store;
- ``replay``: answer only from the cache; a missing key raises :class:`CacheMiss` (runs that
  must not touch a model or a server, e.g. tests and reproductions without the server).

The file is ``<cache root>/llm/calls.sqlite`` unless a path is given; :attr:`LLMCache.path` says
where it writes and opening it logs the path. API keys are never part of a key or a row.
SQLite by hand (the standard library) because the rows are a handful of columns and the
well-kept HTTP caches cache HTTP responses, not local model calls.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from genrec.llm.types import CacheMiss
from genrec.paths import cache_root

log = logging.getLogger(__name__)

MODES = ("off", "record", "replay")
_ALIASES = {"replay-only": "replay", "replay_only": "replay", "none": "off", "disabled": "off"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    operation TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    cost REAL NOT NULL,
    created_at TEXT NOT NULL
)"""


def default_cache_path() -> Path:
    """``<cache root>/llm/calls.sqlite`` (:func:`genrec.paths.cache_root`)."""
    return cache_root() / "llm" / "calls.sqlite"


def normalise_mode(mode: str) -> str:
    m = _ALIASES.get(str(mode).strip().lower(), str(mode).strip().lower())
    if m not in MODES:
        raise ValueError(f"LLM cache mode must be one of {', '.join(MODES)} (or replay-only); got {mode!r}")
    return m


def call_key(backend: str, model: str, operation: str, request: Any) -> str:
    """SHA-256 of the canonical JSON of what determines the answer."""
    blob = json.dumps([backend, model, operation, request], sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class LLMCache:
    """The SQLite record-replay cache (see the module docstring). Thread-safe."""

    def __init__(self, path: str | Path | None = None, mode: str = "record") -> None:
        self.mode = normalise_mode(mode)
        if self.mode == "off":
            raise ValueError("an LLMCache in mode 'off' does nothing; pass cache=None or cache='off' to the backend")
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        if self.mode == "replay" and not self.path.is_file():
            raise CacheMiss(f"replay-only LLM cache: {self.path} does not exist; record it first (cache mode 'record')")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
        log.info("LLM record-replay cache (%s): %s", self.mode, self.path)

    def __repr__(self) -> str:
        return f"LLMCache({str(self.path)!r}, mode={self.mode!r})"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored row as a dict (``response`` decoded), or None."""
        with self._lock:
            row = self._db.execute("SELECT response, tokens_in, tokens_out, latency_s, cost FROM calls WHERE key = ?",
                                   (key,)).fetchone()
        if row is None:
            return None
        return {"response": json.loads(row[0]), "tokens_in": row[1], "tokens_out": row[2], "latency_s": row[3],
                "cost": row[4]}

    def put(self, key: str, *, backend: str, model: str, operation: str, request: Any, response: Any,
            tokens_in: int, tokens_out: int, latency_s: float, cost: float) -> None:
        if self.mode != "record":
            return
        row = (key, backend, model, operation, json.dumps(request, ensure_ascii=False),
               json.dumps(response, ensure_ascii=False), int(tokens_in), int(tokens_out), float(latency_s),
               float(cost), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def resolve_cache(cache: "LLMCache | str | None") -> LLMCache | None:
    """``None``/``"off"`` -> no cache; ``"record"``/``"replay"`` -> the default file; an
    :class:`LLMCache` as is."""
    if cache is None or isinstance(cache, LLMCache):
        return cache
    mode = normalise_mode(cache)
    return None if mode == "off" else LLMCache(mode=mode)
