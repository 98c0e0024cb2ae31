"""Matrix factorisation of explicit ratings: scikit-surprise's ``SVD`` (Funk SVD with biases).

``fit`` trains ``surprise.SVD`` on the training pairs' ratings (``split.ratings``); the prediction
is ``r(u, i) = mu + b_u + b_i + p_u . q_i``. Ranking uses surprise's learned arrays (``pu``,
``qi``, ``bu``, ``bi``), vectorised over the catalog (one matrix product per block of histories),
never one ``predict()`` call per pair.

Histories carry no user id and no ratings, so ranking always folds the user in from the history:
the history items are taken as rated ``like_rating`` (default: the highest training rating) and
``p_u`` is the ridge-regression solution of ``like_rating - mu - b_i = p_u . q_i`` over them
(regularised by ``reg_all``, as in training; ``b_u`` is a constant per user and does not change a
ranking, so it is left at 0). Items are then ranked by predicted rating, as in the CS224N report
(which ranked every unseen item by surprise's prediction). An empty history gets ``p_u = 0``: the
ranking is by item bias alone.

Rating prediction (:meth:`SVD.predict_ratings`) uses the trained ``p_u`` and ``b_u`` of users seen
at fit; users unseen at fit get the bias-only prediction ``mu + b_i`` (no fold-in: their
ratings are unknown). Items unseen at fit get ``b_i = 0`` and ``q_i = 0`` for ratings, and the
lowest bias for ranking (so they come last among scored items).

Data without ratings (the implicit demo shop): every training interaction counts as rating 1 and
``implicit_negatives`` seeded random unobserved items per interaction as rating 0, so the
factorisation still learns to separate interactions from non-interactions.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from genrec.models.base import ScoringRecommender


def surprise_trainset(users: Sequence[str], items: Sequence[str], ratings: np.ndarray, scale: tuple[float, float]):
    """A ``surprise.Trainset`` of (user, item, rating) triples, built from the list directly
    (surprise's ``Dataset.load_from_df`` would need pandas, which genrec does not depend on)."""
    import surprise  # type: ignore[import-untyped]

    data = surprise.Dataset(surprise.Reader(rating_scale=scale))
    return data.construct_trainset([(u, i, float(r), None) for u, i, r in zip(users, items, ratings.tolist())])


class SVD(ScoringRecommender):
    """Biased matrix factorisation of explicit ratings (scikit-surprise ``SVD``); ranking by
    predicted rating with a ridge fold-in of the history (see the module docstring)."""

    name = "svd"

    def __init__(self, factors: int = 100, epochs: int = 20, lr_all: float = 0.005, reg_all: float = 0.02,
                 init_std: float = 0.1, like_rating: float | None = None, implicit_negatives: int = 1,
                 seed: int = 0) -> None:
        self.factors = factors
        self.epochs = epochs
        self.lr_all = lr_all
        self.reg_all = reg_all
        self.init_std = init_std
        self.like_rating = like_rating
        self.implicit_negatives = implicit_negatives
        self.seed = seed

    def _training_triples(self, split) -> tuple[list[str], list[str], np.ndarray, bool]:
        from genrec.data.ratings import train_triples

        if split.ratings is not None:
            users, items, vals = train_triples(split)
            return users, items, vals, True
        # implicit data: interactions 1, seeded random non-interactions 0
        rng = np.random.default_rng(self.seed)
        ids = split.catalog.ids
        users, items, out = [], [], []
        for u in split.train.users:
            mine = set(split.train[u])
            for i in mine:
                users.append(u)
                items.append(i)
                out.append(1.0)
            for _ in range(self.implicit_negatives * len(mine)):
                j = ids[int(rng.integers(len(ids)))]
                if j not in mine:
                    users.append(u)
                    items.append(j)
                    out.append(0.0)
        return users, items, np.asarray(out), False

    def fit(self, split) -> "SVD":
        import surprise

        if self.factors <= 0 or self.epochs <= 0:
            raise ValueError("factors and epochs must be positive")
        self.catalog = split.catalog
        users, items, vals, explicit = self._training_triples(split)
        if not users:
            raise ValueError("svd: no training interactions")
        lo, hi = float(vals.min()), float(vals.max())
        if lo == hi:  # surprise's Reader needs a scale with two ends
            lo, hi = lo - 1.0, hi
        trainset = surprise_trainset(users, items, vals, (lo, hi))
        algo = surprise.SVD(n_factors=self.factors, n_epochs=self.epochs, lr_all=self.lr_all, reg_all=self.reg_all,
                            init_std_dev=self.init_std, random_state=self.seed)
        algo.fit(trainset)
        n, k = len(self.catalog), self.factors
        self.mu_ = float(trainset.global_mean)
        self.scale_ = (lo, hi)
        self.explicit_ = explicit
        # item arrays aligned with the catalog's indices (items unseen at fit: zero factors, bias 0)
        self.qi_ = np.zeros((n, k), dtype=np.float64)
        self.bi_ = np.zeros(n, dtype=np.float64)
        self.item_trained_ = np.zeros(n, dtype=bool)
        for inner in trainset.all_items():
            j = self.catalog.index_of(trainset.to_raw_iid(inner))
            self.qi_[j] = algo.qi[inner]
            self.bi_[j] = algo.bi[inner]
            self.item_trained_[j] = True
        self.user_index_ = {trainset.to_raw_uid(inner): inner for inner in trainset.all_users()}
        self.pu_ = np.asarray(algo.pu, dtype=np.float64)
        self.bu_ = np.asarray(algo.bu, dtype=np.float64)
        return self

    def user_factors(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Fold-in: ridge regression of ``like - mu - b_i`` on ``q_i`` over each history's items."""
        q, k = self.qi_, self.qi_.shape[1]
        # read here, not at fit: like_rating can change without refitting (a score-only parameter)
        like = float(self.like_rating) if self.like_rating is not None else self.scale_[1]
        out = np.zeros((len(histories), k), dtype=np.float64)
        eye = self.reg_all * np.eye(k)
        for r, h in enumerate(histories):
            h = np.unique(np.asarray(h, dtype=np.int64))
            h = h[(h < len(q))]
            h = h[self.item_trained_[h]]
            if len(h) == 0:
                continue
            qh = q[h]
            y = like - self.mu_ - self.bi_[h]
            # reg scaled by the number of items, as surprise's SGD applies reg_all once per rating
            out[r] = np.linalg.solve(qh.T @ qh + len(h) * eye, qh.T @ y)
        return out

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        bi = np.where(self.item_trained_, self.bi_, self.bi_.min() - 1.0)
        scores = self.mu_ + bi[None, :] + self.user_factors(histories) @ self.qi_.T
        return scores.astype(np.float32)

    def predict_ratings(self, users: Sequence[str], items: Sequence[str], *, clip: bool = True) -> np.ndarray:
        """Predicted ratings of (user, item) pairs, vectorised: trained factors for users seen at
        fit, ``mu + b_i`` for the others; clipped to the training scale when ``clip``."""
        self._require_fitted()
        index = self.catalog._index if self.catalog is not None else {}
        u = np.asarray([self.user_index_.get(x, -1) for x in users], dtype=np.int64)
        j = np.asarray([index.get(x, -1) for x in items], dtype=np.int64)
        known_u, known_i = u >= 0, (j >= 0) & (j < len(self.bi_))
        known_i[known_i] &= self.item_trained_[j[known_i]]
        pred = np.full(len(u), self.mu_)
        pred[known_i] += self.bi_[j[known_i]]
        pred[known_u] += self.bu_[u[known_u]]
        both = known_u & known_i
        pred[both] += np.einsum("nk,nk->n", self.pu_[u[both]], self.qi_[j[both]])
        return np.clip(pred, *self.scale_) if clip else pred
