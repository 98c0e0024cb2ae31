"""MovieLens (GroupLens) in its three published layouts, detected from the files in the folder.

- 100K: ``u.data`` (user, item, rating, time; tab-separated), ``u.item`` (``|``-separated,
  ISO-8859-1: id, title, release date, video date, IMDb URL, 19 genre flags), ``u.genre``
  (genre names in flag order), ``u.user`` (id, age, gender, occupation, zip).
- 1M (and 10M): ``ratings.dat``, ``movies.dat`` (``id::title::Genre|Genre``), ``users.dat``;
  ``::``-separated, latin-1.
- CSV (latest, latest-small, 20M, 25M, 32M): ``ratings.csv`` and ``movies.csv``
  (``movieId,title,genres``, proper CSV quoting, genres ``|``-separated).

Ratings become implicit interactions: every rating is kept by default (``min_rating=None``);
``min_rating=4`` keeps ratings >= 4 only (the common "liked" reading). Each user's items are
ordered by timestamp; equal timestamps keep file order (never id order). Timestamps are kept in
``Sequences.times`` so the ``temporal`` split works. Titles keep the year ("Toy Story (1995)").
Files are decoded as UTF-8 and, where that fails, as latin-1 (GroupLens's documented encoding
for 100K and 1M), so a re-encoded copy loads too. User attributes (100K ``u.user``, 1M
``users.dat``) are put in ``Dataset.info["user_features"]``. The explicit ratings of the kept
interactions are in ``Dataset.ratings`` (``{user: {item: rating}}``, :mod:`genrec.data.ratings`)
for files of up to :data:`MAX_RATINGS_KEPT` rows (100K, 1M, latest-small); larger files load
without them (a Python dict of 25M ratings would take gigabytes), as ``info["ratings_kept"]`` says.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterator

import numpy as np

from genrec.data.catalog import Item
from genrec.data.dataset import Dataset
from genrec.data.loaders.generic import catalog_with_missing
from genrec.data.sequences import Sequences
from genrec.errors import DataError

GENRES_100K = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
               "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
               "War", "Western")
# ML-1M README: occupation and age codes of users.dat.
OCCUPATIONS_1M = ("other", "academic/educator", "artist", "clerical/admin", "college/grad student",
                  "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
                  "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist", "self-employed",
                  "technician/engineer", "tradesman/craftsman", "unemployed", "writer")
AGES_1M = {"1": "Under 18", "18": "18-24", "25": "25-34", "35": "35-44", "45": "45-49", "50": "50-55", "56": "56+"}

MAX_RATINGS_KEPT = 2_000_000
LAYOUTS = {"100k": ("u.data", "u.item"), "1m": ("ratings.dat", "movies.dat"), "csv": ("ratings.csv", "movies.csv")}


def detect_layout(folder: str | Path) -> str:
    """``"100k"``, ``"1m"`` or ``"csv"``, from the rating file present in ``folder``."""
    folder = Path(folder)
    for layout, (ratings, _) in LAYOUTS.items():
        if (folder / ratings).is_file():
            return layout
    have = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    raise DataError("no MovieLens ratings file: expected u.data (100K), ratings.dat (1M/10M) or ratings.csv "
                    f"(latest/20M/25M); the folder has: {', '.join(have[:20]) or 'nothing'}", path=folder)


def read_text(path: Path) -> str:
    """The file's text: UTF-8, else latin-1 (every byte string is valid latin-1)."""
    if not path.is_file():
        raise DataError(f"file not found (looked in {path.parent})", path=path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    # split on "\n" only: str.splitlines() would also split at \x85 and \x1c, which are characters
    # in latin-1 text
    for n, line in enumerate(read_text(path).split("\n"), 1):
        line = line.rstrip("\r")
        if line.strip():
            yield n, line


def _int(s: str, path: Path, n: int, field: str) -> int:
    try:
        return int(s.strip())
    except ValueError:
        raise DataError(f"not an integer: {s!r}", path=path, line=n, field=field) from None


def _float(s: str, path: Path, n: int, field: str) -> float:
    try:
        return float(s.strip())
    except ValueError:
        raise DataError(f"not a number: {s!r}", path=path, line=n, field=field) from None


def _ratings(path: Path, sep: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, ratings, times) of a 100K/1M ratings file, in file order."""
    users: list[int] = []
    items: list[int] = []
    ratings: list[float] = []
    times: list[int] = []
    names = ("user", "item", "rating", "timestamp")
    for n, line in _lines(path):
        f = line.split(sep)
        if len(f) != 4:
            raise DataError(f"expected 4 {sep!r}-separated fields (user, item, rating, timestamp), got {len(f)}",
                            path=path, line=n)
        users.append(_int(f[0], path, n, names[0]))
        items.append(_int(f[1], path, n, names[1]))
        ratings.append(_float(f[2], path, n, names[2]))
        times.append(_int(f[3], path, n, names[3]))
    return np.array(users, np.int64), np.array(items, np.int64), np.array(ratings), np.array(times, np.int64)


def _group(users: np.ndarray, items: np.ndarray, times: np.ndarray, note: str) -> Sequences:
    """Each user's items ordered by time, equal times in file order (np.lexsort is a stable sort).

    Vectorised (rather than :func:`sequences_from_events`) because the 20M/25M files have tens of
    millions of rows; users come out in numeric id order, item id strings are shared objects.
    """
    order = np.lexsort((times, users))
    u, i, t = users[order], items[order], times[order].astype(float)
    uniq, inv = np.unique(i, return_inverse=True)
    names = np.array([str(x) for x in uniq.tolist()], dtype=object)[inv]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(u)) + 1)).tolist()
    ends = starts[1:] + [len(u)]
    seqs: dict[str, list[str]] = {}
    tms: dict[str, list[float]] = {}
    for a, b in zip(starts, ends):
        key = str(int(u[a]))
        seqs[key] = names[a:b].tolist()
        tms[key] = t[a:b].tolist()
    return Sequences(seqs, tms, [note])


def _csv_rows(path: Path, need: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    try:
        header = [h.strip().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        raise DataError("empty file: expected a header line", path=path, line=1) from None
    missing = [c for c in need if c not in header]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}; the file has columns: {', '.join(header)}",
                        path=path, line=1)
    for rec in reader:
        if not rec:
            continue
        if len(rec) != len(header):
            raise DataError(f"{len(rec)} fields, but the header has {len(header)}", path=path, line=reader.line_num)
        yield reader.line_num, dict(zip(header, rec))


def _csv_ratings(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, ratings, times) of ratings.csv, in file order.

    pyarrow's CSV reader when installed (ML-25M has 25M rows: seconds instead of minutes); if it
    is missing or rejects the file, the csv module, whose errors name the line.
    """
    need = ("userId", "movieId", "rating", "timestamp")
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        types = {"userId": pa.int64(), "movieId": pa.int64(), "rating": pa.float64(), "timestamp": pa.int64()}
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(include_columns=list(need),
                                                                          column_types=types))
        if all(table.column(c).null_count == 0 for c in need):
            return tuple(table.column(c).to_numpy() for c in need)
    except (ImportError, KeyError, ValueError, OSError):  # pa.ArrowInvalid is a ValueError
        pass
    cols: dict[str, list] = {c: [] for c in need}
    for n, row in _csv_rows(path, need):
        cols["userId"].append(_int(row["userId"], path, n, "userId"))
        cols["movieId"].append(_int(row["movieId"], path, n, "movieId"))
        cols["rating"].append(_float(row["rating"], path, n, "rating"))
        cols["timestamp"].append(_int(row["timestamp"], path, n, "timestamp"))
    return (np.array(cols["userId"], np.int64), np.array(cols["movieId"], np.int64), np.array(cols["rating"]),
            np.array(cols["timestamp"], np.int64))


