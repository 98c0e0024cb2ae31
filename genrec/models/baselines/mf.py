"""Matrix factorisation baselines on implicit feedback: ALS and BPR (both from ``implicit``).

Both are fitted on the training users' binary interaction matrix. Recommendations are always
made from a history (fold-in): the user's factors are computed from the history's items with the
item factors held fixed, so users never seen in training (the ``user`` split) are served exactly
like training users. Everything is float32 and seeded (``seed`` -> implicit's ``random_state``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from genrec.models.base import ScoringRecommender
from genrec.models.baselines.itemknn import apply_fallback, history_matrix, interaction_matrix, popularity


def least_squares_fold_in(item_factors: np.ndarray, histories: Sequence[np.ndarray], regularization: float,
                          alpha: float = 1.0, num_threads: int = 0) -> np.ndarray:
    """User factors by the implicit-ALS least-squares solve with the item factors ``Y`` fixed.

    For each history ``h``: ``x = (Y'Y + reg I + (alpha - 1) Y_h'Y_h)^-1 alpha Y_h' 1``, the
    minimiser of ``sum_i c_i (p_i - x.y_i)^2 + reg |x|^2`` with ``p_i = 1, c_i = alpha`` on the
    history and ``p_i = 0, c_i = 1`` elsewhere (Hu, Koren & Volinsky 2008). Solved by implicit's
    ``AlternatingLeastSquares.recalculate_user`` (Cholesky, ``num_threads``; 0 = all cores), on a
    throw-away implicit model holding ``Y`` (building it and ``Y'Y`` costs next to nothing next to
    the solves). Repeated items count once; indices beyond ``Y``'s rows (items added after
    fitting) are ignored; a history with no known item gets zeros.
    """
    from implicit.cpu.als import AlternatingLeastSquares

    y = np.ascontiguousarray(item_factors, dtype=np.float32)
    h = history_matrix(histories, y.shape[0])
    # Single-threaded BLAS here: Y'Y of a tall, skinny Y took 60x more CPU with OpenBLAS threads
    # on a busy 2-core machine (measured), and implicit's own threads do the solves.
    with _quiet_blas():
        solver = AlternatingLeastSquares(factors=y.shape[1], regularization=regularization, alpha=alpha,
                                         dtype=np.float32, num_threads=num_threads)
        solver.item_factors = y
        return np.asarray(solver.recalculate_user(np.arange(len(histories)), h), dtype=np.float32)


def _quiet_blas():
    """A context: BLAS single-threaded while implicit's own threads work (implicit's advice),
    and implicit's warning about a multi-threaded OpenBLAS silenced."""
    import contextlib
    import warnings

    from threadpoolctl import threadpool_limits

    stack = contextlib.ExitStack()
    stack.enter_context(threadpool_limits(1, "blas"))
    stack.enter_context(warnings.catch_warnings())
    warnings.filterwarnings("ignore", message=".*(OpenBLAS|MKL).*threads.*")
    return stack


class ALS(ScoringRecommender):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008) via ``implicit.cpu.als``.

    Confidence of an interaction is ``alpha`` (implicit's convention: unobserved items weigh 1).
    The default ``alpha=1`` is implicit's; sparse data wants more (validation picked 50-100 on
    Amazon Beauty, 1 on MovieLens-100K: see benchmarks/results/baselines_*.md).
    Fold-in: ``implicit``'s ``recalculate_user`` -- the exact least-squares solve of a user's
    factors against the fixed item factors, from the history alone. Deterministic for a ``seed``
    whatever ``num_threads`` (0 = all cores): each least-squares row is solved independently.
    An empty history gets the most popular training items.
    """

    name = "als"

    def __init__(self, factors: int = 64, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, seed: int = 0, num_threads: int = 0) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.num_threads = num_threads

    def fit(self, split) -> "ALS":
        from implicit.cpu.als import AlternatingLeastSquares

        self.catalog = split.catalog
        x = interaction_matrix(split)
        with _quiet_blas():
            model = AlternatingLeastSquares(factors=self.factors, regularization=self.regularization,
                                            alpha=self.alpha, dtype=np.float32, iterations=self.iterations,
                                            random_state=self.seed, num_threads=self.num_threads)
            model.fit(x, show_progress=False)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self.counts_ = popularity(split)
        return self

    def user_factors(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Fold-in: each history's user factors (float32, one row per history)."""
        return least_squares_fold_in(self.item_factors_, histories, self.regularization, self.alpha,
                                     self.num_threads)

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        scores = self.user_factors(histories) @ self.item_factors_.T
        return apply_fallback(np.asarray(scores, dtype=np.float32), histories, self.counts_, False)


