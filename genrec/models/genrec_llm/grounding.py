"""BIGRec's grounding: a generated title is mapped to real items by the distance of its sentence
embedding to the catalog titles' (all-MiniLM-L6-v2 through :mod:`genrec.retrieval.embed`), so
every item gets a rank. The vectors are L2-normalised, so the L2 order is the cosine order."""

from __future__ import annotations

from typing import Sequence

import numpy as np


class Grounder:
    """Title vectors of the items known at fit time; the full order of items for a text."""

    def __init__(self, ids: Sequence[str], titles: Sequence[str], embedder: str | None = None,
                 vectors: np.ndarray | None = None) -> None:
        """``vectors``: the titles' vectors as saved with a model (else read from genrec's embedding
        cache, or computed and cached)."""
        from genrec.retrieval.embed import EmbeddingIndex, load_embedder

        self.embedder_spec = embedder
        emb = load_embedder(embedder)
        self.index = EmbeddingIndex(emb)
        if vectors is not None and vectors.shape == (len(ids), emb.dim):
            self.index.ids, self.index.texts = list(ids), list(titles)
            self.index.vectors = np.asarray(vectors, dtype=np.float32)
            self.index._row = {i: n for n, i in enumerate(ids)}
            return
        path = self.index.cache_path(list(ids), list(titles))
        if path.is_file():  # the same (model, titles) as an earlier fit or load: read, do not re-embed
            with np.load(path, allow_pickle=False) as z:
                vecs = np.asarray(z["vectors"], dtype=np.float32)
            if vecs.shape == (len(ids), emb.dim):
                self.index.ids, self.index.texts, self.index.vectors = list(ids), list(titles), vecs
                self.index._row = {i: n for n, i in enumerate(ids)}
                return
        self.index.build(list(ids), list(titles))
        self.index.save(path)

    @property
    def vectors(self) -> np.ndarray:
        return self.index.vectors

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.index.embedder.encode(list(texts))

    def similarities(self, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each text to every item, ``(len(texts), n_items)``."""
        return self.embed(texts) @ self.vectors.T

    def nearest(self, texts: Sequence[str]) -> list[int]:
        """The index of the closest item to each text (ties: the lower index)."""
        if not texts:
            return []
        return [int(i) for i in np.argmax(self.similarities(texts), axis=1)]


def full_order(sims: np.ndarray) -> np.ndarray:
    """Item indices by decreasing similarity (stable: ties keep catalog order)."""
    return np.argsort(-sims, kind="stable")
