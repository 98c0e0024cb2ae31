"""Rating prediction: RMSE and MAE of predicted explicit ratings on held-out (user, item) pairs.

genrec's main evaluation ranks items (:mod:`genrec.eval.evaluate`); datasets with explicit ratings
(MovieLens) can also be evaluated the classical way. The held-out pairs come from
:func:`genrec.data.ratings.rating_cases` (a ``loo`` split's test targets with their ratings, or the
test pairs of :func:`genrec.data.ratings.random_rating_split`).

A rating predictor is anything with ``predict_ratings(users, items) -> array``: the ``svd`` model
(:class:`genrec.models.baselines.svd.SVD`) and the two baselines here, the global mean and the
user/item bias model (surprise's ``BaselineOnly``, fitted by ALS). The zero-shot LLM rater of
Chat-Rec is in :mod:`genrec.eval.llm_rating`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from genrec.data.ratings import RatingCase, train_triples
from genrec.data.splits import Split


def rating_metrics(predicted: Sequence[float], actual: Sequence[float]) -> dict[str, float]:
    """``{"rmse", "mae", "n"}`` of predictions against actual ratings (same length, not empty)."""
    p, a = np.asarray(predicted, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    if p.shape != a.shape or p.ndim != 1:
        raise ValueError(f"predicted and actual ratings must be two lists of the same length, got {p.shape} "
                         f"and {a.shape}")
    if not len(p):
        raise ValueError("no ratings to evaluate")
    if not np.isfinite(p).all():
        raise ValueError(f"{int((~np.isfinite(p)).sum())} predicted ratings are not finite")
    err = p - a
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err))), "n": int(len(p))}


def evaluate_ratings(predictor: Any, cases: Sequence[RatingCase]) -> dict[str, float]:
    """RMSE/MAE of ``predictor.predict_ratings`` over ``cases``."""
    cases = list(cases)
    pred = predictor.predict_ratings([c.user for c in cases], [c.item for c in cases])
    return rating_metrics(pred, [c.rating for c in cases])


class GlobalMean:
    """Predicts the mean training rating for every pair (the floor)."""

    name = "global-mean"

    def fit(self, split: Split) -> "GlobalMean":
        _, _, vals = train_triples(split)
        self.mu_ = float(vals.mean())
        return self

    def predict_ratings(self, users: Sequence[str], items: Sequence[str]) -> np.ndarray:
        return np.full(len(users), self.mu_)


class BiasBaseline:
    """``mu + b_u + b_i``, the regularised user and item biases of surprise's ``BaselineOnly``
    (ALS; surprise's defaults: 10 epochs, reg_u 15, reg_i 10). Unknown users or items get bias 0.
    Predictions are vectorised from the fitted bias arrays and clipped to the training scale."""

    name = "bias"

    def __init__(self, epochs: int = 10, reg_u: float = 15.0, reg_i: float = 10.0) -> None:
        self.epochs, self.reg_u, self.reg_i = epochs, reg_u, reg_i

    def fit(self, split: Split) -> "BiasBaseline":
        import surprise  # type: ignore[import-untyped]

        from genrec.models.baselines.svd import surprise_trainset

        users, items, vals = train_triples(split)
        self.scale_ = (float(vals.min()), float(vals.max()))
        ts = surprise_trainset(users, items, vals, self.scale_)
        algo = surprise.BaselineOnly(bsl_options={"method": "als", "n_epochs": self.epochs, "reg_u": self.reg_u,
                                                  "reg_i": self.reg_i}, verbose=False)
        algo.fit(ts)
        bu, bi = algo.bu, algo.bi
        self.mu_ = float(ts.global_mean)
        self.bu_ = {ts.to_raw_uid(u): float(bu[u]) for u in ts.all_users()}
        self.bi_ = {ts.to_raw_iid(i): float(bi[i]) for i in ts.all_items()}
        return self

    def predict_ratings(self, users: Sequence[str], items: Sequence[str]) -> np.ndarray:
        pred = self.mu_ + np.asarray([self.bu_.get(u, 0.0) for u in users]) + \
            np.asarray([self.bi_.get(i, 0.0) for i in items])
        return np.clip(pred, *self.scale_)
