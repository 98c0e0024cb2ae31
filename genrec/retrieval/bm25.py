"""BM25 over item titles (bm25s), searched in batches; items added later are searchable at once.

Tokenisation is ours (lower-case alphanumeric words, English stop words dropped) so the same
tokens feed bm25s and, in the comparison test and benchmark, rank_bm25. bm25s precomputes every
(term, document) score, so changing ``k1``/``b`` or adding documents rebuilds the index; that
takes about 0.1-0.3 s for 12k titles, cheap enough for the k1/b grid and for cold-start adds.
"""

from __future__ import annotations

import re
from typing import Collection, Iterable, Sequence

import numpy as np

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
SCORE_BLOCK_FLOATS = 16_000_000
STOPWORDS = frozenset("""a an and are as at be but by for from has have in into is it its of on or
that the this to was were will with""".split())


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens without stop words."""
    return [w for w in _WORD.findall(str(text).lower()) if w not in STOPWORDS]


class BM25Index:
    """A BM25 index over ``(id, text)`` documents.

    ``method`` is a bm25s variant: ``"lucene"`` (default, as Lucene/Elasticsearch, which the
    paper's BM25 is), ``"robertson"`` (rank_bm25's BM25Okapi up to a constant factor, when no term
    is in more than half of the documents), ``"atire"``.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75, method: str = "lucene") -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1, self.b, self.method = float(k1), float(b), method
        self.ids: list[str] = []
        self._tokens: list[list[str]] = []
        self._bm25 = None
        self._encoded: tuple[list[list[int]], dict[str, int]] | None = None
        self._pos: tuple[int, dict[str, list[int]]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def build(self, ids: Sequence[str], texts: Sequence[str]) -> "BM25Index":
        """(Re)build the index over these documents."""
        if len(ids) != len(texts):
            raise ValueError("ids and texts differ in length")
        self.ids = list(ids)
        self._tokens = [tokenize(t) for t in texts]
        self._encoded = self._pos = None
        self._reindex()
        return self

    def add(self, ids: Iterable[str], texts: Iterable[str]) -> None:
        """Add documents; they are searchable when this returns (the index is rebuilt)."""
        ids, texts = list(ids), list(texts)
        if len(ids) != len(texts):
            raise ValueError("ids and texts differ in length")
        self.ids.extend(ids)
        self._tokens.extend(tokenize(t) for t in texts)
        self._encoded = None
        self._reindex()

    def set_params(self, k1: float | None = None, b: float | None = None) -> None:
        """Change k1/b (rebuilds the precomputed scores)."""
        self.k1 = self.k1 if k1 is None else float(k1)
        self.b = self.b if b is None else float(b)
        self._reindex()

    def _positions(self, ids: Collection[str]) -> list[int]:
        """Row numbers of these ids (every row, if an id was indexed twice); unknown ids are skipped.
        A dict, since ``np.isin`` over 12k string ids took ~3.7 s here."""
        if self._pos is None or self._pos[0] != len(self.ids):
            rows: dict[str, list[int]] = {}
            for r, i in enumerate(self.ids):
                rows.setdefault(i, []).append(r)
            self._pos = (len(self.ids), rows)
        rows = self._pos[1]
        return [r for i in ids for r in rows.get(i, ())]

    def _reindex(self) -> None:
        import bm25s

        self._bm25 = None
        if not self.ids:
            return
        if self._encoded is None or len(self._encoded[0]) != len(self._tokens):
            # Token ids computed once per document set, so a k1/b change only rescores.
            # An empty title must still be a document (its row scores 0): a placeholder token.
            vocab: dict[str, int] = {}
            docs = [[vocab.setdefault(w, len(vocab)) for w in (t or ["\x00"])] for t in self._tokens]
            vocab.setdefault("", len(vocab))  # bm25s' empty token, for queries with no known word
            self._encoded = (docs, vocab)
        bm = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        bm.index(self._encoded, show_progress=False)
        self._bm25 = bm

    def search(self, queries: Sequence[str], n: int = 10, exclude: Collection[str] = (), batch: int = 64
               ) -> tuple[list[list[str]], list[list[float]]]:
        """Top-``n`` document ids and scores per query, best first, ties by lower document number;
        documents that share no term with the query are not returned (so a list can be shorter
        than ``n``). Documents whose id is in ``exclude`` are never returned and take no place in
        the top ``n``, so a caller that filters out most of the catalog need not search deeper.

        Scores are bm25s's own (``get_scores_from_ids``), ``batch`` queries at a time; the top ``n``
        is genrec's :func:`~genrec.models.base.top_k`, not bm25s's ``retrieve``: bm25s selects with
        ``np.argpartition(scores, -k)`` on mostly-zero score rows, which measured ~10x slower at
        100k documents (benchmarks/bm25_search.py), and breaks ties arbitrarily."""
        if not queries:
            return [], []
        if self._bm25 is None:
            return [[] for _ in queries], [[] for _ in queries]
        from genrec.models.base import top_k

        bm = self._bm25
        n = max(1, min(int(n), len(self.ids)))
        banned = np.asarray(self._positions(exclude), dtype=np.int64) if exclude else None
        vocab = bm.vocab_dict
        toks = [[vocab[w] for w in tokenize(q) if w in vocab] for q in queries]
        out_ids: list[list[str]] = [[] for _ in queries]
        out_sc: list[list[float]] = [[] for _ in queries]
        has = [i for i, t in enumerate(toks) if t]
        batch = max(1, min(batch, SCORE_BLOCK_FLOATS // len(self.ids)))  # at most 64 MB of float32 scores
        for start in range(0, len(has), batch):
            rows = has[start:start + batch]
            scores = np.zeros((len(rows), len(self.ids)), dtype=np.float32)
            for r, q in enumerate(rows):
                scores[r] = bm.get_scores_from_ids(toks[q])
            if banned is not None and len(banned):
                scores[:, banned] = 0.0
            top, top_s = top_k(scores, n)
            for r, q in enumerate(rows):
                keep = top_s[r] > 0
                out_ids[q] = [self.ids[d] for d in top[r][keep]]
                out_sc[q] = top_s[r][keep].astype(float).tolist()
        return out_ids, out_sc
