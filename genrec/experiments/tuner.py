"""Hyper-parameter search on the validation cases (the test cases are never looked at).

Three methods over a model's grid (``{param: [values]}``):

- ``coordinate``: from the starting parameters, try each value of one parameter at a time, in the
  grid's order, keeping a value when it scores strictly higher (cheap; the benchmarks' default);
- ``grid``: every combination;
- ``random``: ``trials`` combinations drawn without replacement (seeded).

Candidates are compared on ``(metric, tiebreak)`` of the validation cases. Parameters listed as
``score_only`` are read by the model at ``recommend`` time, so a fitted model is reused and they
are changed with :meth:`~genrec.models.base.Recommender.set_params` instead of a refit; every
other change refits a fresh model.
"""

from __future__ import annotations

import itertools
import json
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from genrec.models.base import Recommender

Factory = Callable[..., Recommender]


@dataclass
class Trial:
    params: dict[str, Any]
    score: tuple[float, ...]
    valid: dict[str, float]
    seconds: float
    refit: bool


@dataclass
class TuneResult:
    best: dict[str, Any]
    score: tuple[float, ...]
    trials: list[Trial] = field(default_factory=list)


def _key(p: dict) -> str:
    return json.dumps(p, sort_keys=True, default=str)


def candidates(start: dict[str, Any], grid: dict[str, list[Any]], method: str, *, trials: int = 20,
               seed: int = 0, score_only: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The full parameter sets ``grid`` and ``random`` try (score-only parameters vary fastest, so
    consecutive candidates share a fit)."""
    names = sorted(grid, key=lambda n: n in score_only)  # stable: fit parameters first, grid order kept
    combos = [dict(zip(names, vals)) for vals in itertools.product(*(grid[n] for n in names))]
    if method == "random" and len(combos) > trials:
        picked = sorted(random.Random(seed).sample(range(len(combos)), trials))
        combos = [combos[i] for i in picked]
    return [{**start, **c} for c in combos]


class Tuner:
    """Scores parameter sets on validation cases, refitting only when a fit parameter changes."""

    def __init__(self, make: Factory, split, *, metric: str = "recall@10", tiebreak: str | None = "ndcg@10",
                 max_cases: int | None = None, seed: int = 0, score_only: Sequence[str] = (),
                 log: Callable[[str], None] | None = None) -> None:
        self.make, self.split = make, split
        self.metrics = (metric,) + ((tiebreak,) if tiebreak else ())
        self.ks = sorted({int(m.split("@")[1]) for m in self.metrics})
        self.max_cases, self.seed, self.score_only = max_cases, seed, set(score_only)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.trials: list[Trial] = []
        self._seen: dict[str, tuple[float, ...]] = {}
        self._fitted: tuple[dict, Recommender] | None = None

    def score(self, params: dict[str, Any]) -> tuple[float, ...]:
        """Validation score of ``params`` (memoised)."""
        from genrec.eval.evaluate import evaluate

        if _key(params) in self._seen:
            return self._seen[_key(params)]
        fit_params = {k: v for k, v in params.items() if k not in self.score_only}
        t = time.perf_counter()
        if self._fitted is not None and self._fitted[0] == fit_params:
            model, refit = self._fitted[1], False
            model.set_params(**{k: v for k, v in params.items() if k in self.score_only})
        else:
            model, refit = self.make(**params).fit(self.split), True
            self._fitted = (fit_params, model)
        rep = evaluate(model, self.split, self.ks, which="valid", progress=False, attributes=(),
                       max_cases=self.max_cases, seed=self.seed)
        valid = {m: round(float(rep.table[m]), 5) for m in self.metrics}
        s = tuple(valid[m] for m in self.metrics)
        self.trials.append(Trial(dict(params), s, valid, round(time.perf_counter() - t, 2), refit))
        self._seen[_key(params)] = s
        self.log(f"  tune {json.dumps(params, default=str)}: " + " ".join(f"{m} {v:.4f}" for m, v in valid.items()))
        return s

    def run(self, start: dict[str, Any], grid: dict[str, list[Any]], method: str = "coordinate", *,
            trials: int = 20) -> TuneResult:
        """Search ``grid`` from ``start`` (the model's full parameters) by ``method``."""
        if method == "coordinate":
            best, best_score = dict(start), self.score(start)
            for name, values in grid.items():
                for v in values:
                    cand = {**best, name: v}
                    s = self.score(cand)
                    if s > best_score:
                        best, best_score = cand, s
            return TuneResult(best, best_score, self.trials)
        if method not in ("grid", "random"):
            raise ValueError(f"unknown search method {method!r}; known: coordinate, grid, random")
        cands = candidates(start, grid, method, trials=trials, seed=self.seed, score_only=tuple(self.score_only))
        scored = [(self.score(c), n) for n, c in enumerate(cands)]
        best_score, n = max(scored, key=lambda x: (x[0], -x[1]))  # ties: the first candidate
        return TuneResult(cands[n], best_score, self.trials)
