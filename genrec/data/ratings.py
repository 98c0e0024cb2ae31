"""Explicit ratings beside the interaction sequences, and the splits of rating prediction.

genrec ranks from interaction sequences; datasets with explicit ratings (MovieLens) also keep them
in ``Dataset.ratings`` / ``Split.ratings``: ``{user: {item: rating}}`` (one rating per pair: the
last one in file order when a file repeats a pair). Models read only the ratings of their training
pairs (:func:`train_triples`); :func:`rating_cases` gives the held-out pairs with their ratings.

Two rating splits:

- the ranking split's own held-out interactions (``loo``: each user's last item) with their
  ratings: :func:`rating_cases` on any split made with :func:`genrec.data.splits.make_split`;
- :func:`random_rating_split`: a seeded random 80/20 split of all rating pairs (the usual rating
  prediction protocol, e.g. surprise's ``train_test_split``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genrec.data.sequences import Sequences
from genrec.data.splits import Case, Split, check_leakage
from genrec.errors import GenrecError

Ratings = dict[str, dict[str, float]]


def ratings_table(users, items, ratings) -> Ratings:
    """``{user: {item: rating}}`` from parallel arrays (ids as strings; later pairs win)."""
    out: Ratings = {}
    for u, i, r in zip(map(str, users), map(str, items), np.asarray(ratings, dtype=float).tolist()):
        out.setdefault(u, {})[i] = r
    return out


def train_triples(split: Split) -> tuple[list[str], list[str], np.ndarray]:
    """(users, items, ratings) of ``split.train``'s distinct (user, item) pairs, in order.

    Raises when the split has no ratings (implicit data) or a training pair has none."""
    table = split.ratings
    if table is None:
        raise GenrecError(f"dataset {split.info.get('dataset')!r} has no explicit ratings")
    users: list[str] = []
    items: list[str] = []
    vals: list[float] = []
    for u in split.train.users:
        seen: set[str] = set()
        mine = table.get(u, {})
        for i in split.train[u]:
            if i in seen:
                continue
            seen.add(i)
            if i not in mine:
                raise GenrecError(f"user {u!r}, item {i!r}: a training interaction without a rating")
            users.append(u)
            items.append(i)
            vals.append(mine[i])
    return users, items, np.asarray(vals, dtype=np.float64)


@dataclass(frozen=True)
class RatingCase:
    """A held-out (user, item) pair, its rating, and the user's history (oldest first)."""

    user: str
    item: str
    rating: float
    history: tuple[str, ...]


def rating_cases(split: Split, which: str = "test") -> list[RatingCase]:
    """The ``which`` cases of ``split`` whose target has a rating, as :class:`RatingCase`."""
    table = split.ratings
    if table is None:
        raise GenrecError(f"dataset {split.info.get('dataset')!r} has no explicit ratings")
    out = []
    for c in split.cases(which):
        r = table.get(c.user, {}).get(c.target)
        if r is not None:
            out.append(RatingCase(c.user, c.target, float(r), c.history))
    return out


def random_rating_split(dataset, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """A seeded random split of every (user, item) pair of ``dataset``: ``1 - test_fraction`` of
    them train, the rest are test cases (one per pair; history = the user's training items in
    time order). Pairs of users left with no training item are dropped (``info`` counts them).
    For rating prediction; it is not a next-item protocol (a test item can precede training items)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if dataset.ratings is None:
        raise GenrecError(f"dataset {dataset.name!r} has no explicit ratings")
    seqs = dataset.sequences
    pairs = [(u, n) for u in seqs.users for n in range(len(seqs[u]))]
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(pairs), dtype=bool)
    test_mask[rng.choice(len(pairs), int(round(test_fraction * len(pairs))), replace=False)] = True
    held: dict[str, set[int]] = {}
    for (u, n), t in zip(pairs, test_mask):
        if t:
            held.setdefault(u, set()).add(n)
    items: dict[str, list[str]] = {}
    times: dict[str, list[float]] | None = {} if seqs.times is not None else None
    test: list[Case] = []
    dropped = 0
    for u in seqs.users:
        out = held.get(u, set())
        keep = [n for n in range(len(seqs[u])) if n not in out]
        if not keep:
            dropped += len(out)
            continue
        items[u] = [seqs[u][n] for n in keep]
        if times is not None and seqs.times is not None:
            times[u] = [seqs.times[u][n] for n in keep]
        hist = tuple(items[u])
        test.extend(Case(u, hist, seqs[u][n]) for n in sorted(out))
    info = {"dataset": dataset.name, "synthetic": dataset.synthetic, "preprocess": dataset.info.get("preprocess"),
            "test_fraction": test_fraction, "pairs_dropped_no_training_item": dropped}
    train = Sequences(items, times, list(seqs.log) + [f"random rating split ({test_fraction:g} test, seed {seed})"])
    split = Split(dataset.catalog, train, [], test, "rating-random", seed, info, ratings=dataset.ratings,
                  user_features=dataset.info.get("user_features") or None)
    check_leakage(split)
    return split
