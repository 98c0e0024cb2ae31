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
    """Binary-relevance NDCG with log2 discounts: DCG / ideal DCG."""
    t = set(targets)
    dcg = sum(1.0 / math.log2(i + 2) for i, x in enumerate(ranked[:k]) if x in t)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(t), k)))
    return dcg / idcg if idcg else 0.0


def mrr_at_k(ranked: Sequence[str], targets: Iterable[str], k: int) -> float:
    t = set(targets)
    for i, x in enumerate(ranked[:k]):
        if x in t:
            return 1.0 / (i + 1)
    return 0.0


def jaccard(a: set, b: set) -> float:
    u = a | b
    return len(a & b) / len(u) if u else 0.0


def diversity_at_k(ranked: Sequence[str], attrs: Mapping[str, set], k: int) -> float:
    """1 - mean pairwise Jaccard similarity of the top-k items' attribute sets (categories or
    brands). Items without the attribute are left out; NaN when fewer than two remain."""
    sets = [attrs[i] for i in ranked[:k] if attrs.get(i)]
    if len(sets) < 2:
        return float("nan")
    sims = [jaccard(a, b) for a, b in combinations(sets, 2)]
    return 1.0 - sum(sims) / len(sims)


def coverage_at_k(ranked: Sequence[str], history: Sequence[str], attrs: Mapping[str, set], k: int) -> float:
    """Share of the attribute values in the user's history that the top-k items cover.
    NaN when the history has no attribute values."""
    want: set = set()
    for i in history:
        want |= attrs.get(i, set())
    if not want:
        return float("nan")
    got: set = set()
    for i in ranked[:k]:
        got |= attrs.get(i, set())
    return len(want & got) / len(want)


def catalog_coverage(lists: Iterable[Sequence[str]], n_items: int, k: int) -> float:
    """Share of the catalog that appears in at least one top-k list."""
    seen: set = set()
    for r in lists:
        seen.update(r[:k])
    return len(seen) / n_items if n_items else 0.0


# -- vectorised forms over target ranks (one target per case), used by evaluate() ---------------

def rank_metrics(ranks: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-case Recall/NDCG/Precision/MRR@k from 1-based target ranks (0 = not retrieved)."""
    r = np.asarray(ranks)
    hit = (r > 0) & (r <= k)
    safe = np.where(hit, r, 1)
    return {
        "recall": hit.astype(np.float64),
        "ndcg": np.where(hit, 1.0 / np.log2(safe + 1), 0.0),
        "precision": hit / k,
        "mrr": np.where(hit, 1.0 / safe, 0.0),
    }