class BiasedFoldIn(ScoringRecommender):
    """Scoring shared by the factor models whose ``item_factors_`` carry the item bias as their last
    column (BPR, LightFM): a history is folded into user factors (``fold_in``: "ls", the implicit-ALS
    least-squares solve, or "mean" of the history's item factors) with the bias weight set to 1, and
    items score ``u . y_i``; an empty history gets the most popular training items."""

    fold_in: str
    fold_in_alpha: float
    fold_in_regularization: float
    item_factors_: np.ndarray
    counts_: np.ndarray
    fold_in_threads = 0  # implicit's solver threads for "ls" (0 = all cores)

    def user_factors(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Fold-in: each history's user factors, bias weight last (float32)."""
        y = self.item_factors_
        if self.fold_in == "ls":
            return least_squares_fold_in(y, histories, self.fold_in_regularization, self.fold_in_alpha,
                                         num_threads=self.fold_in_threads)
        h = history_matrix(histories, y.shape[0])
        n = np.asarray(h.sum(axis=1)).ravel()
        u = np.asarray(h @ y, dtype=np.float32) / np.maximum(n, 1)[:, None].astype(np.float32)
        u[:, -1] = 1.0
        return u

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        scores = self.user_factors(histories) @ self.item_factors_.T
        return apply_fallback(np.asarray(scores, dtype=np.float32), histories, self.counts_, False)


class BPR(BiasedFoldIn):
    """Bayesian personalised ranking (Rendle et al. 2009) via ``implicit.cpu.bpr``.

    implicit appends an item-bias column to the item factors (user factors carry a constant 1).
    Fold-in, since implicit's BPR has none (``fold_in``):

    - ``"ls"`` (default): the implicit-ALS least-squares solve (:func:`least_squares_fold_in`)
      against the BPR item factors, bias column included, with confidence ``fold_in_alpha`` and
      ridge ``fold_in_regularization``: the user vector that best separates history items
      (target 1) from the rest (target 0).
    - ``"mean"``: the mean of the history items' factors, with the bias weight fixed at 1.

    Deterministic for a ``seed`` only with ``num_threads=1`` (the default): implicit's multi-thread
    BPR is lock-free SGD whose update order varies from run to run.
    An empty history gets the most popular training items.
    """

    name = "bpr"

    def __init__(self, factors: int = 64, learning_rate: float = 0.01, regularization: float = 0.01,
                 iterations: int = 100, seed: int = 0, num_threads: int = 1, fold_in: str = "ls",
                 fold_in_alpha: float = 10.0, fold_in_regularization: float = 0.1) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.seed = seed
        self.num_threads = num_threads
        self.fold_in = fold_in
        self.fold_in_alpha = fold_in_alpha
        self.fold_in_regularization = fold_in_regularization

    def fit(self, split) -> "BPR":
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        if self.fold_in not in ("ls", "mean"):
            raise ValueError("fold_in must be 'ls' or 'mean'")
        self.catalog = split.catalog
        x = interaction_matrix(split)
        with _quiet_blas():
            model = BayesianPersonalizedRanking(factors=self.factors, learning_rate=self.learning_rate,
                                                regularization=self.regularization, dtype=np.float32,
                                                iterations=self.iterations, random_state=self.seed,
                                                num_threads=self.num_threads)
            model.fit(x, show_progress=False)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self.counts_ = popularity(split)
        return self
