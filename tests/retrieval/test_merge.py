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
    with pytest.raises(ValueError, match="^k must be positive$"):
        rank_merge([["a"]], 0)
    with pytest.raises(ValueError, match="^k must be positive$"):
        rank_merge([["a"]], -2)


def test_quotas_of_zero_slots_no_queries_and_negative_inputs():
    assert quotas(0, 3) == [0, 0, 0]
    assert quotas(5, 0) == []
    assert quotas(1, 1) == [1]
    for k, m in ((-1, 3), (3, -1), (-1, -1)):
        with pytest.raises(ValueError, match="^k and m must be non-negative$"):
            quotas(k, m)


def test_k_of_one_takes_the_best_query_s_best_item():
    m = rank_merge([["a1", "a2"], ["b1"]], 1, popular=["p1"])
    assert m.items == ["a1"] and m.scores == [1.0]
    assert m.contributions == [["a1"], []]
    assert (m.filled_from_queries, m.filled_by_popularity) == (0, 0)
    # the best query found nothing new: its slot is filled from the next query, not by popularity
    m = rank_merge([["h"], ["b1"]], 1, exclude={"h"}, popular=["p1"])
    assert m.items == ["b1"] and m.filled_from_queries == 1 and m.filled_by_popularity == 0


def test_fill_stops_exactly_at_k_part_way_through_a_round():
    res = [["a1", "a2", "a3"], ["b1", "b2", "b3"], []]
    m = rank_merge(res, 5, popular=["p1"])
    # quotas 2,2,1: a1 a2 | b1 b2 | - ; the fill round gives a3 and K is reached before b3's turn
    assert m.items == ["a1", "a2", "b1", "b2", "a3"]
    assert m.contributions == [["a1", "a2", "a3"], ["b1", "b2"], []]
    assert m.scores == [5.0, 4.0, 3.0, 2.0, 1.0]
    assert (m.filled_from_queries, m.filled_by_popularity) == (1, 0)


def test_fill_continues_over_several_rounds_until_the_queries_run_out():
    res = [["a1", "a2", "a3", "a4", "a5"], ["b1", "b2", "b3", "b4"], [], []]
    m = rank_merge(res, 12, popular=["p1", "p2", "p3", "p4", "p5"])
    # quotas 3,3,3,3: a1 a2 a3 | b1 b2 b3 | - | - ; fill rounds: a4 b4, a5 (b is out), then popularity
    assert m.items == ["a1", "a2", "a3", "b1", "b2", "b3", "a4", "b4", "a5", "p1", "p2", "p3"]
    assert m.filled_from_queries == 3 and m.filled_by_popularity == 3
    assert len(m.items) == len(m.scores) == 12


def test_fill_never_repeats_an_item_across_queries_fill_and_popularity():
    res = [["a1"], ["b1", "b2", "b3", "a1"], ["c1", "b3", "c2"]]
    m = rank_merge(res, 9, exclude={"h1"}, popular=["b3", "c2", "h1", "a1", "p1", "p1", "p2", "p3"])
    # quotas 3,3,3: a1 | b1 b2 b3 | c1 c2 (b3 is taken) ; fill: nothing left (a1 is taken) ; popularity:
    # b3, c2, a1 are taken, h1 is excluded, p1 comes once, then p2
    assert m.items == ["a1", "b1", "b2", "b3", "c1", "c2", "p1", "p2", "p3"]
    assert len(set(m.items)) == len(m.items) == 9
    assert (m.filled_from_queries, m.filled_by_popularity) == (0, 3)
    # an item taken by the round-robin fill is not taken again by popularity
    m = rank_merge([["a1"], ["b1", "b2", "b3"]], 5, popular=["b3", "b1", "p1", "p2"])
    assert m.items == ["a1", "b1", "b2", "b3", "p1"]
    assert (m.filled_from_queries, m.filled_by_popularity) == (1, 1)


def test_popularity_fills_only_up_to_k():
    m = rank_merge([["a1"]], 3, popular=["p1", "p2", "p3", "p4"])
    assert m.items == ["a1", "p1", "p2"] and m.filled_by_popularity == 2
    assert m.scores == [3.0, 2.0, 1.0]
    m = rank_merge([["a1", "a2"]], 2, popular=["p1"])
    assert m.items == ["a1", "a2"] and m.filled_by_popularity == 0
