"""Batch recommendation: a users file in, one ranked list per user out (Parquet or JSON lines),
in one process or on an engine (:class:`genrec.eval.ray_engine.RayEngine`).

Users file: one user per line, ``USER<TAB>ITEM,ITEM,...`` (the history, oldest first, item ids),
or JSON lines ``{"user": "u1", "history": ["i1", "i2"]}``. Blank lines and lines starting with
``#`` are skipped. A user given twice, an empty user id or a malformed line is an error naming
the file and line. Items the model does not know are handled by the model (a note per user).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from genrec.errors import GenrecError

OUT_SUFFIXES = (".parquet", ".jsonl")


class UsersFileError(GenrecError):
    """A users file line that cannot be read."""


def read_users_file(path: str | Path) -> list[tuple[str, list[str]]]:
    """``(user, history)`` per line of ``path``, in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--users-file {path}: no such file")
    out: list[tuple[str, list[str]]] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = f"{path}:{no}"
            if line.lstrip().startswith("{"):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise UsersFileError(f"{where}: not valid JSON ({e.msg})") from None
                user, hist = row.get("user"), row.get("history")
                if not isinstance(hist, list) or not all(isinstance(i, (str, int)) for i in hist):
                    raise UsersFileError(f"{where}: field 'history' must be a list of item ids")
                history = [str(i) for i in hist]
            else:
                if "\t" not in line:
                    raise UsersFileError(f"{where}: expected USER<TAB>ITEM,ITEM,... (or a JSON object)")
                user, raw = line.split("\t", 1)
                history = [i.strip() for i in raw.split(",") if i.strip()]
            user = "" if user is None else str(user).strip()
            if not user:
                raise UsersFileError(f"{where}: empty user id")
            if user in seen:
                raise UsersFileError(f"{where}: user {user!r} already given on line {seen[user]}")
            seen[user] = no
            out.append((user, history))
    if not out:
        raise UsersFileError(f"{path}: no users")
    return out


def recommend_users(model, users: Sequence[tuple[str, list[str]]], k: int, *, engine=None,
                    batch_size: int = 512, exclude_history: bool = True) -> list[dict[str, Any]]:
    """One row per user, in input order: ``user, items, scores, notes``."""
    chunks = [[h for _, h in users[s:s + batch_size]] for s in range(0, len(users), batch_size)]
    if engine is not None:
        results = engine.recommend_chunks(model, chunks, k=k, exclude_history=exclude_history)
    else:
        results = [model.recommend(c, k=k, exclude_history=exclude_history) for c in chunks]
    rows: list[dict[str, Any]] = []
    for recs in results:
        for items, scores, notes in zip(recs.items, recs.scores, recs.notes):
            user = users[len(rows)][0]
            rows.append({"user": user, "items": list(items), "scores": [float(x) for x in scores],
                         "notes": list(notes)})
    if len(rows) != len(users):
        raise GenrecError(f"got recommendations for {len(rows)} of {len(users)} users")
    return rows


def write_rows(rows: list[dict[str, Any]], out: str | Path) -> Path:
    """Parquet (pyarrow; list columns) or JSON lines, by the suffix of ``out``."""
    out = Path(out)
    if out.suffix not in OUT_SUFFIXES:
        raise ValueError(f"--out {out}: must end in {' or '.join(OUT_SUFFIXES)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if out.suffix == ".jsonl":
        with tmp.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({"user": pa.array([r["user"] for r in rows], pa.string()),
                          "items": pa.array([r["items"] for r in rows], pa.list_(pa.string())),
                          "scores": pa.array([r["scores"] for r in rows], pa.list_(pa.float64())),
                          "notes": pa.array([r["notes"] for r in rows], pa.list_(pa.string()))})
        pq.write_table(table, tmp)
    tmp.replace(out)
    return out
