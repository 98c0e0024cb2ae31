"""Metrics checked against values worked out by hand, and vectorised forms against the pure ones."""

import math

import numpy as np
import pytest

from genrec.eval import metrics as M


def test_recall_precision_hit_by_hand():
    ranked = ["a", "b", "c", "d", "e"]
    assert M.recall_at_k(ranked, ["c"], 2) == 0.0
    assert M.recall_at_k(ranked, ["c"], 3) == 1.0
    assert M.recall_at_k(ranked, ["a", "z"], 5) == 0.5  # one of two relevant items retrieved
    assert M.precision_at_k(ranked, ["a", "c"], 5) == 2 / 5
    assert M.precision_at_k(ranked[:2], ["a"], 5) == 1 / 5  # divided by k, not by the list length
    assert M.hit_at_k(ranked, ["e"], 5) == 1.0 and M.hit_at_k(ranked, ["e"], 4) == 0.0
    with pytest.raises(ValueError):
        M.recall_at_k(ranked, [], 5)


def test_ndcg_by_hand():
    # target at rank 3: DCG = 1/log2(4) = 0.5, IDCG = 1
    assert M.ndcg_at_k(["a", "b", "c"], ["c"], 3) == pytest.approx(0.5)
    assert M.ndcg_at_k(["a", "b", "c"], ["c"], 2) == 0.0
    # two targets at ranks 1 and 3: DCG = 1 + 0.5; IDCG = 1 + 1/log2(3)
    assert M.ndcg_at_k(["x", "b", "y"], ["x", "y"], 3) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))


def test_mrr_by_hand():
    assert M.mrr_at_k(["a", "b", "c", "d"], ["d"], 4) == 0.25
    assert M.mrr_at_k(["a", "b", "c", "d"], ["d"], 3) == 0.0
    assert M.mrr_at_k(["a", "b"], ["b", "a"], 2) == 1.0


def test_diversity_by_hand():
    attrs = {"a": {"Makeup", "Eyes"}, "b": {"Makeup", "Lips"}, "c": {"Hair"}, "d": set()}
    # pairs: ab J=1/3, ac 0, bc 0 -> mean 1/9 -> diversity 8/9; "d" has no attributes: left out
    assert M.diversity_at_k(["a", "b", "c", "d"], attrs, 4) == pytest.approx(1 - 1 / 9)
    assert M.diversity_at_k(["a", "a"], attrs, 2) == 0.0  # identical sets
    assert math.isnan(M.diversity_at_k(["a", "d"], attrs, 2))


def test_coverage_by_hand():
    attrs = {"h1": {"Makeup", "Eyes"}, "h2": {"Hair"}, "r1": {"Makeup"}, "r2": {"Hair", "Tools"}}
    assert M.coverage_at_k(["r1", "r2"], ["h1", "h2"], attrs, 1) == pytest.approx(1 / 3)
    assert M.coverage_at_k(["r1", "r2"], ["h1", "h2"], attrs, 2) == pytest.approx(2 / 3)
    assert math.isnan(M.coverage_at_k(["r1"], ["zz"], attrs, 1))


def test_catalog_coverage():
    assert M.catalog_coverage([["a", "b"], ["b", "c"]], 10, 1) == 0.2
    assert M.catalog_coverage([["a", "b"], ["b", "c"]], 10, 2) == 0.3


def test_rank_metrics_match_pure_functions():
    ranks = np.array([0, 1, 3, 7, 12])
    got = M.rank_metrics(ranks, 10)
    for n, r in enumerate(ranks):
        ranked = [f"i{j}" for j in range(1, 21)]
        target = [f"i{r}"] if r else ["nope"]
        assert got["recall"][n] == M.recall_at_k(ranked, target, 10)
        assert got["ndcg"][n] == pytest.approx(M.ndcg_at_k(ranked, target, 10))
        assert got["mrr"][n] == pytest.approx(M.mrr_at_k(ranked, target, 10))
        assert got["precision"][n] == pytest.approx(M.precision_at_k(ranked, target, 10))


def test_vectorised_diversity_and_coverage_match_pure_functions():
    rng = np.random.default_rng(0)
    vocab = [f"c{j}" for j in range(6)]
    sets = [set(rng.choice(vocab, size=rng.integers(0, 4), replace=False).tolist()) for _ in range(30)]
    ids = [f"i{j}" for j in range(30)]
    attrs = {ids[j]: s for j, s in enumerate(sets) if s}
    table = M.attribute_table(sets)
    lists = np.stack([rng.permutation(30)[:8] for _ in range(12)])
    lists[0, 5:] = -1  # a short list
    hists = [rng.permutation(30)[: rng.integers(0, 5)] for _ in range(12)]
    ks = [2, 5, 8]
    div = M.diversity_batch(lists, table, ks)
    cov = M.coverage_batch(lists, hists, table, ks)
    for r in range(12):
        ranked = [ids[j] for j in lists[r] if j >= 0]
        hist = [ids[j] for j in hists[r]]
        for k in ks:
            want_d = M.diversity_at_k(ranked, attrs, k)
            want_c = M.coverage_at_k(ranked, hist, attrs, k)
            assert (math.isnan(want_d) and math.isnan(div[k][r])) or div[k][r] == pytest.approx(want_d)
            assert (math.isnan(want_c) and math.isnan(cov[k][r])) or cov[k][r] == pytest.approx(want_c)