def _genre_names(folder: Path) -> tuple[str, ...]:
    path = folder / "u.genre"
    if not path.is_file():
        return GENRES_100K
    pairs = []
    for n, line in _lines(path):
        name, _, idx = line.rpartition("|")
        pairs.append((_int(idx, path, n, "index"), name))
    return tuple(name for _, name in sorted(pairs))


def _items_100k(folder: Path) -> list[Item]:
    path = folder / "u.item"
    genres = _genre_names(folder)
    out = []
    for n, line in _lines(path):
        f = line.split("|")
        if len(f) != 5 + len(genres):
            raise DataError(f"expected {5 + len(genres)} '|'-separated fields (id, title, release date, video date, "
                            f"IMDb URL, {len(genres)} genre flags), got {len(f)}", path=path, line=n)
        flags = f[5:]
        if any(x not in ("0", "1") for x in flags):
            raise DataError("genre flags must be 0 or 1", path=path, line=n)
        cats = tuple(g for g, x in zip(genres, flags) if x == "1")
        extra = {k: v for k, v in (("release_date", f[2]), ("video_release_date", f[3]), ("imdb_url", f[4])) if v}
        out.append(Item(id=str(_int(f[0], path, n, "movie id")), title=f[1], categories=cats, extra=extra))
    return out


