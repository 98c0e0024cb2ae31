"""Popularity and random baselines."""

from __future__ import annotations

import numpy as np

from genrec.models.base import ScoringRecommender


class PopRec(ScoringRecommender):
    """Recommends the items most often interacted with in training, to everyone."""

    name = "pop"

    def fit(self, split) -> "PopRec":
        self.catalog = split.catalog
        counts = np.zeros(len(self.catalog), dtype=np.float64)
        for item, c in split.train.item_counts().items():
            counts[self.catalog.index_of(item)] = c
        self.counts_ = counts
        return self

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        counts = self.counts_
        return np.broadcast_to(counts.astype(np.float32), (len(histories), len(counts))).copy()


class RandomRec(ScoringRecommender):
    """Uniformly random scores (seeded) over the items known at fit time: the floor every model
    must clear. Items added later are not recommended, as for every id-based model."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, split) -> "RandomRec":
        self.catalog = split.catalog
        self.rng_ = np.random.default_rng(self.seed)
        self.n_items_ = len(self.catalog)
        return self

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        n_items = vars(self).get("n_items_", len(self._require_fitted()))  # models saved before n_items_ existed
        return self.rng_.random((len(histories), n_items), dtype=np.float32)


