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


def test_search_equals_bm25s_retrieve_with_deterministic_ties():
    """search() selects with genrec's top_k instead of bm25s's retrieve (~10x faster at 100k
    documents): same scores as retrieve, and the same ids wherever retrieve's order is not a tie;
    ties go to the lower document number, so the top n is a prefix of the top n + 5."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    p = 1 / np.arange(1, 301)
    p /= p.sum()
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 9)), p=p)) for _ in range(3000)]
    ids = [f"d{i}" for i in range(len(texts))]
    idx = BM25Index().build(ids, texts)
    queries = [" ".join(rng.choice(words[:120], size=int(rng.integers(1, 4)))) for _ in range(150)]
    queries += ["", "nothing matches this"]
    exclude = set(ids[::7])
    got_ids, got_sc = idx.search(queries, 10, exclude=exclude, batch=16)
    more_ids, _ = idx.search(queries, 15, exclude=exclude)
    vocab = idx._bm25.vocab_dict
    mask = np.ones(len(ids), dtype=np.float32)
    mask[idx._positions(exclude)] = 0
    for q, gi, gs, mi in zip(queries, got_ids, got_sc, more_ids):
        toks = [w for w in tokenize(q) if w in vocab]
        assert gi == mi[:len(gi)]
        if not toks:
            assert gi == [] and gs == []
            continue
        assert not exclude & set(gi)
        ref_d, ref_s = idx._bm25.retrieve([toks], k=10, show_progress=False, return_as="tuple", weight_mask=mask)
        keep = ref_s[0] > 0
        ref_ids, ref_scores = [ids[d] for d in ref_d[0][keep]], ref_s[0][keep]
        np.testing.assert_array_equal(np.asarray(gs, dtype=np.float32), ref_scores)  # same scores, same order
        full = idx._bm25.get_scores_from_ids([vocab[w] for w in toks]) * mask
        order = np.lexsort((np.arange(len(ids)), -full))  # brute force: score desc, then document number
        want = [ids[d] for d in order[:10] if full[d] > 0]
        assert gi == want
        for j, (a, b) in enumerate(zip(gi, ref_ids)):
            if a != b:  # only where retrieve broke a tie another way
                assert gs[j] in np.asarray(gs)[np.arange(len(gs)) != j] or gs[j] == ref_scores[-1]
    assert len([q for q in got_ids if q]) > 100
