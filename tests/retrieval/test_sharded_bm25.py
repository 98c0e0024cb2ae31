"""ShardedBM25 (global statistics) gives the unsharded BM25's top-k: ids and scores, ties included."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genrec.data.synthetic_large import write_synthetic_large
from genrec.retrieval.bm25 import BM25Index, tokenize
from genrec.retrieval.sharded_bm25 import ShardedBM25


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    folder = tmp_path_factory.mktemp("syn")
    write_synthetic_large(folder, n_items=3000, n_interactions=3000, seed=5)
    rows = [json.loads(line) for line in open(folder / "items.jsonl", encoding="utf-8")]
    ids = [r["item_id"] for r in rows]
    titles = [r["title"] for r in rows]
    # Exact duplicates make tied scores; an empty title is still a document.
    titles[10] = titles[2000] = titles[2999] = titles[5]
    titles[7] = ""
    return ids, titles


def reference_top(index: BM25Index, query: str, n: int) -> tuple[list[str], np.ndarray]:
    """The unsharded bm25s index's own scores over all documents, top n, ties by document number."""
    toks = [w for w in tokenize(query) if w in index._bm25.vocab_dict]
    if not toks:
        return [], np.zeros(0)
    s = index._bm25.get_scores(toks)
    order = np.lexsort((np.arange(len(s)), -s))[:n]
    order = order[s[order] > 0]
    return [index.ids[j] for j in order], s[order]


def queries(titles: list[str], n: int = 120) -> list[str]:
    rng = np.random.default_rng(0)
    out = []
    for i in rng.choice(len(titles), n, replace=False):
        words = titles[int(i)].split()
        k = int(rng.integers(1, min(4, len(words)) + 1)) if words else 1
        out.append(" ".join(rng.choice(words, k, replace=False)) if words else "nothing here")
    return out + [titles[5], titles[5].split()[0], "zzzunknownword", ""]


@pytest.mark.parametrize("n_shards", [1, 3, 7])
def test_sharded_topk_equals_unsharded(catalog, n_shards):
    ids, titles = catalog
    ref = BM25Index().build(ids, titles)
    sh = ShardedBM25(n_shards=n_shards).build(ids, titles)
    assert len(sh.shards) == n_shards
    qs = queries(titles)
    got_ids, got_sc = sh.search(qs, n=20)
    for q, gi, gs in zip(qs, got_ids, got_sc):
        want_ids, want_sc = reference_top(ref, q, 20)
        assert gi == want_ids, q
        np.testing.assert_allclose(gs, want_sc, rtol=0, atol=1e-5)
    # BM25Index.search (bm25s' own top-k) agrees on the scores.
    lib_ids, lib_sc = ref.search(qs, n=20)
    for gs, ls in zip(got_sc, lib_sc):
        np.testing.assert_allclose(gs, ls, rtol=0, atol=1e-5)


def test_ties_are_broken_by_document_number(catalog):
    ids, titles = catalog
    sh = ShardedBM25(n_shards=4).build(ids, titles)
    got, scores = sh.search([titles[5]], n=4)
    # Documents 5, 10, 2000 and 2999 have the same title: the same best score, in document order,
    # although they lie in three different shards.
    assert got[0] == [ids[5], ids[10], ids[2000], ids[2999]]
    assert len(set(scores[0])) == 1


def test_shards_built_separately_would_differ(catalog):
    """Why global statistics: a shard indexed alone scores its documents differently."""
    ids, titles = catalog
    alone = BM25Index().build(ids[:1000], titles[:1000])
    full = BM25Index().build(ids, titles)
    q = [titles[3]]
    assert not np.allclose(alone.search(q, 5)[1][0], full.search(q, 5)[1][0])


def test_save_and_load_memory_mapped(catalog, tmp_path):
    ids, titles = catalog
    sh = ShardedBM25(n_shards=3).build(ids, titles)
    sh.save(tmp_path / "idx")
    loaded = ShardedBM25.load(tmp_path / "idx", mmap=True)
    assert isinstance(loaded.shards[0].scores["data"], np.memmap)
    qs = queries(titles, 30)
    assert loaded.search(qs, n=10) == sh.search(qs, n=10)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_shards"):
        ShardedBM25(n_shards=0)
    with pytest.raises(ValueError, match="ids but"):
        ShardedBM25().build(["a", "b"], ["x"])
    with pytest.raises(FileNotFoundError, match="sharded.json"):
        ShardedBM25.load("/nonexistent/folder")
