"""Fairness breakdowns by user attribute and the popularity share of recommendation lists."""

import numpy as np
import pytest

from genrec.data.catalog import Catalog, Item
from genrec.data.sequences import Sequences
from genrec.data.splits import Case, Split
from genrec.eval.evaluate import evaluate
from genrec.eval.groups import age_band, breakdown, gap, popular_items, popular_share, user_groups
from genrec.models.registry import create
from tests.cli.helpers import run
from tests.conftest import shared_dataset


def _split():
    # training popularity: a 4, b 3, c 2, d 1, e..j 0 -> with 10 items, the top 20% is {a, b}
    cat = Catalog([Item(i, i.upper()) for i in "abcdefghij"])
    train = Sequences({"t1": ["a", "b", "c", "d"], "t2": ["a", "b", "c"], "t3": ["a", "b"], "t4": ["a"]})
    test = [Case("x1", ("c",), "a"), Case("x2", ("a",), "c"), Case("x3", ("a",), "e"), Case("x4", ("d",), "b")]
    feats = {"x1": {"gender": "F", "age": 17}, "x2": {"gender": "M", "age": 30}, "x3": {"gender": "M", "age": 61},
             "x4": {"gender": "F", "age": "25-34"}}
    return Split(cat, train, test, test, "user", 0, user_features=feats)


def test_popular_items_and_share_by_hand():
    sp = _split()
    assert popular_items(sp) == {"a", "b"}
    assert popular_items(sp, 0.25) == {"a", "b", "c"}  # ceil(2.5)
    lists = [["a", "c", "b", "e"], ["e", "f", "g", "h"], ["b", "a", "x", "y"]]
    np.testing.assert_allclose(popular_share(lists, {"a", "b"}, 2), [0.5, 0.0, 1.0])
    np.testing.assert_allclose(popular_share(lists, {"a", "b"}, 4), [0.5, 0.0, 0.5])


def test_evaluate_reports_the_popular_share():
    sp = _split()
    rep = evaluate(create("pop").fit(sp), sp, ks=(1, 2), progress=False)
    # pop lists (history excluded): x1 [a, b], x2 [b, c], x3 [b, c], x4 [a, b]
    assert rep.table["popular_share@1"] == pytest.approx(1.0)
    assert rep.table["popular_share@2"] == pytest.approx((1 + 0.5 + 0.5 + 1) / 4)


def test_breakdown_sums_back_to_the_overall_metrics():
    sp = _split()
    rep = evaluate(create("pop").fit(sp), sp, ks=(1, 2), progress=False)
    for attr in ("gender", "age"):
        groups = breakdown(rep, sp, attr, (1, 2))
        assert sum(g["users"] for g in groups.values()) == 4
        for m in ("recall@2", "ndcg@2", "precision@1", "mrr@2", "popular_share@2"):
            total = sum(g[m] * g["users"] for g in groups.values()) / 4
            assert total == pytest.approx(rep.table[m]), (attr, m)
    g = breakdown(rep, sp, "gender", (2,))
    # F: x1 (a at rank 1), x4 (b at rank 2); M: x2 (c at rank 2), x3 (e missed)
    assert g["F"]["recall@2"] == 1.0 and g["M"]["recall@2"] == 0.5
    assert gap(g, "recall@2") == {"metric": "recall@2", "best": "F", "worst": "M", "difference": 0.5}
    assert sorted(breakdown(rep, sp, "age", (2,))) == ["25-34", "56+", "Under 18"]


def test_age_bands_and_unknown_attributes():
    assert [age_band(a) for a in (7, 18, 24, 25, 49, 50, 55, 56, 73)] == [
        "Under 18", "18-24", "18-24", "25-34", "45-49", "50-55", "50-55", "56+", "56+"]
    assert age_band("35-44") == "35-44"
    assert user_groups(_split(), "age") == {"x1": "Under 18", "x2": "25-34", "x3": "56+", "x4": "25-34"}
    with pytest.raises(ValueError, match="unknown user attribute 'zip'.*age, gender"):
        user_groups(_split(), "zip")


@pytest.mark.realdata
def test_ml_100k_breakdown_and_the_cli():
    shared_dataset("ml-100k")
    from genrec.data.registry import load_dataset
    from genrec.data.splits import make_split

    sp = make_split(load_dataset("ml-100k", None, preprocess="standard"), "loo", seed=0)
    assert len(sp.user_features) == 943 and sp.ratings is not None
    rep = evaluate(create("pop").fit(sp), sp, ks=(10,), progress=False)
    occ = breakdown(rep, sp, "occupation", (10,))
    assert len(occ) == 21 and sum(g["users"] for g in occ.values()) == 943
    assert sum(g["ndcg@10"] * g["users"] for g in occ.values()) / 943 == pytest.approx(rep.table["ndcg@10"])
    assert rep.table["popular_share@10"] == 1.0  # pop recommends only the short head
    res = run("evaluate", "-m", "pop", "--dataset", "ml-100k", "--split", "loo", "--ks", "10", "--by", "gender")
    assert res.returncode == 0, res.stderr
    assert "| pop | M | 670 |" in res.stdout and "| pop | F | 273 |" in res.stdout
    bad = run("evaluate", "-m", "pop", "--dataset", "ml-100k", "--split", "loo", "--by", "shoe_size")
    assert bad.returncode == 2 and "--by shoe_size: unknown user attribute" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.realdata
def test_bench_writes_groups_and_the_candidate_protocol(tmp_path):
    shared_dataset("ml-100k")
    from genrec.experiments.config import parse_config
    from genrec.experiments.runner import run as run_bench

    cfg = parse_config({"title": "t", "name": "fair", "data": {"dataset": "ml-100k", "split": "loo"},
                        "evaluate": {"ks": [10], "metrics": ["precision", "popular_share"], "by": ["gender"],
                                     "candidates": 20}, "models": [{"name": "pop"}]})
    res, md, _ = run_bench(cfg, tmp_path / "c.toml", out_dir=tmp_path, log=lambda m: None)
    row = res["results"][0]
    assert row["groups"]["gender"]["M"]["users"] == 670
    assert row["candidates"]["cases"] == 943 and 0 < row["candidates"]["metrics"]["ndcg@10"] <= 1
    page = md.read_text()
    assert "| model | P@10 | pop share@10 |" in page
    assert "## LLMRank protocol: target + 19 random non-history items" in page
    assert "gender, N@10:" in page and "| pop | " in page
