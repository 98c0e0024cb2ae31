"""Validation shared by the ranking models: a seeded sample of validation cases and the
full-ranking Recall@10 / NDCG@10 of their targets (history items excluded, as evaluate() does)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def sample_valid(cases: Sequence, n: int | None, seed: int) -> list:
    """``n`` cases drawn without replacement with a local generator seeded by ``seed`` (all when
    ``n`` is None or there are fewer), in their original order."""
    cases = list(cases)
    if n is None or len(cases) <= n:
        return cases
    if n <= 0:
        return []
    rng = np.random.default_rng(seed)
    return [cases[i] for i in sorted(rng.choice(len(cases), n, replace=False))]


def encode_cases(cases: Sequence, index: dict) -> tuple[list[np.ndarray], np.ndarray]:
    """Histories as catalog indices (unknown items dropped) and target indices (-1: unknown)."""
    hists = [np.asarray([index[i] for i in c.history if i in index], dtype=np.int64) for c in cases]
    return hists, np.array([index.get(c.target, -1) for c in cases], dtype=np.int64)


def rank_metrics(score: Callable[[list[np.ndarray]], np.ndarray], hists: list[np.ndarray], targets: np.ndarray,
                 k: int = 10, batch: int = 1024) -> dict[str, float]:
    """Recall@k and NDCG@k of ``targets`` under ``score(histories) -> (n, n_items)`` scores.

    History items are excluded (the target too if it is in the history, so it counts as a miss,
    as in evaluate()); an unknown target is a miss. Ties rank the target first of its tied group.
    """
    ranks = []
    for s in range(0, len(hists), batch):
        part, tgt = hists[s:s + batch], targets[s:s + batch]
        scores = np.asarray(score(part), dtype=np.float64)
        rows = np.repeat(np.arange(len(part)), [len(h) for h in part])
        cols = np.concatenate(part) if part else np.empty(0, np.int64)
        scores[rows, cols] = -np.inf
        t_score = scores[np.arange(len(part)), np.maximum(tgt, 0)]
        r = (scores > t_score[:, None]).sum(1) + 1
        r[(tgt < 0) | np.isinf(t_score)] = np.iinfo(np.int64).max // 2
        ranks.append(r)
    rank = np.concatenate(ranks).astype(np.float64) if ranks else np.empty(0)
    hit = rank <= k
    n = max(len(rank), 1)
    return {f"recall@{k}": float(hit.sum() / n), f"ndcg@{k}": float((hit / np.log2(rank + 1)).sum() / n)}
