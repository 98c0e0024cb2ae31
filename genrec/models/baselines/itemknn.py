"""Item-based k-nearest-neighbours (cosine over the training interactions), and the sparse helpers
the classical baselines share (training matrix, history matrix, popularity fallback).

The similarity is computed with scipy.sparse rather than ``implicit.nearest_neighbours.
CosineRecommender`` because implicit has no shrinkage term and keeps each item as its own
neighbour; with ``shrinkage=0`` the two agree (tests/models/test_baselines.py checks it).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from genrec.models.base import ScoringRecommender


# -- helpers shared by itemknn, mf and content ---------------------------------------------------

def interaction_matrix(split, n_items: int | None = None):
    """Binary (users x items) CSR float32 matrix of ``split.train`` over ``split.catalog``'s indices.

    Repeated interactions with an item count once. Row order is ``split.train.users``.
    """
    import scipy.sparse as sp

    catalog = split.catalog
    n_items = len(catalog) if n_items is None else n_items
    index = catalog._index
    rows: list[int] = []
    cols: list[int] = []
    for r, user in enumerate(split.train.users):
        idx = {index[i] for i in split.train[user] if i in index}
        rows.extend([r] * len(idx))
        cols.extend(idx)
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (np.asarray(rows, dtype=np.int64),
                                                              np.asarray(cols, dtype=np.int64))),
                      shape=(len(split.train), n_items), dtype=np.float32)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def history_matrix(histories: Sequence[np.ndarray], n_items: int, recency_decay: float = 1.0):
    """(n x items) CSR float32 matrix of encoded histories (oldest first).

    An item ``a`` steps before the last one weighs ``recency_decay ** a`` (1.0: every item weighs
    1); an item seen twice keeps the weight of its most recent occurrence. Indices ``>= n_items``
    (items added after fitting, unknown to the model) are left out.
    """
    import scipy.sparse as sp

    rows, cols, vals = [], [], []
    for r, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)
        h = h[h < n_items]
        if len(h) == 0:
            continue
        rev = h[::-1]
        uniq, first = np.unique(rev, return_index=True)  # first = age of the most recent occurrence
        rows.append(np.full(len(uniq), r, dtype=np.int64))
        cols.append(uniq)
        vals.append(np.power(np.float32(recency_decay), first.astype(np.float32))
                    if recency_decay != 1.0 else np.ones(len(uniq), dtype=np.float32))
    if rows:
        r_, c_, v_ = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals).astype(np.float32)
    else:
        r_, c_, v_ = (np.empty(0, np.int64),) * 2 + (np.empty(0, np.float32),)
    return sp.csr_matrix((v_, (r_, c_)), shape=(len(histories), n_items), dtype=np.float32)


def popularity(split, n_items: int | None = None) -> np.ndarray:
    """Training interaction count of each catalog item (float32)."""
    counts = np.zeros(len(split.catalog) if n_items is None else n_items, dtype=np.float32)
    for item, c in split.train.item_counts().items():
        j = split.catalog._index.get(item)
        if j is not None and j < len(counts):
            counts[j] = c
    return counts


def popularity_fill(counts: np.ndarray) -> np.ndarray:
    """Scores in [-1, 0) ordered by popularity: used where a model has no evidence (score 0)."""
    counts = np.asarray(counts, dtype=np.float32)
    top = float(counts.max()) if len(counts) else 0.0
    return (counts / (top + 1.0) - 1.0).astype(np.float32)


def apply_fallback(scores: np.ndarray, histories: Sequence[np.ndarray], counts: np.ndarray,
                   fill_zero: bool) -> np.ndarray:
    """Empty histories get popularity scores; with ``fill_zero`` every score <= 0 is replaced by
    the popularity fill (so items with no evidence are ranked by popularity, not arbitrarily)."""
    n_cols = scores.shape[1]
    fill = popularity_fill(counts[:n_cols]) if len(counts) >= n_cols else popularity_fill(
        np.concatenate([counts, np.zeros(n_cols - len(counts), np.float32)]))
    if fill_zero:
        np.copyto(scores, np.broadcast_to(fill, scores.shape), where=scores <= 0)
    empty = [n for n, h in enumerate(histories) if len(h) == 0]
    if empty:
        scores[empty] = fill
    return scores


def top_n_per_row(m, n: int):
    """Keep the ``n`` largest entries of each row of a CSR matrix (ties: lower column first)."""
    import scipy.sparse as sp

    m = m.tocsr()
    m.sort_indices()
    counts = np.diff(m.indptr)
    if n <= 0 or counts.max(initial=0) <= n:
        return m
    keep = np.ones(m.nnz, dtype=bool)
    for r in np.flatnonzero(counts > n):
        a, b = m.indptr[r], m.indptr[r + 1]
        order = np.argsort(-m.data[a:b], kind="stable")
        keep[a + order[n:]] = False
    rows = np.repeat(np.arange(m.shape[0]), counts)[keep]
    return sp.csr_matrix((m.data[keep], (rows, m.indices[keep])), shape=m.shape, dtype=m.dtype)


# -- the model -----------------------------------------------------------------------------------

class ItemKNN(ScoringRecommender):
    """Item-item cosine neighbours: score(j) = sum over history items i of sim(i, j).

    ``sim(i, j) = |U_i & U_j| / (sqrt(|U_i| |U_j|) + shrinkage)`` over the sets of training users
    of each item; each item keeps its ``neighbors`` most similar items (itself excluded).
    ``recency_decay < 1`` weighs a history item ``a`` steps before the last by
    ``recency_decay ** a`` (for sequential data; 1.0 = off). Unseen users need only a history.
    Items with no similarity to the history are ranked after the others by popularity
    (``fill_popular``); an empty history gets the most popular items.
    """

    name = "itemknn"

    def __init__(self, neighbors: int = 100, shrinkage: float = 0.0, recency_decay: float = 1.0,
                 fill_popular: bool = True) -> None:
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self.recency_decay = recency_decay
        self.fill_popular = fill_popular

    def fit(self, split) -> "ItemKNN":
        import scipy.sparse as sp

        if self.neighbors <= 0:
            raise ValueError("neighbors must be positive")
        if self.shrinkage < 0 or not 0 < self.recency_decay <= 1:
            raise ValueError("shrinkage must be >= 0 and 0 < recency_decay <= 1")
        self.catalog = split.catalog
        x = interaction_matrix(split)
        co = (x.T @ x).tocsr().astype(np.float32)  # co-occurrence counts, items x items
        n = co.diagonal().astype(np.float32)
        co.setdiag(0)
        co.eliminate_zeros()
        coo = co.tocoo()
        denom = np.sqrt(n[coo.row] * n[coo.col]) + np.float32(self.shrinkage)
        sim = sp.csr_matrix((coo.data / denom, (coo.row, coo.col)), shape=co.shape, dtype=np.float32)
        self.similarity_ = top_n_per_row(sim, self.neighbors)
        self.counts_ = popularity(split)
        return self

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        s = self.similarity_
        h = history_matrix(histories, s.shape[0], self.recency_decay)
        scores = np.asarray((h @ s).toarray(), dtype=np.float32)
        return apply_fallback(scores, histories, self.counts_, self.fill_popular)
