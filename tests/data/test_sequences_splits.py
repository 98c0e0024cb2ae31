import pytest

from genrec.data import sequences as S
from genrec.data.catalog import Catalog, Item
from genrec.data.dataset import Dataset, Preprocess
from genrec.data.sequences import Sequences
from genrec.data.splits import Case, LeakageError, Split, check_leakage, make_split
from genrec.errors import DataError, GenrecError, UnknownNameError


def _ds(seqs, titles=None, times=None):
    items = sorted({i for s in seqs.values() for i in s})
    titles = titles or {}
    return Dataset("t", Catalog(Item(i, titles.get(i, f"title {i}")) for i in items), Sequences(seqs, times))


def test_dedup_truncate_kcore():
    s = Sequences({"u": ["a", "b", "a", "c", "b"]}, {"u": [1, 2, 3, 4, 5]})
    assert S.dedup(s)["u"] == ["a", "b", "c"]
    assert S.dedup(s).times["u"] == [1, 2, 4]
    assert S.dedup(s, keep="last")["u"] == ["a", "c", "b"]
    assert S.truncate(s, 2)["u"] == ["c", "b"]
    seqs = Sequences({"u1": ["a", "b"], "u2": ["a", "b"], "u3": ["a", "c"]})
    core = S.kcore(seqs, 2)
    assert core.items == {"u1": ["a", "b"], "u2": ["a", "b"]}  # c dropped, then u3 too short


def test_preprocess_gpt4rec_steps():
    long = "x" * 401
    ds = _ds({"u1": ["a", "bad", "b", "a", "c"], "u2": ["long", "d"]}, {"bad": "", "long": long})
    with pytest.warns(UserWarning, match="dropped 1 users"):
        out = ds.preprocess(Preprocess(drop_bad_titles=True, dedup=True, max_len=2, min_user_len=2))
    assert out.sequences.items == {"u1": ["b", "c"]}
    assert set(out.catalog.ids) == {"b", "c"}
    assert out.info["items_dropped_bad_title"] == 2


def test_dataset_rejects_unknown_items():
    with pytest.raises(DataError, match="not in the catalog"):
        Dataset("t", Catalog([Item("a")]), Sequences({"u": ["a", "zz"]}))


def test_user_split_is_seeded_and_disjoint():
    seqs = {f"u{n}": [f"i{n % 7}", f"i{(n + 1) % 7}", f"i{(n + 2) % 7}"] for n in range(100)}
    ds = _ds(seqs)
    a, b = make_split(ds, "user", seed=1), make_split(ds, "user", seed=1)
    c = make_split(ds, "user", seed=2)
    assert [x.user for x in a.test] == [x.user for x in b.test]
    assert [x.user for x in a.test] != [x.user for x in c.test]
    assert (len(a.train), len(a.valid), len(a.test)) == (80, 10, 10)
    assert not {x.user for x in a.test} & set(a.train.users)
    case = a.test[0]
    assert list(case.history) + [case.target] == seqs[case.user]


def test_loo_split():
    ds = _ds({"u1": ["a", "b", "c", "d"], "u2": ["a", "b"]})
    sp = make_split(ds, "loo")
    assert sp.train["u1"] == ["a", "b"]
    assert Case("u1", ("a", "b"), "c") in sp.valid
    assert Case("u1", ("a", "b", "c"), "d") in sp.test
    assert Case("u2", ("a",), "b") in sp.test and sp.train["u2"] == ["a"]


def test_temporal_split_needs_times_and_cuts_globally():
    with pytest.raises(GenrecError, match="needs timestamps"):
        make_split(_ds({"u": ["a", "b", "c"]}), "temporal")
    seqs = {f"u{n}": ["a", "b", "c", "d"] for n in range(10)}
    times = {f"u{n}": [n, n + 10, n + 20, n + 30] for n in range(10)}
    sp = make_split(_ds(seqs, times=times), "temporal")
    cut = sp.info["valid_cut"]
    assert all(t < cut for ts in sp.train.times.values() for t in ts)
    assert sp.test and all(c.history for c in sp.test)


def test_unknown_protocol():
    with pytest.raises(UnknownNameError, match="known split protocols: loo, temporal, user"):
        make_split(_ds({"u": ["a", "b"]}), "random")


