"""svd (scikit-surprise) and lightfm (lightfm-next): real fits on tiny fixtures with structure, and
rating prediction against the global-mean and bias baselines."""

import numpy as np
import pytest

from genrec.data.catalog import Catalog, Item
from genrec.data.dataset import Dataset
from genrec.data.ratings import random_rating_split, rating_cases, train_triples
from genrec.data.sequences import Sequences
from genrec.data.splits import make_split
from genrec.eval.rating import BiasBaseline, GlobalMean, evaluate_ratings, rating_metrics
from genrec.models.registry import create


def _taste_dataset(n_users: int = 60, seed: int = 0) -> Dataset:
    """Two tastes: "a" users rate a-items 5 and b-items 1, "b" users the reverse; each user rates
    a random 8 of the 10 items of each kind, so held-out ratings follow from the taste."""
    rng = np.random.default_rng(seed)
    items = [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)]
    seqs: dict[str, list[str]] = {}
    ratings: dict[str, dict[str, float]] = {}
    for n in range(n_users):
        u, taste = f"u{n}", "ab"[n % 2]
        chosen = list(rng.choice(items, 16, replace=False))
        seqs[u] = chosen
        ratings[u] = {i: (5.0 if i[0] == taste else 1.0) + float(rng.choice([-0.0, 0.0, -1.0 if i[0] == taste
                                                                            else 1.0]))
                      for i in chosen}
    cat = Catalog(Item(i, f"Movie {i}") for i in items)
    return Dataset("tastes", cat, Sequences(seqs), ratings=ratings)


def test_svd_ranks_a_co_rated_item_above_an_unrelated_one():
    split = make_split(_taste_dataset(), "loo", seed=0)
    svd = create("svd", factors=4, epochs=60, lr_all=0.02, seed=0).fit(split)
    assert svd.explicit_
    a_lover = ["a0", "a1", "a2", "a3"]
    items = svd.recommend([a_lover], k=16).items[0]
    assert items.index("a5") < items.index("b5")
    top = svd.recommend([a_lover], k=6).items[0]
    assert sum(i.startswith("a") for i in top) == 6, top
    b_lover = svd.recommend([["b0", "b1", "b2"]], k=6).items[0]
    assert sum(i.startswith("b") for i in b_lover) == 6, b_lover


def test_svd_beats_global_mean_and_biases_on_ratings_with_structure():
    ds = _taste_dataset(80)
    split = random_rating_split(ds, 0.2, seed=1)
    cases = rating_cases(split)
    assert len(cases) > 100 and all(c.item not in c.history for c in cases)
    svd = create("svd", factors=4, epochs=60, lr_all=0.02, seed=0).fit(split)
    mean = evaluate_ratings(GlobalMean().fit(split), cases)
    bias = evaluate_ratings(BiasBaseline().fit(split), cases)
    got = evaluate_ratings(svd, cases)
    assert got["rmse"] < 0.6 * mean["rmse"] and got["rmse"] < bias["rmse"], (got, bias, mean)
    assert got["mae"] < mean["mae"]
    # unseen users get the bias-only prediction mu + b_i
    p = svd.predict_ratings(["nobody", "nobody"], ["a0", "b0"])
    j = [svd.catalog.index_of(x) for x in ("a0", "b0")]
    np.testing.assert_allclose(p, np.clip(svd.mu_ + svd.bi_[j], 1, 5))


def test_rating_metrics_by_hand():
    m = rating_metrics([3.0, 4.0, 1.0], [4.0, 4.0, 3.0])
    assert m["mae"] == pytest.approx(1.0) and m["rmse"] == pytest.approx(np.sqrt(5 / 3)) and m["n"] == 3
    with pytest.raises(ValueError, match="same length"):
        rating_metrics([1.0], [1.0, 2.0])


def test_random_rating_split_holds_out_a_fraction_without_leaking():
    ds = _taste_dataset(40)
    split = random_rating_split(ds, 0.25, seed=3)
    n_all = ds.sequences.num_interactions()
    assert len(split.test) + split.train.num_interactions() + split.info["pairs_dropped_no_training_item"] == n_all
    assert abs(len(split.test) - 0.25 * n_all) <= 1
    train_pairs = {(u, i) for u in split.train.users for i in split.train[u]}
    assert not any((c.user, c.target) in train_pairs for c in split.test)
    u, i, r = train_triples(split)
    assert len(u) == split.train.num_interactions() and r[0] == ds.ratings[u[0]][i[0]]
    again = random_rating_split(ds, 0.25, seed=3)
    assert [c.target for c in again.test] == [c.target for c in split.test]


def test_svd_on_implicit_data_learns_from_sampled_negatives(demo_loo):
    assert demo_loo.ratings is None
    svd = create("svd", factors=8, epochs=10, seed=0).fit(demo_loo)
    assert not svd.explicit_ and svd.scale_ == (0.0, 1.0)
    from genrec.eval.evaluate import evaluate

    got = evaluate(svd, demo_loo, ks=(10,), progress=False).table["recall@10"]
    rnd = evaluate(create("random").fit(demo_loo), demo_loo, ks=(10,), progress=False).table["recall@10"]
    assert got > rnd


@pytest.mark.parametrize("loss", ["bpr", "warp"])
def test_lightfm_ranks_items_of_the_history_s_kind_first(loss):
    # implicit view: keep only each user's liked items (rating >= 4) as interactions
    ds = _taste_dataset()
    liked = Sequences({u: [i for i in s if ds.ratings[u][i] >= 4] for u, s in ds.sequences.items.items()})
    split = make_split(Dataset("liked", ds.catalog, liked), "loo", seed=0)
    model = create("lightfm", factors=8, epochs=30, loss=loss, seed=0).fit(split)
    for hist, kind in ((["a0", "a1", "a2"], "a"), (["b7", "b8"], "b")):
        ranked = model.recommend([hist], k=20 - len(hist)).items[0]
        mine = [r for r, i in enumerate(ranked) if i[0] == kind]
        other = [r for r, i in enumerate(ranked) if i[0] != kind]
        assert np.mean(mine) < np.mean(other) - 3, ranked
        assert ranked[0][0] == kind, ranked
    # deterministic for a seed (num_threads=1)
    again = create("lightfm", factors=8, epochs=30, loss=loss, seed=0).fit(split)
    np.testing.assert_allclose(again.item_factors_, model.item_factors_)


def test_the_movielens_loader_keeps_ratings_through_preprocessing_and_splits(tmp_path):
    from genrec.data.loaders.movielens import load_movielens
    from tests.data.test_loaders_movielens import write_100k

    ds = load_movielens(write_100k(tmp_path / "m"), "m")
    assert ds.ratings == {"1": {"2": 5.0, "3": 4.0, "1": 3.0}, "2": {"1": 2.0, "2": 5.0}}
    split = make_split(ds.preprocess("standard"), "loo", seed=0)
    assert [(c.user, c.item, c.rating) for c in rating_cases(split)] == [("1", "2", 5.0), ("2", "2", 5.0)]
    liked = load_movielens(tmp_path / "m", "m", min_rating=4)
    assert liked.ratings == {"1": {"2": 5.0, "3": 4.0}, "2": {"2": 5.0}}
