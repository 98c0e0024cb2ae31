"""Your own interactions: a CSV/TSV or Parquet table of (user, item[, time]) plus an optional items table.

``load_interactions(path, items=None, user_col="user", item_col="item", time_col="timestamp")``
reads one interaction per row. Sequences are ordered by time, ties (and files without a time
column) by file order, never by id. Times may be numbers (Unix seconds) or ISO 8601 dates.

The items table (CSV, TSV, JSON lines or Parquet) has an id column (``item_id``, ``id`` or the
interactions' ``item_col``) and optionally ``title``, ``brand``, ``categories`` (a list, or a
``|``-separated string) and ``text``; other columns go to ``Item.extra``. Items that occur in the
interactions but not in the items table become id-only items, with a counted warning.

The registry name ``generic`` loads a folder (``--data-dir``) holding ``interactions.csv``,
``.tsv`` or ``.parquet`` and optionally ``items.csv``, ``.tsv``, ``.jsonl`` or ``.parquet``.
"""

from __future__ import annotations

import csv
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Sequence

from genrec.data.catalog import Catalog, Item
from genrec.data.dataset import Dataset
from genrec.data.sequences import Sequences
from genrec.data.loaders.jsonl import iter_json_objects
from genrec.errors import DataError, GenrecError

INTERACTION_FILES = ("interactions.csv", "interactions.tsv", "interactions.parquet")
ITEM_FILES = ("items.jsonl", "items.csv", "items.tsv", "items.parquet")
_ID_COLUMNS = ("item_id", "id")


# -- shared by the loaders ---------------------------------------------------------------------

def sequences_from_events(users: Sequence[str], items: Sequence[str], times: Sequence[float] | None,
                          note: str) -> Sequences:
    """Group events by user, each user's items ordered by time with ties kept in file order.

    ``users``, ``items`` and ``times`` are parallel, in file order. Python's sort is stable, so
    sorting each user's events by time alone keeps equal times in the order the file had them.
    Users appear in the order of their first event.
    """
    by_user: dict[str, list[int]] = {}
    for n, u in enumerate(users):
        by_user.setdefault(u, []).append(n)
    seqs: dict[str, list[str]] = {}
    tms: dict[str, list[float]] | None = None if times is None else {}
    for u, rows in by_user.items():
        if times is not None and tms is not None:
            rows.sort(key=times.__getitem__)
            tms[u] = [float(times[r]) for r in rows]
        seqs[u] = [items[r] for r in rows]
    return Sequences(seqs, tms, [note])


def catalog_with_missing(known: Iterable[Item], used: Iterable[str], *, source: str,
                         what: str) -> tuple[Catalog, int]:
    """A Catalog of ``known`` items plus id-only items for ``used`` ids missing from it.

    Warns once with the count of missing items (``what`` names the file they are missing from).
    """
    known = list(known)
    have = {it.id for it in known}
    missing = sorted({i for i in used if i not in have})
    if missing:
        warnings.warn(f"{source}: {len(missing)} item ids occur in the interactions but not in {what} "
                      f"(e.g. {', '.join(missing[:3])}); they get id-only catalog entries", stacklevel=3)
    return Catalog(known + [Item(id=i) for i in missing], source=source), len(missing)


