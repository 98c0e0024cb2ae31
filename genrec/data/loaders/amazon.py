"""Amazon (and Yelp) data: the ``sequences.txt`` folders and the raw Amazon review dumps.

1. ``load_sequences_folder``: ``sequences.txt`` (one line per user: the user id, then item ids,
   oldest first, space-separated) and an optional ``items.jsonl`` (``item_id``, ``title``,
   ``brand``, ``categories``). What happens to bad input:

   - invalid UTF-8, a duplicate user id, bad JSON, a record without ``item_id`` or a duplicate
     ``item_id`` in items.jsonl: DataError naming the file and line (the data is ambiguous or
     broken; guessing would change results silently);
   - blank lines: ignored; a user with no items: skipped with one counted warning (preprocessing
     would drop that user anyway);
   - items in sequences.txt but not in items.jsonl: id-only catalog items, one counted warning.

2. ``load_amazon_reviews``: the review dumps of McAuley et al., 2014 (``reviews_<Cat>_5.json.gz``
   with ``meta_<Cat>.json.gz`` holding Python-literal dicts) or 2018 (``<Cat>_5.json.gz`` with
   ``meta_<Cat>.json.gz`` in JSON). Each user's items are ordered by ``unixReviewTime``; equal
   times keep file order (never id order). Times are kept, so the ``temporal`` split works.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

from genrec.data.catalog import Catalog, Item
from genrec.data.dataset import Dataset, id_only_catalog
from genrec.data.loaders.generic import catalog_with_missing, sequences_from_events
from genrec.data.sequences import Sequences
from genrec.data.loaders.jsonl import iter_json_objects
from genrec.errors import DataError

# -- the sequences.txt layout ------------------------------------------------------------------


def read_sequences_txt(path: str | Path) -> tuple[dict[str, list[str]], int]:
    """Users' item sequences from ``sequences.txt``; returns (sequences, users skipped as empty)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    seqs: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    empty = 0
    with open(path, "rb") as f:  # bytes, so a decoding error can name its line
        for n, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"not UTF-8 (byte {e.start}: {e.reason})", path=path, line=n) from None
            parts = text.split()
            if not parts:
                continue
            user, items = parts[0], parts[1:]
            if user in first_line:
                raise DataError(f"duplicate user id {user!r} (first on line {first_line[user]})", path=path, line=n)
            first_line[user] = n
            if not items:
                empty += 1
                continue
            seqs[user] = items
    if empty:
        warnings.warn(f"{path}: skipped {empty} users with no items", stacklevel=3)
    if not seqs:
        raise DataError("no user has any items", path=path)
    return seqs, empty


def read_items_jsonl(path: str | Path) -> list[Item]:
    """Items from ``items.jsonl``; bad records raise a DataError with the line."""
    path = Path(path)
    out: list[Item] = []
    seen: dict[str, int] = {}
    for n, d in iter_json_objects(path):
        iid = d.get("item_id")
        if iid is None or not str(iid).strip():
            raise DataError("missing item_id", path=path, line=n, field="item_id")
        iid = str(iid).strip()
        if iid in seen:
            raise DataError(f"duplicate item_id {iid!r} (first on line {seen[iid]})", path=path, line=n,
                            field="item_id")
        seen[iid] = n
        cats = d.get("categories") or ()
        if isinstance(cats, str):
            cats = [cats]
        if not isinstance(cats, (list, tuple)):
            raise DataError(f"categories must be a list, got {type(cats).__name__}", path=path, line=n,
                            field="categories")
        title = d.get("title")
        brand = d.get("brand")
        out.append(Item(id=iid, title="" if title is None else str(title),
                        brand=None if brand is None else str(brand),
                        categories=tuple(str(c) for c in cats if c is not None)))
    return out


def load_sequences_folder(folder: str | Path, name: str = "amazon", *, sequences_file: str = "sequences.txt",
                          items_file: str = "items.jsonl") -> Dataset:
    """A ``sequences.txt`` folder (Amazon Beauty/Sports, Yelp) as a raw Dataset (no timestamps)."""
    folder = Path(folder)
    seq_path = folder / sequences_file
    if not seq_path.is_file():
        raise DataError(f"missing {sequences_file} (looked in {folder})", path=seq_path)
    seqs, empty = read_sequences_txt(seq_path)
    used = {i for s in seqs.values() for i in s}
    items_path = folder / items_file
    n_missing = 0
    if items_path.is_file():
        catalog, n_missing = catalog_with_missing(read_items_jsonl(items_path), used, source=str(items_path),
                                                  what=items_file)
    else:
        catalog = id_only_catalog(sorted(used))
        catalog.source = str(seq_path)
    note = f"loaded {seq_path}: order as in the file (no timestamps)"
    info = {"source": str(folder), "has_times": False, "has_titles": items_path.is_file(),
            "users_skipped_empty": empty, "items_missing_metadata": n_missing}
    return Dataset(name, catalog, Sequences(seqs, None, [note]), info)