def _users_100k(folder: Path) -> dict[str, dict]:
    path = folder / "u.user"
    if not path.is_file():
        return {}
    out = {}
    for n, line in _lines(path):
        f = line.split("|")
        if len(f) != 5:
            raise DataError(f"expected 5 '|'-separated fields (id, age, gender, occupation, zip), got {len(f)}",
                            path=path, line=n)
        out[str(_int(f[0], path, n, "user id"))] = {"age": _int(f[1], path, n, "age"), "gender": f[2],
                                                   "occupation": f[3], "zip": f[4]}
    return out


def _items_1m(folder: Path) -> list[Item]:
    path = folder / "movies.dat"
    out = []
    for n, line in _lines(path):
        f = line.split("::")
        if len(f) != 3:
            raise DataError(f"expected 3 '::'-separated fields (id, title, genres), got {len(f)}", path=path, line=n)
        out.append(Item(id=str(_int(f[0], path, n, "MovieID")), title=f[1], categories=_genres(f[2])))
    return out


def _users_1m(folder: Path) -> dict[str, dict]:
    path = folder / "users.dat"
    if not path.is_file():
        return {}
    out = {}
    for n, line in _lines(path):
        f = line.split("::")
        if len(f) != 5:
            raise DataError(f"expected 5 '::'-separated fields (id, gender, age, occupation, zip), got {len(f)}",
                            path=path, line=n)
        occ = _int(f[3], path, n, "Occupation")
        out[str(_int(f[0], path, n, "UserID"))] = {
            "gender": f[1], "age": AGES_1M.get(f[2].strip(), f[2]),
            "occupation": OCCUPATIONS_1M[occ] if 0 <= occ < len(OCCUPATIONS_1M) else str(occ), "zip": f[4]}
    return out


def _items_csv(folder: Path) -> list[Item]:
    path = folder / "movies.csv"
    return [Item(id=str(_int(row["movieId"], path, n, "movieId")), title=row["title"], categories=_genres(row["genres"]))
            for n, row in _csv_rows(path, ("movieId", "title", "genres"))]


def _genres(raw: str) -> tuple[str, ...]:
    return tuple(g.strip() for g in raw.split("|") if g.strip() and g.strip() != "(no genres listed)")


def load_movielens(folder: str | Path, name: str = "movielens", min_rating: float | None = None) -> Dataset:
    """Load a MovieLens folder (layout detected) as a raw Dataset with timestamps.

    ``min_rating``: keep only ratings >= this value (default: keep all ratings).
    """
    folder = Path(folder)
    layout = detect_layout(folder)
    ratings_file, items_file = LAYOUTS[layout]
    for f in (ratings_file, items_file):
        if not (folder / f).is_file():
            raise DataError(f"missing {f} (looked in {folder}; the {layout} layout needs "
                            f"{' and '.join(LAYOUTS[layout])})", path=folder / f)
    rpath = folder / ratings_file
    if layout == "100k":
        users, items, ratings, times = _ratings(rpath, "\t")
        known, user_features = _items_100k(folder), _users_100k(folder)
    elif layout == "1m":
        users, items, ratings, times = _ratings(rpath, "::")
        known, user_features = _items_1m(folder), _users_1m(folder)
    else:
        users, items, ratings, times = _csv_ratings(rpath)
        known, user_features = _items_csv(folder), {}
    dropped = 0
    if min_rating is not None:
        keep = ratings >= min_rating
        dropped = int((~keep).sum())
        users, items, ratings, times = users[keep], items[keep], ratings[keep], times[keep]
    if not len(users):
        raise DataError("no ratings" + (f" >= {min_rating}" if min_rating is not None else ""), path=rpath)
    kept = "all ratings" if min_rating is None else f"ratings >= {min_rating} ({dropped:,} dropped)"
    seqs = _group(users, items, times, f"loaded {rpath}: {kept} as interactions, "
                                       f"ordered by timestamp, ties in file order")
    catalog, n_missing = catalog_with_missing(known, {str(x) for x in np.unique(items).tolist()}, source=str(folder / items_file), what=items_file)
    info = {"source": str(folder), "layout": layout, "has_times": True, "min_rating": min_rating,
            "ratings_dropped": dropped, "items_missing_metadata": n_missing,
            "user_features": {u: user_features[u] for u in seqs.items if u in user_features},
            "ratings_kept": len(users) <= MAX_RATINGS_KEPT}
    table = None
    if info["ratings_kept"]:
        from genrec.data.ratings import ratings_table

        table = ratings_table(users.tolist(), items.tolist(), ratings)
    return Dataset(name, catalog, seqs, info, ratings=table)
