"""Hand-checked tests of GPT4Rec's rank-based merge and its fill rules."""

import pytest

from genrec.retrieval.merge import quotas, rank_merge


def test_quotas_divisible_remainder_and_k_below_m():
    assert quotas(10, 5) == [2, 2, 2, 2, 2]
    assert quotas(10, 4) == [3, 3, 2, 2]
    assert quotas(3, 5) == [1, 1, 1, 0, 0]
    assert sum(quotas(7, 3)) == 7


def test_paper_case_top_k_over_m_from_each_query_in_order():
    res = [["a1", "a2", "a3"], ["b1", "b2", "b3"]]
    m = rank_merge(res, 4)
    assert m.items == ["a1", "a2", "b1", "b2"]
    assert m.contributions == [["a1", "a2"], ["b1", "b2"]]
    assert m.scores == [4.0, 3.0, 2.0, 1.0]
    assert m.filled_from_queries == 0 and m.filled_by_popularity == 0


def test_duplicates_credited_to_first_query_and_history_excluded():
    res = [["x", "a1", "a2"], ["a1", "b1", "b2"]]
    m = rank_merge(res, 4, exclude={"x"})
    assert m.items == ["a1", "a2", "b1", "b2"]
    assert m.contributions == [["a1", "a2"], ["b1", "b2"]]


def test_short_query_results_fill_from_other_queries_then_popularity():
    res = [["a1"], ["b1", "b2", "b3"], []]
    m = rank_merge(res, 6, popular=["b2", "p1", "p2", "p3"])
    # quotas 2,2,2: a1 | b1 b2 | - ; round-robin fill: b3 ; then popularity p1, p2
    assert m.items == ["a1", "b1", "b2", "b3", "p1", "p2"]
    assert m.contributions == [["a1"], ["b1", "b2", "b3"], []]
    assert m.filled_from_queries == 1
    assert m.filled_by_popularity == 2


def test_round_robin_fill_alternates_between_queries():
    res = [["a1", "a2", "a3", "a4"], ["b1", "b2", "b3"], []]
    m = rank_merge(res, 7)
    # quotas 3,2,2: a1 a2 a3 | b1 b2 | - ; fill: a4, b3
    assert m.items == ["a1", "a2", "a3", "b1", "b2", "a4", "b3"]
    assert m.filled_from_queries == 2


def test_k_below_m_takes_one_from_each_best_query():
    res = [["a1", "a2"], ["b1"], ["c1"], ["d1"]]
    assert rank_merge(res, 2).items == ["a1", "b1"]


def test_no_queries_and_bad_k():
    m = rank_merge([], 3, popular=["p1", "p2", "p3", "p4"])
    assert m.items == ["p1", "p2", "p3"] and m.filled_by_popularity == 3
    assert rank_merge([], 3).items == []
    with pytest.raises(ValueError):
        rank_merge([["a"]], 0)
