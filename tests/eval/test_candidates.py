"""The LLMRank 20-candidate protocol: candidate lists, ranks, and evaluation of any model."""

import numpy as np
import pytest

from genrec.data.catalog import Catalog, Item
from genrec.data.sequences import Sequences
from genrec.data.splits import Case, Split
from genrec.eval.candidates import candidate_lists, candidate_ranks, evaluate_candidates, score_candidates
from genrec.eval.evaluate import evaluate
from genrec.models.registry import create


def test_every_list_has_the_target_once_and_never_the_history(demo_loo):
    ccs = candidate_lists(demo_loo, 20, seed=3)
    assert len(ccs) == len(demo_loo.test)
    positions = []
    for cc in ccs:
        assert len(cc.candidates) == 20 == len(set(cc.candidates))
        assert cc.candidates.count(cc.case.target) == 1
        assert not set(cc.candidates) - {cc.case.target} & set(cc.case.history)
        assert not set(cc.candidates) & (set(cc.case.history) - {cc.case.target})
        assert all(i in demo_loo.catalog for i in cc.candidates)
        positions.append(cc.target_position)
    assert len(set(positions)) > 5  # the target is shuffled in, not always first


def test_lists_depend_on_seed_and_user_only(demo_loo):
    full = {cc.case.user: cc.candidates for cc in candidate_lists(demo_loo, 20, seed=3)}
    some = candidate_lists(demo_loo, 20, seed=3, max_cases=30)
    assert len(some) == 30 and all(full[cc.case.user] == cc.candidates for cc in some)
    other = {cc.case.user: cc.candidates for cc in candidate_lists(demo_loo, 20, seed=4)}
    assert sum(other[u] != full[u] for u in full) > len(full) // 2


def test_ranks_break_ties_by_candidate_order():
    cc = candidate_lists(_tiny_split(), 4, seed=0)[0]
    t = cc.target_position
    flat = [[0.0] * 4]
    assert candidate_ranks(flat, [cc])[0] == t + 1  # all tied: the target's place in the shuffled list
    s = [0.0] * 4
    s[t] = 1.0
    assert candidate_ranks([s], [cc])[0] == 1
    s[t] = -1.0
    assert candidate_ranks([s], [cc])[0] == 4
    with pytest.raises(ValueError, match="3 scores for 4"):
        candidate_ranks([[0.0] * 3], [cc])


def _tiny_split():
    cat = Catalog([Item(i, i.upper()) for i in "abcdefg"])
    train = Sequences({"t1": ["a", "b", "c"], "t2": ["a", "b"], "t3": ["a", "d"]})
    test = [Case("x1", ("c",), "a"), Case("x2", ("a", "e"), "f")]
    return Split(cat, train, test, test, "user", 0)


def test_pop_by_hand_on_a_tiny_split():
    sp = _tiny_split()
    pop = create("pop").fit(sp)
    ccs = candidate_lists(sp, 5, seed=1)
    rep = evaluate_candidates(pop, sp, 5, ks=(1, 5), cases=ccs, progress=False)
    counts = {"a": 3, "b": 2, "c": 1, "d": 1}
    for cc, row in zip(ccs, rep.per_case):
        pops = [counts.get(i, 0) for i in cc.candidates]
        want = 1 + sum(p > pops[cc.target_position] for p in pops) + sum(
            p == pops[cc.target_position] for p in pops[:cc.target_position])
        assert row["rank"] == want
    assert rep.per_case[0]["rank"] == 1  # "a", the most popular, is x1's target
    assert rep.table["recall@5"] == 1.0 and rep.table["recall@1"] >= 0.5
    assert "precision@1" not in rep.table and rep.run_card["candidates"] == 5


def test_a_plain_scorer_plugs_in_and_matches_the_model_it_wraps(demo_loo):
    """An object with score_candidates (an LLM ranker's way in) gives the same ranks as the model."""
    knn = create("itemknn").fit(demo_loo)

    class Wrapped:
        name = "wrapped"

        def score_candidates(self, histories, candidates):
            return score_candidates(knn, histories, candidates)

    a = evaluate_candidates(knn, demo_loo, seed=2, max_cases=60, progress=False)
    b = evaluate_candidates(Wrapped(), demo_loo, seed=2, max_cases=60, progress=False)
    assert [r["rank"] for r in a.per_case] == [r["rank"] for r in b.per_case]
    assert a.table == b.table and b.model == "wrapped"
    # item kNN beats random on the same candidates
    rnd = evaluate_candidates(create("random").fit(demo_loo), demo_loo, seed=2, max_cases=60, progress=False)
    assert a.table["ndcg@10"] > rnd.table["ndcg@10"]


def test_recommend_only_models_are_ranked_from_their_full_list(demo_loo):
    """A model without score(): candidates ranked by their place in its full recommend list."""
    knn = create("itemknn").fit(demo_loo)

    class ListOnly:
        name = "list-only"
        catalog = knn.catalog

        def recommend(self, histories, k=10, **kw):
            return knn.recommend(histories, k=k, **kw)

    a = evaluate_candidates(knn, demo_loo, seed=5, max_cases=40, progress=False)
    b = evaluate_candidates(ListOnly(), demo_loo, seed=5, max_cases=40, progress=False)
    ra, rb = np.array([r["rank"] for r in a.per_case]), np.array([r["rank"] for r in b.per_case])
    assert (ra == rb).mean() > 0.9  # equal but for ties of scores, broken differently


def test_same_as_sampled_evaluate_in_distribution(demo_loo):
    """Full ranking is harder: the protocol's recall@10 is far above the full-ranking one."""
    pop = create("pop").fit(demo_loo)
    cand = evaluate_candidates(pop, demo_loo, progress=False)
    full = evaluate(pop, demo_loo, ks=(10,), progress=False)
    assert cand.table["recall@10"] > full.table["recall@10"]
    assert 0 < cand.table["ndcg@1"] <= cand.table["ndcg@5"] <= cand.table["ndcg@20"] <= 1


def test_genrec_evaluate_prints_the_candidate_protocol():
    from tests.cli.helpers import run

    res = run("evaluate", "-m", "pop", "--dataset", "demo", "--split", "loo", "--ks", "10", "--candidates", "20")
    assert res.returncode == 0, res.stderr
    assert "Target + 19 random non-history items per case (seed 0" in res.stdout
    row = next(ln for ln in res.stdout.splitlines()[::-1] if ln.startswith("| pop |"))
    cells = [float(x) for x in row.strip("|").split("|")[1:-1]]
    assert len(cells) == 8 and cells[-2] == 1.0  # recall@20 over 20 candidates
    bad = run("evaluate", "-m", "pop", "--dataset", "demo", "--candidates", "1")
    assert bad.returncode == 2 and "--candidates 1: must be at least 2" in bad.stderr
