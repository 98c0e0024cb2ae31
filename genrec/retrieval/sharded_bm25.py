"""BM25 split into shards whose scores equal one unsharded index's: global corpus statistics.

bm25s computes the document frequencies and the average document length of the documents it
indexes, so shards built separately score the same document differently (and their top-k lists
cannot be merged). Here every shard is a real ``bm25s.BM25`` whose precomputed scores use the
*global* statistics: one vocabulary, document frequencies counted over all shards, the global
document count and average length. A document's score is then exactly what one index over all
documents gives (``BM25Index`` with the same tokens), and the global top-k is the merge of the
shards' top-k. Ties are broken by the lower global document number, in every shard and in the merge,
so results do not depend on the number of shards.

Shards can be saved with bm25s's own format and loaded memory-mapped (``mmap=True``), so a catalog
of millions of titles is searched without reading its score matrix into memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from genrec.retrieval.bm25 import tokenize

_PLACEHOLDER, _EMPTY = "\x00", ""  # as BM25Index: an empty title is a document; "" is bm25s' empty token


def _global_bm25_class():
    """A bm25s.BM25 whose ``build_index_from_ids`` takes document frequencies, document count and
    average length from outside. Hand-written because bm25s has no API for external corpus
    statistics; it mirrors bm25s 0.2-0.3's own method (idf array, then per-document scores)."""
    import bm25s
    import scipy.sparse as sp
    from bm25s.scoring import _build_idf_array, _build_scores_and_indices_for_matrix, _select_idf_scorer

    class GlobalStatsBM25(bm25s.BM25):
        global_df: dict[int, int]
        global_n: int
        global_avgdl: float

        def build_index_from_ids(self, unique_token_ids, corpus_token_ids, show_progress=True,
                                 leave_progress=False):
            if self.method in self.methods_requiring_nonoccurrence:
                raise ValueError(f"sharded BM25 supports lucene, robertson and atire, not {self.method!r}")
            self.nonoccurrence_array = None
            n_vocab = len(unique_token_ids)
            df = {t: self.global_df.get(t, 0) for t in unique_token_ids}
            idf = _build_idf_array(df, self.global_n, _select_idf_scorer(self.idf_method), dtype=self.dtype)
            # The flat arrays are sized by the shard's own (document, term) pairs.
            local = {0: sum(len(set(d)) for d in corpus_token_ids)}
            scores, docs, vocab = _build_scores_and_indices_for_matrix(
                corpus_token_ids, idf, self.global_avgdl, local, self.k1, self.b, self.delta, None,
                method=self.method, dtype=self.dtype, int_dtype=self.int_dtype, show_progress=False)
            m = sp.csc_matrix((scores, (docs, vocab)), shape=(len(corpus_token_ids), n_vocab), dtype=self.dtype)
            return {"data": m.data, "indices": m.indices, "indptr": m.indptr, "num_docs": len(corpus_token_ids)}

    return GlobalStatsBM25


