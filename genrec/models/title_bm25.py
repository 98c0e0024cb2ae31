"""``title-bm25``: GPT4Rec with the language model taken out. The queries are the user's own last
m titles, newest first, answered by the same BM25 over titles, rank-based merge and k1/b grid
search (:class:`~genrec.models.query_search.QuerySearchRecommender`). It is GPT4Rec with the LM
replaced by "copy the history", so it is the reference a trained LM must beat.
"""

from __future__ import annotations

import time
from typing import Sequence

from genrec.models.query_search import QuerySearchRecommender, sample_cases


class TitleBM25(QuerySearchRecommender):
    """GPT4Rec without a language model: the queries are the user's last ``num_queries`` distinct
    titles, newest first (query score ``-rank``). BM25 k1/b are grid-searched on validation users
    like GPT4Rec's. Text-only, so items added after fitting are found at once."""

    name = "title-bm25"

    def __init__(self, num_queries: int = 10, k1: float = 1.2, b: float = 0.75, tune_bm25: bool = True,
                 valid_users: int = 500, valid_k: int = 10, seed: int = 0) -> None:
        self.num_queries = num_queries
        self.k1 = k1
        self.b = b
        self.tune_bm25 = tune_bm25
        self.valid_users = valid_users
        self.valid_k = valid_k
        self.seed = seed

    def fit(self, split) -> "TitleBM25":
        if self.num_queries < 1:
            raise ValueError("num_queries must be >= 1")
        t0 = time.perf_counter()
        self._setup_search(split)
        self.bm25_grid_ = []
        valid = sample_cases(split.valid, self.valid_users, self.seed)
        if self.tune_bm25 and valid:
            self._tune_bm25(valid)
        self.fit_info_ = {"valid_users": len(valid), "fit_seconds": round(time.perf_counter() - t0, 2)}
        return self

    def _generate(self, histories: Sequence[Sequence[str]]) -> list[list[tuple[str, float]]]:
        catalog = self._require_fitted()
        out = []
        for h in histories:
            qs: list[str] = []
            for i in reversed(h):
                if i in catalog:
                    t = catalog[i].title
                    if t and t not in qs:
                        qs.append(t)
                if len(qs) >= self.num_queries:
                    break
            out.append([(q, -float(r)) for r, q in enumerate(qs)])
        return out

    def _save_state(self, path) -> None:
        import json

        (path / "title_bm25_state.json").write_text(json.dumps(self._state(), indent=1))

    def _load_state(self, path) -> None:
        import json

        vars(self).update(json.loads((path / "title_bm25_state.json").read_text()))
        self._build_index(self.k1_, self.b_)
