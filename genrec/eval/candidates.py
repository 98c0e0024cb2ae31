"""The LLMRank 20-candidate protocol: rank each target among itself and 19 sampled items.

LLMRank (RUCAIBox/LLMRank) gives a zero-shot LLM the user's history and 20 numbered candidates:
the held-out target and 19 items drawn at random from the items the user has not interacted with.
:func:`candidate_lists` builds those lists (seeded per user, so every model, and any subset of
cases, sees the same candidates); :func:`evaluate_candidates` ranks them with any model and reports
Recall/NDCG/MRR@K over the 20 candidates.

The model is either a fitted genrec recommender (scored with ``score`` when it scores every item,
else with its full ``recommend`` list) or any object with
``score_candidates(histories, candidates) -> scores`` (one score per candidate, higher is better),
which is how an LLM ranker plugs in. Ties are broken by the candidate order, which is a seeded
shuffle (never "target first"). Numbers on this protocol are much higher than full-ranking numbers
and are comparable only with each other (:func:`genrec.eval.evaluate.evaluate` is full ranking).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from genrec.core.capabilities import capabilities_of
from genrec.data.splits import Case, Split
from genrec.eval import metrics as M
from genrec.eval.report import Report
from genrec.eval.runcard import Timer, machine, package_versions

PROTOCOL_KS = (1, 5, 10, 20)


@dataclass(frozen=True)
class CandidateCase:
    """One case of the protocol: ``candidates`` holds ``case.target`` exactly once, in a seeded
    random position, and no item of ``case.history``."""

    case: Case
    candidates: tuple[str, ...]

    @property
    def target_position(self) -> int:
        """0-based position of the target among the candidates."""
        return self.candidates.index(self.case.target)


def _user_rng(seed: int, user: str) -> np.random.Generator:
    # crc32, not hash(): Python's str hash changes from process to process
    return np.random.default_rng([int(seed), zlib.crc32(str(user).encode("utf-8"))])


def candidate_lists(split: Split, n_candidates: int = 20, *, which: str = "test", seed: int = 0,
                    max_cases: int | None = None) -> list[CandidateCase]:
    """Each ``which`` case's target plus ``n_candidates - 1`` distinct catalog items outside its
    history, in a seeded shuffled order. ``max_cases`` keeps a seeded sample of the cases (in
    split order). The negatives of a user depend only on ``seed`` and the user id."""
    if n_candidates < 2:
        raise ValueError(f"n_candidates must be at least 2, got {n_candidates}")
    cases = list(split.cases(which))
    if max_cases is not None and len(cases) > max_cases:
        rng = np.random.default_rng(seed)
        cases = [cases[i] for i in sorted(rng.choice(len(cases), max_cases, replace=False))]
    if not cases:
        raise ValueError(f"the split has no {which} cases")
    ids = split.catalog.ids
    out = []
    for c in cases:
        banned = set(c.history) | {c.target}
        if len(ids) - len([i for i in banned if i in split.catalog]) < n_candidates - 1:
            raise ValueError(f"user {c.user!r}: fewer than {n_candidates - 1} catalog items outside the history")
        rng = _user_rng(seed, c.user)
        negs: list[str] = []
        seen: set[str] = set()
        while len(negs) < n_candidates - 1:  # rejection sampling: histories are small next to the catalog
            x = ids[int(rng.integers(len(ids)))]
            if x not in banned and x not in seen:
                seen.add(x)
                negs.append(x)
        cands = [c.target, *negs]
        order = rng.permutation(len(cands))
        out.append(CandidateCase(c, tuple(cands[i] for i in order)))
    return out


def score_candidates(model: Any, histories: Sequence[Sequence[str]],
                     candidates: Sequence[Sequence[str]]) -> list[list[float]]:
    """Scores of each history's candidates (higher is better) from ``model``:

    its own ``score_candidates`` if it has one; else ``score`` over every item (models declaring
    ``scores_all_items``); else its full ``recommend`` list (score = minus the rank; a candidate
    left out of the list scores lowest)."""
    own = getattr(model, "score_candidates", None)
    if callable(own):
        return [list(map(float, s)) for s in own(histories, candidates)]
    if capabilities_of(model).scores_all_items:
        enc, _ = model.encode_histories(histories)
        scores = np.asarray(model.score(enc), dtype=np.float64)
        index = model.catalog._index
        out = []
        for row, cands in zip(scores, candidates):
            cols = [index.get(i) for i in cands]
            out.append([float(row[j]) if j is not None and j < len(row) else -np.inf for j in cols])
        return out
    n = len(model.catalog)
    recs = model.recommend(list(map(list, histories)), k=n)
    out = []
    for items, cands in zip(recs.items, candidates):
        pos = {i: r for r, i in enumerate(items)}
        out.append([-float(pos.get(i, n + 1)) for i in cands])
    return out


def candidate_ranks(scores: Sequence[Sequence[float]], cases: Sequence[CandidateCase]) -> np.ndarray:
    """1-based rank of each target among its candidates; ties go to the earlier candidate."""
    out = np.zeros(len(cases), dtype=np.int64)
    for n, (row, cc) in enumerate(zip(scores, cases)):
        s = np.asarray(row, dtype=np.float64)
        if len(s) != len(cc.candidates):
            raise ValueError(f"user {cc.case.user!r}: {len(s)} scores for {len(cc.candidates)} candidates")
        s = np.where(np.isnan(s), -np.inf, s)
        t = cc.target_position
        out[n] = 1 + int(np.sum(s > s[t])) + int(np.sum(s[:t] == s[t]))
    return out


def evaluate_candidates(model: Any, split: Split, n_candidates: int = 20, ks: Sequence[int] = PROTOCOL_KS, *,
                        which: str = "test", seed: int = 0, max_cases: int | None = None, batch_size: int = 256,
                        progress: bool = True, name: str | None = None,
                        cases: Sequence[CandidateCase] | None = None) -> Report:
    """Evaluate ``model`` on the ``n_candidates`` protocol (see the module docstring).

    ``cases`` (from :func:`candidate_lists`) reuses lists already built; otherwise they are built
    from ``split``, ``which``, ``seed`` and ``max_cases``. The report's table has recall, ndcg and
    mrr at each K (K <= ``n_candidates``); ``per_case`` has each target's rank among the candidates.
    """
    ks = sorted({int(k) for k in ks if 0 < int(k) <= n_candidates})
    if not ks:
        raise ValueError(f"ks must hold at least one K in 1..{n_candidates}")
    ccs = list(cases) if cases is not None else candidate_lists(split, n_candidates, which=which, seed=seed,
                                                                max_cases=max_cases)
    if cases is not None and any(len(c.candidates) != n_candidates for c in ccs):
        raise ValueError(f"every candidate list must hold {n_candidates} items")
    model_name = str(name or getattr(model, "name", type(model).__name__))
    from tqdm.auto import tqdm

    ranks = np.zeros(len(ccs), dtype=np.int64)
    bar = tqdm(total=len(ccs), desc=f"{model_name}: {n_candidates} candidates", unit="user",
               disable=not progress, mininterval=1.0)
    with Timer() as t:
        for start in range(0, len(ccs), batch_size):
            batch = ccs[start:start + batch_size]
            scores = score_candidates(model, [list(c.case.history) for c in batch], [c.candidates for c in batch])
            ranks[start:start + len(batch)] = candidate_ranks(scores, batch)
            bar.update(len(batch))
    bar.close()
    table: dict[str, float] = {}
    for k in ks:
        for metric, vals in M.rank_metrics(ranks, k).items():
            if metric != "precision":  # one relevant item among n: precision@k is recall@k / k
                table[f"{metric}@{k}"] = float(vals.mean())
    per_case = [{"user": c.case.user, "target": c.case.target, "rank": int(r)} for c, r in zip(ccs, ranks)]
    card = {"model": model_name, "params": model.get_params() if hasattr(model, "get_params") else {},
            "split": split.describe(), "evaluated": which, "cases": len(ccs),
            "ranking": f"sampled: target + {n_candidates - 1} random non-history items (LLMRank protocol), "
                       f"seed {seed}",
            "candidates": n_candidates, "seed": seed, "eval_seconds": round(t.seconds, 3),
            "versions": package_versions(), "machine": machine()}
    return Report(model_name, table, per_case, card)