class ShardedBM25:
    """BM25 over ``(id, text)`` documents in ``n_shards`` contiguous shards with global statistics.

    ``k1``, ``b`` and ``method`` as :class:`~genrec.retrieval.bm25.BM25Index`.
    """

    def __init__(self, n_shards: int = 4, k1: float = 1.2, b: float = 0.75, method: str = "lucene") -> None:
        if n_shards < 1:
            raise ValueError(f"n_shards must be at least 1, got {n_shards}")
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.n_shards, self.k1, self.b, self.method = int(n_shards), float(k1), float(b), method
        self.ids: list[str] = []
        self.vocab: dict[str, int] = {}
        self.shards: list = []
        self.offsets: list[int] = []  # global number of each shard's first document

    def __len__(self) -> int:
        return len(self.ids)

    def build(self, ids: Sequence[str], texts: Iterable[str]) -> "ShardedBM25":
        """Index the documents: one pass counts the global statistics, then each shard is built.
        Token ids are kept per document (small ints), the shards' score matrices one at a time."""
        ids = list(ids)
        docs: list[list[int]] = []
        df: dict[int, int] = {}
        total = 0
        vocab = self.vocab = {}
        for text in texts:
            toks = tokenize(text) or [_PLACEHOLDER]
            d = [vocab.setdefault(w, len(vocab)) for w in toks]
            for t in set(d):
                df[t] = df.get(t, 0) + 1
            total += len(d)
            docs.append(d)
        if len(docs) != len(ids):
            raise ValueError(f"{len(ids)} ids but {len(docs)} texts")
        vocab.setdefault(_EMPTY, len(vocab))
        self.ids = ids
        n = len(docs)
        size = -(-n // self.n_shards) if n else 0
        self.offsets = list(range(0, n, size)) if n else []
        cls = _global_bm25_class()
        self.shards = []
        for lo in self.offsets:
            bm = cls(k1=self.k1, b=self.b, method=self.method, backend="numpy")
            bm.global_df, bm.global_n, bm.global_avgdl = df, n, total / n
            bm.index((docs[lo:lo + size], vocab), show_progress=False)
            self.shards.append(bm)
        return self

    def save(self, folder: str | Path) -> None:
        """Each shard in bm25s's format (``shard_<i>/``) plus ``sharded.json`` (ids, offsets, params)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for i, bm in enumerate(self.shards):
            bm.save(folder / f"shard_{i}")
        meta = {"k1": self.k1, "b": self.b, "method": self.method, "n_shards": self.n_shards,
                "offsets": self.offsets, "ids": self.ids}
        (folder / "sharded.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = True) -> "ShardedBM25":
        """Load a saved index; ``mmap=True`` keeps the score matrices on disk (memory-mapped)."""
        import bm25s

        folder = Path(folder)
        meta_path = folder / "sharded.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} not found: not a saved ShardedBM25 folder")
        meta = json.loads(meta_path.read_text())
        out = cls(meta["n_shards"], meta["k1"], meta["b"], meta["method"])
        out.ids, out.offsets = meta["ids"], meta["offsets"]
        out.shards = [bm25s.BM25.load(folder / f"shard_{i}", mmap=mmap) for i in range(len(out.offsets))]
        out.vocab = out.shards[0].vocab_dict if out.shards else {}
        return out

    def search(self, queries: Sequence[str], n: int = 10, batch: int = 64
               ) -> tuple[list[list[str]], list[list[float]]]:
        """Top-``n`` ids and scores per query, best first, ties by lower document number; documents
        sharing no term with the query are not returned. Scores ``batch`` queries per shard at once."""
        if not queries:
            return [], []
        from genrec.models.base import top_k

        toks = [[self.vocab[w] for w in tokenize(q) if w in self.vocab] for q in queries]
        out_ids: list[list[str]] = [[] for _ in queries]
        out_sc: list[list[float]] = [[] for _ in queries]
        for start in range(0, len(queries), batch):
            rows = range(start, min(len(queries), start + batch))
            cand_i: list[list[np.ndarray]] = [[] for _ in rows]
            cand_s: list[list[np.ndarray]] = [[] for _ in rows]
            for lo, bm in zip(self.offsets, self.shards):
                scores = np.zeros((len(rows), bm.scores["num_docs"]), dtype=np.float32)
                for r, q in enumerate(rows):
                    if toks[q]:
                        scores[r] = bm.get_scores_from_ids(toks[q])
                top, top_s = top_k(scores, n)
                for r in range(len(rows)):
                    keep = top_s[r] > 0
                    cand_i[r].append(top[r][keep] + lo)
                    cand_s[r].append(top_s[r][keep])
            for r, q in enumerate(rows):
                idx, sc = np.concatenate(cand_i[r]), np.concatenate(cand_s[r])
                order = np.lexsort((idx, -sc))[:n]  # score descending, then global document number
                out_ids[q] = [self.ids[j] for j in idx[order]]
                out_sc[q] = sc[order].astype(float).tolist()
        return out_ids, out_sc