# -- the raw review dumps (2014 and 2018) ------------------------------------------------------

_SUFFIXES = (".json.gz", ".json")  # not .jsonl: items.jsonl of the sequences layout is no review file


def _open_text(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


# 2014 metadata lines start with the asin key: {'asin': '0000031852', ...}. Only a leading key is
# trusted (an "asin" later in the line could sit inside a title); 2018 lines are JSON, parsed fast.
_ASIN = re.compile(r"""^\s*\{\s*["']asin["']\s*:\s*["']([^"'\\]+)["']""")


def _records(path: Path, skip: Callable[[str], bool] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, dict)`` per non-blank line: JSON, or a Python literal (2014 metadata).

    ``ast.literal_eval`` parses literals only; it never runs code, unlike the ``eval`` the dataset's
    own page suggests. ``skip(text)`` true: the line is not parsed (a cheap pre-filter).
    """
    try:
        with _open_text(path) as f:
            for n, raw in enumerate(f, 1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"not UTF-8 ({e.reason})", path=path, line=n) from None
                if not text.strip() or (skip is not None and skip(text)):
                    continue
                try:
                    d = json.loads(text)
                except json.JSONDecodeError:
                    try:
                        d = ast.literal_eval(text.strip())
                    except (ValueError, SyntaxError, MemoryError, RecursionError) as e:
                        raise DataError(f"neither JSON nor a Python literal ({type(e).__name__})",
                                        path=path, line=n) from None
                if not isinstance(d, dict):
                    raise DataError(f"expected an object, got {type(d).__name__}", path=path, line=n)
                yield n, d
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError; truncated gzip is EOFError
        if isinstance(e, FileNotFoundError):
            raise DataError("file not found", path=path) from None
        raise DataError(f"cannot read ({e})", path=path) from None


def find_review_files(folder: str | Path, category: str | None = None) -> tuple[Path, Path | None]:
    """The reviews file and (if present) the metadata file for ``category`` in ``folder``.

    Looks for 2014 names (``reviews_<Cat>_5.json.gz``, ``reviews_<Cat>.json.gz``) and 2018 names
    (``<Cat>_5.json.gz``, ``<Cat>.json.gz``), gzipped or not; 5-core files are preferred. Without
    ``category`` the folder must hold reviews of exactly one category.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("not a folder", path=folder)
    found: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        cat = _review_category(p.name)
        if cat is not None and p.is_file():
            found.setdefault(cat, []).append(p)
    if category is None:
        if len(found) != 1:
            what = (f"reviews of several categories ({', '.join(sorted(found))}); pass category=NAME"
                    if found else "no Amazon review file (reviews_<Cat>_5.json.gz from 2014 or <Cat>_5.json.gz "
                                  "from 2018, with meta_<Cat>.json.gz for titles)")
            raise DataError(what, path=folder)
        category = next(iter(found))
    if category not in found:
        raise DataError(f"no reviews file for category {category!r} (looked for reviews_{category}_5.json.gz, "
                        f"{category}_5.json.gz and the same without _5 or .gz); categories here: "
                        f"{', '.join(sorted(found)) or 'none'}", path=folder)
    files = sorted(found[category], key=lambda p: ("_5." not in p.name, p.name))
    meta = next((folder / f"meta_{category}{s}" for s in _SUFFIXES if (folder / f"meta_{category}{s}").is_file()),
                None)
    return files[0], meta


def _review_category(filename: str) -> str | None:
    if filename.startswith("."):  # .genrec-download.json and other hidden files
        return None
    for s in _SUFFIXES:
        if filename.endswith(s):
            stem = filename[: -len(s)]
            break
    else:
        return None
    if stem.startswith("meta_"):
        return None
    stem = stem[len("reviews_"):] if stem.startswith("reviews_") else stem
    stem = re.sub(r"_5$", "", stem)
    return stem or None


def _path_below_top(raw: object, category: str, *, path: Path, line: int) -> tuple[str, ...]:
    """Category path below the top category.

    2014 ``categories`` is a list of paths (lists); the first path whose top matches the file's
    category is used (else the first path). 2018 ``category`` is one path. The top entry
    ("Beauty") is dropped either way.
    """
    if not raw:
        return ()
    if not isinstance(raw, (list, tuple)):
        raise DataError(f"categories must be a list, got {type(raw).__name__}", path=path, line=line,
                        field="categories")
    if all(isinstance(c, (list, tuple)) for c in raw):
        paths = [list(c) for c in raw if c]
        if not paths:
            return ()
        want = category.replace("_", " ").lower()
        chosen = next((p for p in paths if str(p[0]).lower().startswith(want.split(" ")[0])), paths[0])
    else:
        chosen = list(raw)
    return tuple(str(c) for c in chosen[1:] if c is not None)


def load_amazon_reviews(folder: str | Path, name: str = "amazon-reviews", category: str | None = None, *,
                        reviews_file: str | Path | None = None, meta_file: str | Path | None = None,
                        stream: bool = True) -> Dataset:
    """Amazon review dumps (2014 or 2018) as a raw Dataset with timestamps.

    Files are found by :func:`find_review_files` unless ``reviews_file``/``meta_file`` are given.
    A review without ``reviewerID``, ``asin`` or ``unixReviewTime`` is a DataError with its line.
    Duplicate ``asin`` records in the metadata (the 2018 dumps have some) keep the first, with a
    counted warning; only items that occur in the reviews enter the catalog.
    ``stream`` (default): the reviews are read line by line into compact integer arrays
    (:class:`~genrec.data.loaders.events.EventLog`); ``stream=False`` holds Python lists of every
    row (the reference the tests compare with; same Dataset).
    """
    folder = Path(folder)
    if reviews_file is None:
        rpath, mpath = find_review_files(folder, category)
        if meta_file is not None:
            mpath = Path(meta_file)
    else:
        rpath, mpath = Path(reviews_file), None if meta_file is None else Path(meta_file)
    cat = category or _review_category(rpath.name) or ""
    from genrec.data.loaders.events import EventLog

    log = EventLog(with_times=True) if stream else None
    users: list[str] = []
    items: list[str] = []
    times: list[float] = []
    for n, d in _records(rpath):
        for fld in ("reviewerID", "asin", "unixReviewTime"):
            if d.get(fld) in (None, ""):
                raise DataError("missing field", path=rpath, line=n, field=fld)
        try:
            t = float(d["unixReviewTime"])
        except (TypeError, ValueError):
            raise DataError(f"not a number: {d['unixReviewTime']!r}", path=rpath, line=n,
                            field="unixReviewTime") from None
        if log is not None:
            log.add(str(d["reviewerID"]), str(d["asin"]), t)
        else:
            users.append(str(d["reviewerID"]))
            items.append(str(d["asin"]))
            times.append(t)
    count = len(log) if log is not None else len(users)
    if not count:
        raise DataError("no reviews", path=rpath)
    note = f"loaded {rpath}: {count:,} reviews ordered by unixReviewTime, ties in file order"
    if log is not None:
        seqs, used = log.sequences(note), log.item_ids()
    else:
        seqs, used = sequences_from_events(users, items, times, note), set(items)
    n_missing = len(used)
    if mpath is not None:
        known: dict[str, Item] = {}
        dups = 0
        def unused(text: str) -> bool:  # the full metadata files list every item of a category:
            m = _ASIN.match(text)          # skip the ones nobody reviewed without parsing them
            return m is not None and m.group(1) not in used

        for n, d in _records(mpath, unused):
            asin = d.get("asin")
            if asin in (None, ""):
                raise DataError("missing field", path=mpath, line=n, field="asin")
            asin = str(asin)
            if asin not in used:
                continue
            if asin in known:
                dups += 1
                continue
            cats = d["categories"] if "categories" in d else d.get("category")
            title, brand = d.get("title"), d.get("brand")
            known[asin] = Item(id=asin, title="" if title is None else str(title),
                               brand=None if brand in (None, "") else str(brand),
                               categories=_path_below_top(cats, cat, path=mpath, line=n))
        if dups:
            warnings.warn(f"{mpath}: {dups} repeated asin records ignored (first one kept)", stacklevel=2)
        catalog, n_missing = catalog_with_missing(known.values(), used, source=str(mpath), what=mpath.name)
    else:
        warnings.warn(f"{folder}: no meta_{cat}.json.gz next to {rpath.name}: items have ids only, no titles",
                      stacklevel=2)
        catalog = Catalog((Item(id=i) for i in sorted(used)), source=str(rpath))
    info = {"source": str(rpath), "meta": None if mpath is None else str(mpath), "category": cat,
            "has_times": True, "items_missing_metadata": n_missing}
    return Dataset(name, catalog, seqs, info)


__all__ = ["load_sequences_folder", "load_amazon_reviews", "find_review_files", "read_sequences_txt",
           "read_items_jsonl"]
