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
    with pytest.raises(ValueError, match="^no targets$"):
        M.recall_at_k(ranked, [], 5)
    assert M.hit_at_k(ranked, [], 5) == 0.0
    assert M.precision_at_k(["a", "b", "c"], ["a", "b", "c"], 2) == 1.0  # only the top k count


def test_ndcg_zero_denominator_and_more_targets_than_k():
    with pytest.raises(ValueError, match="^no targets$"):
        M.ndcg_at_k(["a", "b"], [], 2)
    # three targets but k=2: the ideal list holds only two of them, so a perfect top 2 scores 1
    assert M.ndcg_at_k(["x", "y", "a"], ["x", "y", "z"], 2) == pytest.approx(1.0)
    assert M.ndcg_at_k(["a", "x"], ["x", "y", "z"], 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_jaccard_by_hand_and_of_two_empty_sets():
    assert M.jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert M.jaccard({"a"}, {"a"}) == 1.0
    assert M.jaccard(set(), {"a"}) == 0.0
    assert M.jaccard(set(), set()) == 0.0  # nothing shared: no division by zero


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
    assert M.mrr_at_k(["a", "b", "c"], ["b", "c"], 3) == 0.5  # the first hit counts, not the last


def test_diversity_by_hand():
    attrs = {"a": {"Makeup", "Eyes"}, "b": {"Makeup", "Lips"}, "c": {"Hair"}, "d": set()}
    # pairs: ab J=1/3, ac 0, bc 0 -> mean 1/9 -> diversity 8/9; "d" has no attributes: left out
    assert M.diversity_at_k(["a", "b", "c", "d"], attrs, 4) == pytest.approx(1 - 1 / 9)
    assert M.diversity_at_k(["a", "a"], attrs, 2) == 0.0  # identical sets
    assert math.isnan(M.diversity_at_k(["a", "d"], attrs, 2))
    assert math.isnan(M.diversity_at_k(["a", "zz"], attrs, 2))  # unknown items have no attributes
    assert M.diversity_at_k(["a", "c"], attrs, 2) == 1.0
    assert math.isnan(M.diversity_at_k(["a", "c", "b"], attrs, 1))  # only the top k count


def test_coverage_by_hand():
    attrs = {"h1": {"Makeup", "Eyes"}, "h2": {"Hair"}, "r1": {"Makeup"}, "r2": {"Hair", "Tools"}}
    assert M.coverage_at_k(["r1", "r2"], ["h1", "h2"], attrs, 1) == pytest.approx(1 / 3)
    assert M.coverage_at_k(["r1", "r2"], ["h1", "h2"], attrs, 2) == pytest.approx(2 / 3)
    assert math.isnan(M.coverage_at_k(["r1"], ["zz"], attrs, 1))
    assert M.coverage_at_k(["zz", "r2"], ["h2"], attrs, 2) == 1.0  # an unknown item covers nothing
    assert M.coverage_at_k(["zz"], ["h1", "zz"], attrs, 1) == 0.0


def test_catalog_coverage():
    assert M.catalog_coverage([["a", "b"], ["b", "c"]], 10, 1) == 0.2
    assert M.catalog_coverage([["a", "b"], ["b", "c"]], 10, 2) == 0.3
    assert M.catalog_coverage([["a"]], 1, 5) == 1.0
    assert M.catalog_coverage([], 4, 5) == 0.0
    for n in (0, -1):
        with pytest.raises(ValueError, match=f"non-empty catalog, got n_items={n}"):
            M.catalog_coverage([["a"]], n, 1)


def test_rank_metrics_at_the_k_boundary_by_hand():
    got = M.rank_metrics(np.array([0, 1, 2, 4, 5]), 4)
    assert got["recall"].tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # rank 4 is in the top 4, rank 5 not
    assert got["precision"].tolist() == [0.0, 0.25, 0.25, 0.25, 0.0]
    assert got["mrr"].tolist() == [0.0, 1.0, 0.5, 0.25, 0.0]
    assert got["ndcg"] == pytest.approx([0.0, 1.0, 1 / math.log2(3), 1 / math.log2(5), 0.0])


def test_attribute_table_pads_with_minus_one_and_codes_in_sorted_order():
    table = M.attribute_table([{"b", "a"}, set(), {"c"}, {"a"}])
    assert table.tolist() == [[0, 1], [-1, -1], [2, -1], [0, -1]]
    assert M.attribute_table([set(), set()]).tolist() == [[-1], [-1]]  # width 1 when no item has any
    assert M.attribute_table([]).shape == (0, 1)
    assert M.attribute_table([{3, "a"}]).tolist() == [[0, 1]]  # mixed types are ordered by their text


def _table_and_attrs():
    sets = [{"Makeup", "Eyes"}, {"Makeup", "Lips"}, {"Hair"}, set(), {"Hair", "Tools"}, {"Eyes"}]
    return M.attribute_table(sets), {f"i{j}": s for j, s in enumerate(sets) if s}


def test_diversity_batch_by_hand_with_padding_and_k_beyond_the_list():
    table, _ = _table_and_attrs()
    lists = np.array([[0, 1, 2, 3], [3, 0, -1, -1], [2, 4, -1, -1], [3, 3, -1, -1]])
    got = M.diversity_batch(lists, table, [1, 2, 3, 6])
    # row 0: pairs 01 J=1/3, 02 0, 12 0 (item 3 has no attributes) -> 1 - 1/9
    assert got[3][0] == pytest.approx(1 - 1 / 9) and got[6][0] == pytest.approx(1 - 1 / 9)
    assert got[2][0] == pytest.approx(1 - 1 / 3)
    assert all(math.isnan(got[1][r]) for r in range(4))  # one item: no pair
    assert math.isnan(got[6][1])  # a single item with attributes, then padding
    assert got[2][2] == got[6][2] == 0.5  # {Hair} vs {Hair, Tools}: J = 1/2
    assert math.isnan(got[6][3])  # no item with attributes


def test_coverage_batch_on_a_padded_list_whose_history_has_attributes():
    """evaluate() pads a model's short list with -1 slots: those rows still get a coverage value."""
    table, attrs = _table_and_attrs()
    lists = np.array([[2, 0, -1, -1], [5, -1, -1, -1], [3, -1, -1, -1], [0, 1, 2, 4]])
    hists = [np.array([0, 4]), [1], np.array([0]), []]
    got = M.coverage_batch(lists, hists, table, [1, 2, 4, 9])
    # row 0 wants {Makeup, Eyes, Hair, Tools}: item 2 covers Hair, item 0 Makeup and Eyes
    assert [got[k][0] for k in (1, 2, 4, 9)] == pytest.approx([0.25, 0.75, 0.75, 0.75])
    assert [got[k][1] for k in (1, 2, 4, 9)] == [0.0, 0.0, 0.0, 0.0]  # wants {Makeup, Lips}; Eyes covers none
    assert [got[k][2] for k in (1, 4)] == [0.0, 0.0]  # an item without attributes covers nothing
    assert all(math.isnan(got[k][3]) for k in (1, 2, 4, 9))  # empty history: NaN
    for r in range(3):
        ranked = [f"i{j}" for j in lists[r] if j >= 0]
        for k in (1, 2, 4, 9):
            assert got[k][r] == pytest.approx(M.coverage_at_k(ranked, [f"i{j}" for j in hists[r]], attrs, k))


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
