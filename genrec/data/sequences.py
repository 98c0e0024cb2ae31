"""Users' item sequences, oldest first, and the filters that map Sequences to Sequences."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np


@dataclass
class Sequences:
    """Each user's items, oldest first; optional parallel timestamps (seconds)."""

    items: dict[str, list[str]]
    times: dict[str, list[float]] | None = None
    log: list[str] = field(default_factory=list)  # what was done to these sequences, for run cards

    def __post_init__(self) -> None:
        if self.times is not None:
            for u, seq in self.items.items():
                if len(self.times.get(u, ())) != len(seq):
                    raise ValueError(f"user {u!r}: {len(seq)} items but {len(self.times.get(u, ()))} timestamps")

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.items)

    def __getitem__(self, user: str) -> list[str]:
        return self.items[user]

    def __contains__(self, user: object) -> bool:
        return user in self.items

    @property
    def users(self) -> list[str]:
        return list(self.items)

    def num_interactions(self) -> int:
        return sum(len(s) for s in self.items.values())

    def item_counts(self) -> Counter:
        c: Counter = Counter()
        for s in self.items.values():
            c.update(s)
        return c

    def item_set(self) -> set[str]:
        out: set[str] = set()
        for s in self.items.values():
            out.update(s)
        return out

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(s) for s in self.items.values()), dtype=np.int64, count=len(self.items))

    def stats(self) -> dict:
        lens = self.lengths()
        return {
            "users": len(self.items),
            "items": len(self.item_set()),
            "interactions": int(lens.sum()),
            "avg_length": float(lens.mean()) if len(lens) else 0.0,
            "median_length": float(np.median(lens)) if len(lens) else 0.0,
            "min_length": int(lens.min()) if len(lens) else 0,
            "max_length": int(lens.max()) if len(lens) else 0,
        }

    def map(self, fn: Callable[[list[str], list[float] | None], tuple[list[str], list[float] | None]],
            note: str) -> "Sequences":
        """Apply ``fn`` to each (items, times); users left empty are dropped."""
        items: dict[str, list[str]] = {}
        times: dict[str, list[float]] | None = {} if self.times is not None else None
        for u, seq in self.items.items():
            s, t = fn(seq, None if self.times is None else self.times[u])
            if s:
                items[u] = s
                if times is not None:
                    times[u] = t or []
        return Sequences(items, times, self.log + [note])

    def subset_users(self, users: Iterable[str]) -> "Sequences":
        us = list(users)
        return Sequences({u: list(self.items[u]) for u in us},
                         None if self.times is None else {u: list(self.times[u]) for u in us}, list(self.log))


# -- filters: each returns new Sequences and notes itself in .log --------------------------------

def dedup(seqs: Sequences, keep: str = "first") -> Sequences:
    """Drop repeated items within each user's sequence, keeping the first (or last) occurrence."""
    if keep not in ("first", "last"):
        raise ValueError("keep must be 'first' or 'last'")

    def fn(s: list[str], t: list[float] | None):
        order = range(len(s)) if keep == "first" else range(len(s) - 1, -1, -1)
        seen: set[str] = set()
        idx = []
        for i in order:
            if s[i] not in seen:
                seen.add(s[i])
                idx.append(i)
        idx.sort()
        return [s[i] for i in idx], None if t is None else [t[i] for i in idx]

    return seqs.map(fn, f"dedup(keep={keep})")


def truncate(seqs: Sequences, max_len: int) -> Sequences:
    """Keep each user's last ``max_len`` items (the most recent)."""
    if max_len <= 0:
        raise ValueError("max_len must be positive")
    return seqs.map(lambda s, t: (s[-max_len:], None if t is None else t[-max_len:]), f"truncate(last {max_len})")


def keep_items(seqs: Sequences, allowed: set[str], note: str) -> Sequences:
    """Drop interactions with items outside ``allowed``."""
    def fn(s, t):
        idx = [i for i, x in enumerate(s) if x in allowed]
        return [s[i] for i in idx], None if t is None else [t[i] for i in idx]

    return seqs.map(fn, note)


def min_length(seqs: Sequences, n: int) -> Sequences:
    """Drop users with fewer than ``n`` items."""
    return seqs.map(lambda s, t: (s, t) if len(s) >= n else ([], None), f"min_length({n})")


def kcore(seqs: Sequences, k: int, *, user_k: int | None = None) -> Sequences:
    """Iterated k-core: every user has at least ``user_k`` items and every item ``k`` users."""
    user_k = k if user_k is None else user_k
    cur = seqs
    while True:
        counts = cur.item_counts()
        ok = {i for i, c in counts.items() if c >= k}
        nxt = keep_items(cur, ok, "") if len(ok) < len(counts) else cur
        nxt = min_length(nxt, user_k)
        if nxt.num_interactions() == cur.num_interactions() and len(nxt) == len(cur):
            return Sequences(nxt.items, nxt.times, seqs.log + [f"kcore(items>={k}, users>={user_k})"])
        cur = nxt