def test_leakage_check_fails_loudly():
    cat = Catalog([Item("a"), Item("b"), Item("c")])
    leaky_user = Split(cat, Sequences({"u1": ["a", "b"]}), [], [Case("u1", ("a",), "b")], "user", 0)
    with pytest.raises(LeakageError, match="test users also appear in training"):
        check_leakage(leaky_user)
    leaky_loo = Split(cat, Sequences({"u1": ["a", "b", "c"]}), [], [Case("u1", ("a", "b"), "c")], "loo", 0)
    with pytest.raises(LeakageError, match="not a prefix"):
        check_leakage(leaky_loo)
    unknown = Split(cat, Sequences({}), [], [Case("u9", ("a",), "zz")], "user", 0)
    with pytest.raises(LeakageError, match="not in the catalog"):
        check_leakage(unknown)


def test_demo_shop_is_deterministic_and_labelled(demo_small):
    from genrec.data.loaders.demo import make_demo_shop

    again = make_demo_shop(n_users=400, items_per_type=12, seed=3)
    assert again.sequences.items == demo_small.sequences.items
    assert demo_small.synthetic and "synthetic" in demo_small.catalog.source
    assert any("&" in t for t in demo_small.catalog.titles)  # entities decoded
    assert not any("&amp;" in t for t in demo_small.catalog.titles)


def test_preprocess_that_empties_a_dataset_says_why():
    ds = Dataset("ids-only", Catalog([Item("a"), Item("b")]), Sequences({"u": ["a", "b"]}))
    with pytest.raises(DataError, match="left no users.*no titles: use --preprocess standard"):
        ds.preprocess("gpt4rec")


def test_cold_start_split_keeps_held_out_items_out_of_training(demo_small):
    ds = demo_small.preprocess("gpt4rec")
    sp = make_split(ds, "user", seed=0, cold_items=0.1)
    cold = sp.cold_items
    assert abs(len(cold) - 0.1 * len(ds.catalog)) <= 1
    assert not cold & sp.train.item_set()
    assert not any(i in cold for c in sp.test for i in c.history)
    view = sp.cold_view()
    assert view.test and all(c.target in cold for c in view.test)
    assert len(view.test) < len(sp.test)
    # the cold items are still in the catalog: text-based models can retrieve them
    assert all(i in sp.catalog for i in cold)
    with pytest.raises(ValueError, match="holds out no items"):
        make_split(ds, "user", seed=0).cold_view()


def _with_single_item_users(n_users: int = 40, n_single: int = 12):
    """Users u0.. with three items, plus ``n_single`` users s0.. with one item each."""
    seqs = {f"u{n}": [f"i{n % 5}", f"i{(n + 1) % 5}", f"i{(n + 2) % 5}"] for n in range(n_users)}
    seqs.update({f"s{n}": [f"i{n % 5}"] for n in range(n_single)})
    return _ds(seqs)


def test_user_split_warns_with_the_count_of_skipped_single_item_users():
    ds = _with_single_item_users()
    with pytest.warns(UserWarning) as w:
        sp = make_split(ds, "user", seed=0)
    msgs = [str(x.message) for x in w if "single item" in str(x.message)]
    skipped = sp.info["cases_skipped_short"]
    evaluated = {c.user for c in sp.valid + sp.test}
    eval_users = set(ds.sequences.users) - set(sp.train.users)
    assert skipped == len({u for u in eval_users if u.startswith("s")}) > 0  # seed 0 puts some in valid/test
    assert msgs == [f"t, split 'user': {skipped:,} validation/test users with a single item were skipped: "
                    "no history to predict it from"]
    assert not any(u.startswith("s") for u in evaluated) and len(evaluated) == len(eval_users) - skipped


def test_loo_split_warns_with_the_count_of_single_item_users():
    ds = _with_single_item_users(n_single=7)
    with pytest.warns(UserWarning, match=r"t, split 'loo': 7 users with a single item give no evaluation case"):
        sp = make_split(ds, "loo")
    assert sp.info["users_single_item"] == 7 and sp.info["users_shorter_than_3"] == 7
    assert not any(c.user.startswith("s") for c in sp.valid + sp.test)
    assert all(sp.train[f"s{n}"] == [f"i{n % 5}"] for n in range(7))  # their item still trains
    assert len(sp.test) == len(sp.valid) == 40


def test_no_single_item_users_no_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_split(_with_single_item_users(n_single=0), "loo")
        make_split(_with_single_item_users(n_single=0), "user", seed=0)
