"""Fairness and popularity bias: evaluation results broken down by a user attribute, and the share
of recommendations that come from the most popular items.

The user attributes are the dataset's (``Split.user_features``, from ``Dataset.info["user_features"]``:
MovieLens 100K/1M gender, age, occupation). ``age`` is shown in MovieLens 1M's bands (Under 18,
18-24, 25-34, 35-44, 45-49, 50-55, 56+), so 100K's exact ages and 1M's codes group alike; users
without the attribute are the group ``unknown``.

:func:`breakdown` recomputes an :func:`~genrec.eval.evaluate.evaluate` report's per-case metrics
(from each case's target rank and top-K list) per group: weighting the groups' means by their
sizes gives back the overall table. :func:`popular_items` is the "short head": the
``fraction`` (20%) most popular catalog items by training interactions; ``popular_share@K``
(in every full-ranking report) is the mean share of a top-K list that comes from it.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from genrec.eval import metrics as M

AGE_BANDS = ((18, "Under 18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (50, "45-49"), (56, "50-55"))
UNKNOWN = "unknown"


def age_band(age) -> str:
    """MovieLens 1M's age band of an age (an int, or a band already, kept as is)."""
    if isinstance(age, str) and not age.strip().isdigit():
        return age or UNKNOWN
    a = int(age)
    return next((name for hi, name in AGE_BANDS if a < hi), "56+")


def user_groups(split, attribute: str) -> dict[str, str]:
    """Each user's group for ``attribute`` (``age`` banded); an unknown attribute is a ValueError
    naming the known ones."""
    feats = getattr(split, "user_features", None) or {}
    if not feats:
        raise ValueError(f"dataset {split.info.get('dataset')!r} has no user attributes to group by")
    known = sorted({k for f in feats.values() for k in f})
    if attribute not in known:
        raise ValueError(f"unknown user attribute {attribute!r}; this dataset has: {', '.join(known)}")
    out = {}
    for user, f in feats.items():
        v = f.get(attribute)
        out[user] = UNKNOWN if v is None or v == "" else (age_band(v) if attribute == "age" else str(v))
    return out


def popular_items(split, fraction: float = 0.2) -> set[str]:
    """The ``ceil(fraction * catalog size)`` catalog items with the most training interactions
    (ties: catalog order)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    counts = split.train.item_counts()
    ids = split.catalog.ids
    order = sorted(range(len(ids)), key=lambda j: -counts.get(ids[j], 0))  # stable: ties keep catalog order
    return {ids[j] for j in order[:math.ceil(fraction * len(ids))]}


def popular_share(lists: Sequence[Sequence[str]], popular: set[str], k: int) -> np.ndarray:
    """Per list: the share of its top ``k`` slots filled by ``popular`` items (divided by k)."""
    return np.asarray([sum(i in popular for i in items[:k]) / k for items in lists], dtype=np.float64)


def case_metrics(report, ks: Sequence[int], popular: set[str] | None) -> dict[str, np.ndarray]:
    """Per-case values of the report's rank metrics (and ``popular_share`` when the report has lists)."""
    ranks = np.asarray([c["rank"] for c in report.per_case], dtype=np.int64)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        for name, vals in M.rank_metrics(ranks, k).items():
            out[f"{name}@{k}"] = vals
        if popular is not None and report.lists:
            out[f"popular_share@{k}"] = popular_share(report.lists, popular, k)
    return out


def breakdown(report, split, attribute: str, ks: Sequence[int] = (10,), *, fraction: float = 0.2) -> dict[str, dict]:
    """``{group: {"users": n, "recall@K": ..., "ndcg@K": ..., "precision@K": ..., "mrr@K": ...,
    "popular_share@K": ...}}`` for the report's cases grouped by ``attribute``, groups by size.

    The popular share comes from the report's top-K lists (for models with per-K lists, the first
    K of the largest K's list); sampled-ranking reports have no lists and get no popular share."""
    groups = user_groups(split, attribute)
    per_case = case_metrics(report, ks, popular_items(split, fraction))
    labels = np.asarray([groups.get(c["user"], UNKNOWN) for c in report.per_case], dtype=object)
    out: dict[str, dict] = {}
    names, sizes = np.unique(labels, return_counts=True)
    for g, n in sorted(zip(names.tolist(), sizes.tolist()), key=lambda x: (-x[1], x[0])):
        mask = labels == g
        out[g] = {"users": int(n), **{m: float(v[mask].mean()) for m, v in per_case.items()}}
    return out


def gap(groups: dict[str, dict], metric: str, min_users: int = 1) -> dict | None:
    """The best and worst group (with at least ``min_users`` users) by ``metric`` and their
    difference; None when fewer than two groups qualify."""
    ok = {g: r[metric] for g, r in groups.items() if r["users"] >= min_users and metric in r}
    if len(ok) < 2:
        return None
    best, worst = max(ok, key=lambda g: ok[g]), min(ok, key=lambda g: ok[g])
    return {"metric": metric, "best": best, "worst": worst, "difference": ok[best] - ok[worst]}


def group_k(ks: Sequence[int]) -> int:
    """The K breakdowns show: 10 when evaluated, else the largest K below 10, else the smallest."""
    ks = sorted(ks)
    below = [k for k in ks if k <= 10]
    return below[-1] if below else ks[0]


def group_tables(reports, split, attributes: Sequence[str], ks: Sequence[int]) -> str:
    """Markdown: per attribute, one row per (model, group) with users, P/R/NDCG@K and the popular
    share@K (K from :func:`group_k`)."""
    k = group_k(ks)
    out = []
    for attr in attributes:
        lines = [f"By {attr} (K={k}; popular share: top-{k} slots from the 20% most popular training items):", "",
                 f"| model | {attr} | users | P@{k} | R@{k} | N@{k} | popular share@{k} |", "|---|---|---|---|---|---|---|"]
        for rep in reports:
            for g, row in breakdown(rep, split, attr, (k,)).items():
                share = row.get(f"popular_share@{k}")
                lines.append(f"| {rep.title} | {g} | {row['users']} | {row[f'precision@{k}']:.4f} | "
                             f"{row[f'recall@{k}']:.4f} | {row[f'ndcg@{k}']:.4f} | "
                             + ("–" if share is None else f"{share:.4f}") + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out)
