"""What ``llm-rerank``'s ``fit`` learns from the training data besides the retriever:

- :func:`retriever_choices` / :func:`choose_retriever`: ``retriever="auto"`` (item kNN or
  SASRec) or a comma-separated list: each is fitted on the training sequences and the one with the
  best NDCG@N on a seeded sample of the split's *validation* cases is kept (N = the candidates the
  LLM sees); the scores are recorded in ``fit_info_``.
- :func:`draw_examples`: few-shot examples from training sequences only (seeded). A user with
  no validation/test case is preferred; in ``loo`` every user has one, so the examples come from
  training sequences, which end before the user's validation item. Each example is a window of
  one training sequence: the history, then the item that followed it, shown among random other
  training items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

AUTO_RETRIEVERS = ("itemknn", "sasrec")


def retriever_choices(retriever: str | Sequence[str]) -> tuple[str, ...]:
    """The retriever names a ``retriever`` value stands for: ``auto``, ``a,b`` or one name."""
    if isinstance(retriever, str):
        names = AUTO_RETRIEVERS if retriever.strip() == "auto" else tuple(
            x.strip() for x in retriever.split(",") if x.strip())
    else:
        names = tuple(str(x).strip() for x in retriever)
    return tuple(dict.fromkeys(names))


def params_for(name: str, retriever_params: dict | None, several: bool) -> dict:
    """A retriever's parameters: ``retriever_params`` itself for one retriever, its entry
    ``retriever_params[name]`` when choosing among several."""
    if not retriever_params:
        return {}
    if not several:
        return dict(retriever_params)
    got = retriever_params.get(name) or {}
    if not isinstance(got, dict):
        raise ValueError(f"retriever_params[{name!r}] must be a JSON object, got {got!r}")
    return dict(got)


def validation_scores(models: dict, split, *, n: int, valid_users: int, seed: int) -> dict[str, dict]:
    """NDCG@n and Recall@n of each fitted retriever on ``valid_users`` seeded validation cases."""
    from genrec.eval.evaluate import evaluate

    if not split.valid:
        raise ValueError("retriever='auto' (or a list) chooses on validation cases, and this split has none")
    scores: dict[str, dict] = {}
    for name, model in models.items():
        rep = evaluate(model, split, ks=(n,), which="valid", max_cases=valid_users, seed=seed, progress=False,
                       attributes=())
        scores[name] = {f"ndcg@{n}": round(rep.table[f"ndcg@{n}"], 5),
                        f"recall@{n}": round(rep.table[f"recall@{n}"], 5), "valid_cases": len(rep.per_case)}
    return scores


def best_by_validation(scores: dict[str, dict], n: int) -> str:
    """The retriever with the highest validation NDCG@n (ties: the first listed)."""
    names = list(scores)
    return max(names, key=lambda x: (scores[x][f"ndcg@{n}"], -names.index(x)))


def choose_retriever(names: Sequence[str], retriever_params: dict | None, split, *, n: int, valid_users: int,
                     seed: int) -> tuple[Any, dict]:
    """Fit every named retriever on ``split`` and keep the best by NDCG@n on ``valid_users``
    seeded validation cases (ties: the first named). Returns the fitted model and the record."""
    from genrec.models.registry import create

    several = len(names) > 1
    fitted = {name: create(name, **params_for(name, retriever_params, several)).fit(split) for name in names}
    if not several:
        return fitted[names[0]], {"retriever": names[0]}
    scores = validation_scores(fitted, split, n=n, valid_users=valid_users, seed=seed)
    best = best_by_validation(scores, n)
    return fitted[best], {"retriever": best, "chosen_by": f"validation ndcg@{n}", "validation": scores}


@dataclass(frozen=True)
class ExampleIds:
    """A few-shot example as item ids: whose training sequence it came from, the history, the
    candidates in the order shown, and the index of the item that came next."""

    user: str
    history: tuple[str, ...]
    candidates: tuple[str, ...]
    answer: int


def draw_examples(split, shots: int, *, candidates: int, history_items: int, seed: int) -> list[ExampleIds]:
    """``shots`` examples from ``split.train`` only (module docstring), seeded."""
    if shots <= 0:
        return []
    rng = np.random.default_rng([int(seed), 13])
    train = split.train.items
    evaluated = {c.user for c in list(split.valid) + list(split.test)}
    long_enough = sorted(u for u, s in train.items() if len(s) >= 2)
    pool = [u for u in long_enough if u not in evaluated] or long_enough
    if not pool:
        raise ValueError("few-shot examples need training users with at least 2 items")
    train_items = sorted({i for s in train.values() for i in s})
    out = []
    for u in rng.choice(pool, size=min(shots, len(pool)), replace=False):
        seq = train[str(u)]
        end = int(rng.integers(1, len(seq)))  # the answer is seq[end], the history before it
        history = tuple(seq[max(0, end - history_items):end])
        seen = set(seq)
        others: list[str] = []
        while len(others) < candidates - 1 and len(others) < len(train_items) - len(seen):
            x = train_items[int(rng.integers(len(train_items)))]
            if x not in seen and x not in others:
                others.append(x)
        shown = others + [seq[end]]
        order = rng.permutation(len(shown)).tolist()
        cands = tuple(shown[i] for i in order)
        out.append(ExampleIds(str(u), history, cands, cands.index(seq[end])))
    return out
