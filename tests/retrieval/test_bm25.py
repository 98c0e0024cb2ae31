"""BM25 index: search, batching, add(), parameters, and agreement with rank_bm25."""

import numpy as np
import pytest

from genrec.retrieval.bm25 import BM25Index, tokenize

DOCS = {
    "s1": "Silkora Hydrating Shampoo, 8 oz",
    "s2": "Herbalia Organic Shampoo for dry hair",
    "c1": "Silkora Hydrating Conditioner, 8 oz",
    "c2": "Curlwise Conditioner with coconut oil",
    "m1": "Velvetine Mascara, black",
    "m2": "Noir Muse waterproof Mascara and Eyeliner set",
    "k1": "IronHearth cast iron Skillet, 12 inch",
    "k2": "Copperline Saucepan, 2 quart",
    "t1": "TrailForge Tent for 2 people",
    "t2": "Summit Gear Sleeping Bag, lightweight",
}


def make_index(**kw):
    return BM25Index(**kw).build(list(DOCS), list(DOCS.values()))


def test_tokenize_lowercases_and_drops_stopwords():
    assert tokenize("The Shampoo, for DRY hair!") == ["shampoo", "dry", "hair"]


def test_search_batches_and_ranks_matching_titles_first():
    idx = make_index()
    ids, scores = idx.search(["hydrating shampoo", "mascara", "zzz unknown words", ""], n=3)
    assert ids[0][0] == "s1"  # both words
    assert set(ids[0]) <= {"s1", "s2", "c1"}
    assert set(ids[1]) == {"m1", "m2"}  # only documents sharing a term are returned
    assert ids[2] == [] and ids[3] == []
    assert all(a >= b for a, b in zip(scores[0], scores[0][1:]))


def test_add_makes_items_searchable_at_once():
    idx = make_index()
    assert "new" not in idx.search(["hair mask"], n=5)[0][0]
    idx.add(["new"], ["Herbalia Repair Hair Mask"])
    assert idx.search(["hair mask"], n=5)[0][0][0] == "new"
    assert len(idx) == len(DOCS) + 1


def test_excluded_ids_are_masked_and_free_their_places():
    idx = make_index()
    full, full_sc = idx.search(["silkora hydrating shampoo conditioner"], n=3)
    assert full[0][:2] == ["s1", "c1"] or full[0][:2] == ["c1", "s1"]
    got, sc = idx.search(["silkora hydrating shampoo conditioner"], n=3, exclude={"s1", "c1", "nope"})
    assert not {"s1", "c1"} & set(got[0])
    assert set(got[0]) == {"s2", "c2"}  # the only other documents sharing a term, still found at n=3
    rest = dict(zip(full[0], full_sc[0]))
    assert all(rest.get(i, s) == pytest.approx(s) for i, s in zip(got[0], sc[0]))  # scores unchanged
    assert idx.search(["mascara"], n=5, exclude=set(DOCS))[0] == [[]]


def test_parameters_change_scores_and_are_validated():
    a = make_index(k1=0.5, b=0.1).search(["silkora conditioner"], n=1)[1][0][0]
    b = make_index(k1=2.0, b=0.9).search(["silkora conditioner"], n=1)[1][0][0]
    assert a != pytest.approx(b)
    with pytest.raises(ValueError):
        BM25Index(k1=-1)
    with pytest.raises(ValueError):
        BM25Index(b=1.5)


def test_agrees_with_rank_bm25_on_same_tokens():
    rank_bm25 = pytest.importorskip("rank_bm25")
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(60)]
    texts = [" ".join(rng.choice(vocab, size=int(rng.integers(3, 12)))) for _ in range(200)]
    ids = [f"d{i}" for i in range(len(texts))]
    k1, b = 1.5, 0.75
    # bm25s "robertson" is BM25Okapi up to the constant (k1 + 1) factor (no term is in > half the docs).
    idx = BM25Index(k1=k1, b=b, method="robertson").build(ids, texts)
    ref = rank_bm25.BM25Okapi([tokenize(t) for t in texts], k1=k1, b=b)
    queries = [" ".join(rng.choice(vocab, size=3)) for _ in range(20)]
    got_ids, got_scores = idx.search(queries, n=5)
    for q, gi, gs in zip(queries, got_ids, got_scores):
        s = ref.get_scores(tokenize(q))
        ref_top = np.argsort(-s, kind="stable")[:5]
        np.testing.assert_allclose(np.array(gs) * (k1 + 1), s[ref_top], rtol=1e-4)
        assert gi[0] == ids[ref_top[0]] or s[ref_top[0]] == pytest.approx(s[ref_top[1]])
