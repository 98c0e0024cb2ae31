"""LightFM (Kula 2015) with BPR (or WARP) loss on implicit interactions.

The installed module ``lightfm`` is the maintained fork **lightfm-next** 1.19 (same API, import
name ``lightfm``): lightfm 1.17 itself does not build on current setuptools.

LightFM is fitted with one indicator feature per training user (its default), so its user
embeddings belong to training users; a history given to ``recommend`` (of a known or a new user:
histories carry no user id) is folded in, as genrec's ``bpr`` does. ``fold_in="mean"`` (the
default) averages the history items' embeddings (bias weight 1); ``"ls"`` solves the
least-squares user vector that separates the history items (target 1, confidence
``fold_in_alpha``) from the rest (target 0) against LightFM's item embeddings with the item bias as
a last column (:func:`genrec.models.baselines.mf.least_squares_fold_in`). The default is "mean"
because "ls" failed to separate two obvious tastes on a 20-item fixture with WARP
(tests/models/test_svd_lightfm.py); on ML-100K ``loo`` test cases, one run, mean gave R@10 0.117
vs 0.111 for "ls" (BPR) and 0.118 vs 0.099 (WARP). Scores ``x . [e_i, b_i]`` are computed for the whole
catalog at once from ``get_item_representations()`` (not one ``predict`` per pair). An empty
history gets the most popular training items. Deterministic for a ``seed`` with ``num_threads=1``
(the default).

(A first version represented users by their history items as LightFM user features, which needs no
fold-in, but made each BPR step cost ~100 features: 464 s for 30 epochs on ML-100K under load.)
"""

from __future__ import annotations

import numpy as np

from genrec.models.baselines.itemknn import interaction_matrix, popularity
from genrec.models.baselines.mf import BiasedFoldIn


class LightFMRec(BiasedFoldIn):
    """LightFM, BPR loss by default (``loss="warp"`` for WARP), histories folded in (module docstring)."""

    name = "lightfm"
    fold_in_threads = 1

    def __init__(self, factors: int = 64, loss: str = "bpr", epochs: int = 30, learning_rate: float = 0.05,
                 regularization: float = 0.0, max_sampled: int = 10, fold_in: str = "mean", fold_in_alpha: float = 10.0,
                 fold_in_regularization: float = 0.1, seed: int = 0, num_threads: int = 1) -> None:
        self.factors = factors
        self.loss = loss
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.max_sampled = max_sampled
        self.fold_in = fold_in
        self.fold_in_alpha = fold_in_alpha
        self.fold_in_regularization = fold_in_regularization
        self.seed = seed
        self.num_threads = num_threads

    def fit(self, split) -> "LightFMRec":
        from lightfm import LightFM  # type: ignore[import-untyped]  # the lightfm-next fork (module docstring)

        if self.loss not in ("bpr", "warp"):
            raise ValueError("loss must be 'bpr' or 'warp'")
        if self.fold_in not in ("ls", "mean"):
            raise ValueError("fold_in must be 'ls' or 'mean'")
        if self.epochs <= 0:
            raise ValueError("epochs must be positive")
        self.catalog = split.catalog
        x = interaction_matrix(split).tocoo()
        model = LightFM(no_components=self.factors, loss=self.loss, learning_rate=self.learning_rate,
                        item_alpha=self.regularization, user_alpha=self.regularization,
                        max_sampled=self.max_sampled, random_state=self.seed)
        model.fit(x, epochs=self.epochs, num_threads=self.num_threads)
        item_biases, item_emb = model.get_item_representations()
        # item embeddings with the bias as a last column: a user vector [e_u, 1] scores e_u . e_i + b_i
        self.item_factors_ = np.ascontiguousarray(np.hstack([item_emb, item_biases[:, None]]), dtype=np.float32)
        self.counts_ = popularity(split)
        return self