def parse_time(raw: object, *, path: object, line: int, field: str) -> float:
    """Unix seconds from a number or an ISO 8601 date/time string (naive times are taken as UTC)."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, datetime):
        return (raw if raw.tzinfo else raw.replace(tzinfo=timezone.utc)).timestamp()
    s = "" if raw is None else str(raw).strip()
    if not s:
        raise DataError("empty time", path=path, line=line, field=field)
    try:
        return float(s)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"time {s!r} is neither a number nor an ISO 8601 date", path=path, line=line,
                        field=field) from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


# -- reading tables ----------------------------------------------------------------------------

def _sep_for(path: Path, sep: str | None) -> str:
    if sep is not None:
        return sep
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    return ","


def _read_rows(path: Path, sep: str | None = None) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """Columns and ``(line_number, row)`` pairs of a CSV/TSV, JSON-lines or Parquet file."""
    if not path.is_file():
        raise DataError("file not found", path=path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path)
    if suffix in (".jsonl", ".json", ".ndjson"):
        return _read_jsonl(path)
    return _read_csv(path, _sep_for(path, sep))


def _utf8_lines(f: IO[bytes], path: Path) -> Iterator[str]:
    """Decode line by line, so invalid UTF-8 is reported with its line number."""
    for n, raw in enumerate(f, 1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"not UTF-8 (byte {e.start}: {e.reason})", path=path, line=n) from None


def _read_csv(path: Path, sep: str) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    f = open(path, "rb")
    reader = csv.reader(_utf8_lines(f, path), delimiter=sep)
    try:
        header = next(reader)
    except StopIteration:
        f.close()
        raise DataError("empty file: expected a header line with column names", path=path, line=1) from None
    except (DataError, csv.Error):
        f.close()
        raise
    header = [h.strip().lstrip("\ufeff") for h in header]

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        with f:
            try:
                for rec in reader:
                    if not rec or (len(rec) == 1 and not rec[0].strip()):
                        continue
                    if len(rec) != len(header):
                        raise DataError(f"{len(rec)} fields, but the header has {len(header)}",
                                        path=path, line=reader.line_num)
                    yield reader.line_num, dict(zip(header, rec))
            except csv.Error as e:
                raise DataError(f"malformed CSV ({e})", path=path, line=reader.line_num) from None

    return header, rows()


def _read_jsonl(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    records: list[tuple[int, dict[str, Any]]] = []
    columns: dict[str, None] = {}
    for n, d in iter_json_objects(path):
        columns.update(dict.fromkeys(d))
        records.append((n, d))
    return list(columns), iter(records)


def _read_parquet(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the environment
        raise GenrecError(f"{path}: reading Parquet needs pyarrow: pip install 'genrec[parquet]'") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataError(f"cannot read Parquet ({e})", path=path) from None
    cols = pf.schema_arrow.names

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        n = 0
        try:  # record batches: memory bounded by one batch, not the file
            for batch in pf.iter_batches(batch_size=65536):
                data = batch.to_pydict()
                for j in range(batch.num_rows):
                    n += 1
                    yield n, {c: data[c][j] for c in cols}  # "line" = 1-based row number
        except OSError as e:
            raise DataError(f"cannot read Parquet ({e})", path=path, line=n + 1) from None

    return cols, rows()


def _need(columns: list[str], col: str, path: Path, role: str) -> None:
    if col not in columns:
        raise DataError(f"no {role} column {col!r}; the file has columns: {', '.join(columns) or '(none)'}",
                        path=path, field=col)


def _id(raw: object, *, path: Path, line: int, field: str) -> str:
    if raw is None:
        raise DataError("missing value", path=path, line=line, field=field)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)  # Parquet/pandas write integer ids as floats when a column had nulls
    s = str(raw).strip()
    if not s:
        raise DataError("empty value", path=path, line=line, field=field)
    return s


# -- public ------------------------------------------------------------------------------------

def load_interactions(path: str | Path, items: str | Path | None = None, *, user_col: str = "user",
                      item_col: str = "item", time_col: str | None = "timestamp", sep: str | None = None,
                      name: str | None = None, stream: bool = True) -> Dataset:
    """Load interactions (CSV/TSV/Parquet) and an optional items table into a raw Dataset.

    ``time_col=None`` ignores times. The default ``"timestamp"`` is optional: without that column
    sequences keep file order. A column name you pass explicitly must exist. Unknown columns raise
    a DataError listing the columns the file has. ``sep`` defaults to tab for ``.tsv``, else comma.
    ``stream`` (default): rows (CSV lines, Parquet record batches) go into compact integer arrays
    (:class:`~genrec.data.loaders.events.EventLog`); ``stream=False`` keeps Python lists of every
    row (the reference the tests compare with; same Dataset).
    """
    from genrec.data.loaders.events import EventLog

    path = Path(path)
    columns, rows = _read_rows(path, sep)
    _need(columns, user_col, path, "user")
    _need(columns, item_col, path, "item")
    if time_col is not None and time_col not in columns:
        if time_col != "timestamp":
            _need(columns, time_col, path, "time")
        time_col = None
    users: list[str] = []
    its: list[str] = []
    times: list[float] | None = [] if time_col else None
    log = EventLog(with_times=time_col is not None) if stream else None
    for n, row in rows:
        u = _id(row[user_col], path=path, line=n, field=user_col)
        i = _id(row[item_col], path=path, line=n, field=item_col)
        t = parse_time(row[time_col], path=path, line=n, field=time_col) if time_col is not None else None
        if log is not None:
            log.add(u, i, t)
            continue
        users.append(u)
        its.append(i)
        if times is not None and t is not None:
            times.append(t)
    count = len(log) if log is not None else len(users)
    if not count:
        raise DataError("no interactions (the file has a header but no rows)", path=path)
    order = f"ordered by {time_col!r}, ties in file order" if time_col else "in file order (no time column)"
    note = f"loaded {path}: {count:,} interactions, {order}"
    if log is not None:
        seqs, used = log.sequences(note), log.item_ids()
    else:
        seqs, used = sequences_from_events(users, its, times, note), set(its)
    if items is not None:
        known = load_items_table(items, item_col=item_col)
        catalog, n_missing = catalog_with_missing(known, used, source=str(items), what=Path(items).name)
    else:
        catalog, n_missing = Catalog((Item(id=i) for i in sorted(used)), source=str(path)), 0
    info = {"source": str(path), "items_file": None if items is None else str(items),
            "has_times": times is not None, "items_missing_metadata": n_missing}
    return Dataset(name or path.stem, catalog, seqs, info)


def load_items_table(path: str | Path, *, item_col: str = "item", sep: str | None = None) -> list[Item]:
    """Items from a CSV/TSV/JSONL/Parquet table; duplicate ids are a DataError naming both lines."""
    path = Path(path)
    columns, rows = _read_rows(path, sep)
    id_col = next((c for c in (*_ID_COLUMNS, item_col) if c in columns), None)
    if id_col is None:
        raise DataError(f"no item id column (looked for {', '.join(dict.fromkeys((*_ID_COLUMNS, item_col)))}); "
                        f"the file has columns: {', '.join(columns) or '(none)'}", path=path)
    known = {id_col, "title", "brand", "categories", "category", "text"}
    out: list[Item] = []
    seen: dict[str, int] = {}
    for n, row in rows:
        iid = _id(row.get(id_col), path=path, line=n, field=id_col)
        if iid in seen:
            raise DataError(f"duplicate item id {iid!r} (first on line {seen[iid]})", path=path, line=n, field=id_col)
        seen[iid] = n
        cats = row.get("categories", row.get("category"))
        out.append(Item(id=iid, title=_text(row.get("title")), brand=_opt_text(row.get("brand")),
                        categories=split_categories(cats, path=path, line=n), text=_text(row.get("text")),
                        extra={k: v for k, v in row.items() if k not in known and v not in (None, "")}))
    return out


def split_categories(raw: object, *, path: object = None, line: int | None = None) -> tuple[str, ...]:
    """Categories from a list, or a ``|``-separated string; None/empty give ()."""
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        return tuple(c.strip() for c in raw.split("|") if c.strip())
    if isinstance(raw, (list, tuple)):
        return tuple(str(c).strip() for c in raw if c is not None and str(c).strip())
    raise DataError(f"categories must be a list or a '|'-separated string, got {type(raw).__name__}",
                    path=path, line=line, field="categories")


def _text(raw: object) -> str:
    return "" if raw is None else str(raw)


def _opt_text(raw: object) -> str | None:
    return None if raw is None or str(raw).strip() == "" else str(raw)


def find_one(folder: Path, names: Sequence[str]) -> Path | None:
    """The first of ``names`` that is a file in ``folder``."""
    return next((folder / n for n in names if (folder / n).is_file()), None)


def load_generic_folder(folder: str | Path, name: str = "generic", **kw: Any) -> Dataset:
    """The ``generic`` dataset: ``interactions.{csv,tsv,parquet}`` and optional ``items.*`` in ``folder``.

    Keyword options (``user_col``, ``item_col``, ``time_col``, ``sep``) go to :func:`load_interactions`.
    """
    folder = Path(folder)
    inter = find_one(folder, INTERACTION_FILES)
    if inter is None:
        raise DataError(f"no interactions file; expected one of {', '.join(INTERACTION_FILES)}", path=folder)
    return load_interactions(inter, find_one(folder, ITEM_FILES), name=name, **kw)
