"""The base of recommenders that write text queries per user and answer them with BM25 over titles.

:class:`QuerySearchRecommender` holds what GPT4Rec shares with any query writer: the BM25 index
over titles (items added later are searchable at once), the paper's rank-based merge, the k1/b
grid search on validation users, the ``why`` (each query and the items it put in the list) and
the notes. Subclasses implement ``_generate``: GPT4Rec (:mod:`genrec.models.gpt4rec`) with a
language model, ``title-bm25`` (:mod:`genrec.models.title_bm25`) with the user's own titles.
"""

from __future__ import annotations

from typing import Collection, Iterable, Self, Sequence

import numpy as np

from genrec.core.capabilities import Capabilities
from genrec.core.why import Query, Why
from genrec.data.catalog import Item
from genrec.models.base import Recommendations, Recommender

K1_GRID = (0.3, 0.6, 1.2, 2.0, 3.0)
B_GRID = (0.25, 0.5, 0.75, 0.9)


class QuerySearchRecommender(Recommender):
    """Base: ``_generate(histories) -> [[(query, score), ...] per history]`` (best first), then
    BM25 search and rank-based merge. Needs ``num_queries``, ``k1``, ``b``, ``valid_k``."""

    capabilities = Capabilities(cold_start_items=True, text_updates=True, takes_exclude=True, explains=True,
                                writes_queries=True, per_k_lists=True)

    num_queries: int
    k1: float
    b: float
    valid_k: int
    valid_users: int
    seed: int

    def _generate(self, histories: Sequence[Sequence[str]]) -> list[list[tuple[str, float]]]:  # pragma: no cover
        raise NotImplementedError

    def _setup_search(self, split) -> None:
        """Copy the catalog, rank popular training items (the last-resort fill), build the index."""
        self.catalog = split.catalog.copy()
        counts = split.train.item_counts()
        self.popular_ = [i for i, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:1000]
        self.k1_, self.b_ = float(self.k1), float(self.b)
        self._build_index(self.k1_, self.b_)

    def _build_index(self, k1: float, b: float) -> None:
        from genrec.retrieval.bm25 import BM25Index

        catalog = self._require_fitted()
        self._bm25 = BM25Index(k1, b).build(catalog.ids, catalog.titles)

    def _recall(self, cases, k: int, queries=None) -> float:
        recs = self._recommend([list(c.history) for c in cases], k, queries=queries)
        return float(np.mean([c.target in items for c, items in zip(cases, recs.items)]))

    def _tune_bm25(self, valid) -> None:
        """Grid-search k1, b on validation users with the queries generated once (the paper's
        k1 in [0, 3], b in (0, 1)); ties keep the first grid point."""
        queries = self._generate([list(c.history) for c in valid])
        best = (-1.0, self.k1_, self.b_)
        self.bm25_grid_ = []
        for k1 in K1_GRID:
            for b in B_GRID:
                self._bm25.set_params(k1, b)
                r = self._recall(valid, self.valid_k, queries)
                self.bm25_grid_.append({"k1": k1, "b": b, f"recall@{self.valid_k}": r})
                if r > best[0] + 1e-12:
                    best = (r, k1, b)
        _, self.k1_, self.b_ = best
        self._bm25.set_params(self.k1_, self.b_)

    def retune_search(self, split) -> "QuerySearchRecommender":
        """Grid-search BM25 k1/b again on ``split``'s validation users, with the queries the model
        writes now (e.g. after changing its decoding)."""
        self._require_fitted()
        valid = sample_cases(split.valid, self.valid_users, self.seed)
        if valid:
            self._tune_bm25(valid)
        return self

    def recommend(self, histories: Sequence[Sequence[str]], k: int = 10, *,
                  exclude_history: bool = True, exclude: Collection[str] = ()) -> Recommendations:
        """Top ``k`` per history; ``exclude`` (item ids, e.g. deleted items) is never returned.
        Give exclusions here rather than asking for more and filtering: the merge gives each
        query k/m slots, so a longer list's first k favour the first queries."""
        self._require_fitted()
        if k <= 0:
            raise ValueError("k must be positive")
        return self._recommend(histories, k, exclude_history=exclude_history, exclude=exclude)

    def recommend_for_ks(self, histories: Sequence[Sequence[str]], ks: Sequence[int], *,
                         exclude_history: bool = True, exclude: Collection[str] = ()) -> dict[int, Recommendations]:
        """One list per K, from queries written once. The merge gives each query K/m slots, so
        the top 10 is not the first 10 of the top 40; the paper evaluates each K on its own."""
        catalog = self._require_fitted()
        if not ks or min(ks) <= 0:
            raise ValueError("ks must be positive")
        encoded, _ = self.encode_histories(histories)
        queries = self._generate([[catalog.id_at(j) for j in e] for e in encoded])
        return {int(k): self._recommend(histories, int(k), exclude_history=exclude_history, queries=queries,
                                        exclude=exclude)
                for k in ks}

    def _recommend(self, histories, k: int, *, exclude_history: bool = True, queries=None,
                   exclude: Collection[str] = ()) -> Recommendations:
        from genrec.retrieval.merge import rank_merge

        catalog = self._require_fitted()
        encoded, notes = self.encode_histories(histories)
        if not encoded:
            return Recommendations([], [], [], [])
        known = [[catalog.id_at(j) for j in e] for e in encoded]
        if queries is None:
            queries = self._generate(known)
        flat = [q for qs in queries for q, _ in qs]
        exclude = set(exclude)
        # ``exclude`` is masked inside the search; deep enough that each query still has its quota
        # after the user's own history is skipped.
        n = k + (max((len(h) for h in known), default=0) if exclude_history else 0)
        found, _ = self._bm25.search(flat, n, exclude=exclude)
        items, scores, whys = [], [], []
        pos = 0
        for u, qs in enumerate(queries):
            res = found[pos:pos + len(qs)]
            pos += len(qs)
            merged = rank_merge(res, k, exclude=exclude | set(known[u]) if exclude_history else exclude,
                                popular=self.popular_)
            items.append(merged.items)
            scores.append(merged.scores)
            whys.append(Why(tuple(Query(q, float(s), tuple(c)) for (q, s), c in zip(qs, merged.contributions)),
                            filled_by_popularity=merged.filled_by_popularity))
            if not known[u]:
                notes[u].append(self._empty_history_note())
            if len(qs) < self.num_queries:
                notes[u].append(f"{len(qs)} distinct queries generated (asked for {self.num_queries})")
            if merged.filled_from_queries:
                notes[u].append(f"{merged.filled_from_queries} item(s) filled from later query results "
                                "(some queries found fewer than their share)")
            if merged.filled_by_popularity:
                notes[u].append(f"{merged.filled_by_popularity} item(s) filled by popularity "
                                "(the queries found too few items)")
        return Recommendations(items, scores, whys, notes)

    def _empty_history_note(self) -> str:
        return "empty history: no queries, items filled by popularity"

    def generate_queries(self, histories: Sequence[Sequence[str]]) -> list[list[tuple[str, float]]]:
        """The queries written for each history (unknown ids ignored), best first."""
        self._require_fitted()
        return self._generate(histories)

    # -- cold start -------------------------------------------------------------------------------
    def copy_for_edit(self) -> Self:
        """As the base; the BM25 index, which ``add_items`` extends in place, is copied too."""
        import copy

        dup = super().copy_for_edit()
        dup._bm25 = copy.deepcopy(self._bm25)
        return dup

    def add_items(self, items: Iterable[Item]) -> list[int]:
        """Add items after fitting; they are searchable (and recommendable) at once."""
        catalog = self._own_catalog()
        new = catalog.add(list(items))
        new_items = [catalog.item_at(j) for j in new]
        self._bm25.add([it.id for it in new_items], [it.title for it in new_items])
        return new

    def update_items(self, items: Iterable[Item]) -> None:
        """Change items' titles (or other fields) after fitting; search uses the new titles at once."""
        super().update_items(items)
        catalog = self._require_fitted()
        self._bm25.build(catalog.ids, catalog.titles)


def sample_cases(cases, n: int, seed: int) -> list:
    """``n`` cases drawn without replacement with ``seed`` (all when there are fewer), in order."""
    if n <= 0 or not cases:
        return []
    if len(cases) <= n:
        return list(cases)
    rng = np.random.default_rng(seed)
    return [cases[i] for i in sorted(rng.choice(len(cases), n, replace=False))]
