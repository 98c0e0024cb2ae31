"""Ranking metrics as pure functions, checked by hand in tests/eval/test_metrics.py.

Conventions: ``ranked`` is a list of item ids, best first; ``targets`` the relevant items (one
for next-item prediction, where Recall@K equals HR@K). Ranks are 1-based; 0 means "not in list".
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Iterable, Mapping, Sequence

import numpy as np


def recall_at_k(ranked: Sequence[str], targets: Iterable[str], k: int) -> float:
    t = set(targets)
    if not t:
        raise ValueError("no targets")
    return len(t.intersection(ranked[:k])) / len(t)


def hit_at_k(ranked: Sequence[str], targets: Iterable[str], k: int) -> float:
    return float(bool(set(targets).intersection(ranked[:k])))


def precision_at_k(ranked: Sequence[str], targets: Iterable[str], k: int) -> float:
    """Relevant items in the top k, divided by k (not by the list length)."""
    return len(set(targets).intersection(ranked[:k])) / k


def ndcg_at_k(ranked: Sequence[str], targets: Iterable[str], k: int) -> float:
    """Binary-relevance NDCG with log2 discounts: DCG / ideal DCG. No targets is an error, as in
    :func:`recall_at_k` (the ideal DCG would be 0: the ratio is undefined, not 0)."""
    t = set(targets)
    if not t:
        raise ValueError("no targets")
    dcg = sum(1.0 / math.log2(i + 2) for i, x in enumerate(ranked[:k]) if x in t)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(t), k)))
    return dcg / idcg


def mrr_at_k(ranked: Sequence[str], targets: Iterable[str], k: int) -> float:
    t = set(targets)
    for i, x in enumerate(ranked[:k]):
        if x in t:
            return 1.0 / (i + 1)
    return 0.0


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b|; 0.0 for two empty sets (they share nothing; diversity never asks)."""
    u = a | b
    return len(a & b) / len(u) if u else 0.0


def diversity_at_k(ranked: Sequence[str], attrs: Mapping[str, set], k: int) -> float:
    """1 - mean pairwise Jaccard similarity of the top-k items' attribute sets (categories or
    brands). Items without the attribute are left out; NaN when fewer than two remain."""
    sets = [attrs[i] for i in ranked[:k] if attrs.get(i)]
    if len(sets) < 2:
        return math.nan
    sims = [jaccard(a, b) for a, b in combinations(sets, 2)]
    return 1.0 - sum(sims) / len(sims)


def coverage_at_k(ranked: Sequence[str], history: Sequence[str], attrs: Mapping[str, set], k: int) -> float:
    """Share of the attribute values in the user's history that the top-k items cover.
    NaN when the history has no attribute values."""
    want: set = set()
    for i in history:
        want |= attrs.get(i, set())
    if not want:
        return math.nan
    got: set = set()
    for i in ranked[:k]:
        got |= attrs.get(i, set())
    return len(want & got) / len(want)


def catalog_coverage(lists: Iterable[Sequence[str]], n_items: int, k: int) -> float:
    """Share of the catalog that appears in at least one top-k list. An empty catalog is an error."""
    if n_items <= 0:
        raise ValueError(f"catalog_coverage needs a non-empty catalog, got n_items={n_items}")
    seen: set = set()
    for r in lists:
        seen.update(r[:k])
    return len(seen) / n_items


# -- vectorised forms over target ranks (one target per case), used by evaluate() ---------------

def rank_metrics(ranks: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-case Recall/NDCG/Precision/MRR@k from 1-based target ranks (0 = not retrieved)."""
    r = np.asarray(ranks)
    hit = (r > 0) & (r <= k)
    rank = np.where(hit, r, np.inf)  # a miss counts as rank infinity: 1/rank and 1/log2(rank+1) are 0
    return {
        "recall": np.where(hit, 1.0, 0.0),
        "ndcg": 1.0 / np.log2(rank + 1),
        "precision": hit / k,
        "mrr": 1.0 / rank,
    }


# -- vectorised Diversity/Coverage over batches of top-K lists (item indices), used by evaluate() -

def attribute_table(sets: Sequence[set], ) -> np.ndarray:
    """Pad per-item attribute sets into an (n_items, L) int array of attribute codes, -1 = none."""
    codes: dict = {}
    width = max([1, *(len(s) for s in sets)])
    out = np.full((len(sets), width), -1, dtype=np.int64)
    for i, s in enumerate(sets):
        for j, a in enumerate(sorted(s, key=str)):
            out[i, j] = codes.setdefault(a, len(codes))
    return out


def diversity_batch(lists: np.ndarray, table: np.ndarray, ks: Sequence[int]) -> dict[int, np.ndarray]:
    """Diversity@k for each row of ``lists`` ((B, K) item indices, -1 = empty slot) at each k.

    Same definition as :func:`diversity_at_k` (items without attributes left out, NaN when fewer
    than two remain), computed for all rows at once from the padded ``table``.
    """
    B, K = lists.shape
    a = np.where(lists[..., None] >= 0, table[np.maximum(lists, 0)], -1)  # (B, K, L)
    valid_attr = a >= 0
    size = valid_attr.sum(-1)  # (B, K)
    eq = (a[:, :, None, :, None] == a[:, None, :, None, :]) & valid_attr[:, :, None, :, None]
    inter = eq.sum((-1, -2))  # (B, K, K)
    union = size[:, :, None] + size[:, None, :] - inter
    has = size > 0
    pair_ok = has[:, :, None] & has[:, None, :]
    jac = inter / np.maximum(union, 1)  # pairs of items without attributes are masked out below
    out = {}
    for k in ks:
        kk = min(k, K)
        tri = np.triu(np.ones((kk, kk), dtype=bool), 1)
        ok = pair_ok[:, :kk, :kk] & tri
        n_pairs = ok.sum((1, 2))
        s = (jac[:, :kk, :kk] * ok).sum((1, 2))
        out[k] = np.where(n_pairs > 0, 1.0 - s / np.maximum(n_pairs, 1), np.nan)
    return out


def coverage_batch(lists: np.ndarray, histories: Sequence[np.ndarray], table: np.ndarray,
                   ks: Sequence[int]) -> dict[int, np.ndarray]:
    """Coverage@k (as :func:`coverage_at_k`) for each row of ``lists`` and its history's indices."""
    B, K = lists.shape
    out = {k: np.full(B, np.nan) for k in ks}
    for r in range(B):
        h = table[np.asarray(histories[r], dtype=np.int64)]
        want = set(h[h >= 0].tolist())
        if not want:
            continue
        first: dict = {}
        for pos, item in enumerate(lists[r]):
            if item < 0:
                break
            for a in table[item]:
                if a >= 0 and a in want and a not in first:
                    first[a] = pos + 1
        for k in ks:
            out[k][r] = sum(p <= k for p in first.values()) / len(want)
    return out
