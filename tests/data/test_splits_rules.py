"""The split protocols' rules on small hand-built datasets: exact contents and the boundaries."""

import os

import pytest

from genrec.data.catalog import Catalog, Item
from genrec.data.dataset import Dataset
from genrec.data.sequences import Sequences
from genrec.data.splits import Case, make_split
from genrec.errors import GenrecError, UnknownNameError


def _ds(seqs, times=None, name="t"):
    items = sorted({i for s in seqs.values() for i in s})
    return Dataset(name, Catalog(Item(i, f"title {i}") for i in items), Sequences(seqs, times))


def _three_item_users(n):
    return {f"u{n:03d}": [f"i{n % 7}", f"i{(n + 1) % 7}", f"i{(n + 2) % 7}"] for n in range(n)}


# -- user split ---------------------------------------------------------------------------------

def test_user_split_sizes_follow_non_default_ratios():
    ds = _ds(_three_item_users(50))
    sp = make_split(ds, "user", seed=0, ratios=(0.6, 0.3, 0.1))
    assert (len(sp.train), len(sp.valid), len(sp.test)) == (30, 15, 5)
    assert sp.info["ratios"] == [0.6, 0.3, 0.1]
    sp = make_split(ds, "user", seed=0, ratios=(0.7, 0.2, 0.1))  # sums to 0.9999999999999999
    assert (len(sp.train), len(sp.valid), len(sp.test)) == (35, 10, 5)
    sp = make_split(ds, "user", seed=0, ratios=(0.8, 0.1, 0.1000005))  # within 1e-6 of 1
    assert (len(sp.train), len(sp.valid), len(sp.test)) == (40, 5, 5)
    sp = make_split(ds, "user", seed=0, ratios=(0.9, 0.0, 0.1))  # a zero share is allowed
    assert (len(sp.train), len(sp.valid), len(sp.test)) == (45, 0, 5)
    users = set(ds.sequences.users)
    assert set(sp.train.users) | {c.user for c in sp.test} == users


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.2), (0.5, 0.1, 0.1), (0.8, 0.1, 0.100002), (1.2, -0.1, -0.1),
                                    (1.0, 0.0, -0.0001)])
def test_user_split_rejects_ratios_that_are_negative_or_do_not_sum_to_one(ratios):
    with pytest.raises(ValueError, match=r"ratios must be non-negative and sum to 1, got \(" + str(ratios[0])):
        make_split(_ds(_three_item_users(10)), "user", ratios=ratios)


def test_user_split_does_not_depend_on_the_order_users_were_read_in():
    seqs = _three_item_users(30)
    a = make_split(_ds(seqs), "user", seed=4)
    b = make_split(_ds(dict(reversed(list(seqs.items())))), "user", seed=4)
    assert a.test == b.test and a.valid == b.valid and set(a.train.users) == set(b.train.users)


def test_user_split_two_item_users_are_evaluated_and_train_whole_sequences_with_times():
    seqs = {f"u{n:02d}": [f"i{n % 5}", f"i{(n + 1) % 5}"] for n in range(20)}
    times = {u: [10.0 * n, 10.0 * n + 1] for n, u in enumerate(seqs)}
    sp = make_split(_ds(seqs, times), "user", seed=0)
    assert sp.info["cases_skipped_short"] == 0
    assert (len(sp.train), len(sp.valid), len(sp.test)) == (16, 2, 2)
    for c in sp.valid + sp.test:
        assert c == Case(c.user, (seqs[c.user][0],), seqs[c.user][1])
    for u in sp.train:
        assert sp.train[u] == seqs[u] and sp.train.times[u] == times[u]


# -- leave-one-out ------------------------------------------------------------------------------

def test_loo_split_by_length_with_timestamps():
    seqs = {"long": ["a", "b", "c", "d", "e"], "three": ["a", "b", "c"], "two": ["d", "e"], "one": ["c"]}
    times = {"long": [1, 2, 3, 4, 5], "three": [6, 7, 8], "two": [9, 10], "one": [11]}
    with pytest.warns(UserWarning, match="1 users with a single item give no evaluation case"):
        sp = make_split(_ds(seqs, times), "loo")
    assert sp.train.items == {"long": ["a", "b", "c"], "three": ["a"], "two": ["d"], "one": ["c"]}
    assert sp.train.times == {"long": [1, 2, 3], "three": [6], "two": [9], "one": [11]}
    assert sp.valid == [Case("long", ("a", "b", "c"), "d"), Case("three", ("a",), "b")]
    assert sp.test == [Case("long", ("a", "b", "c", "d"), "e"), Case("three", ("a", "b"), "c"),
                       Case("two", ("d",), "e")]
    assert (sp.info["users_shorter_than_3"], sp.info["users_single_item"]) == (2, 1)


def test_loo_split_without_timestamps_and_a_user_with_no_items():
    ds = _ds({"u": ["a", "b", "c"], "empty": []})
    ds.sequences.log.append("loaded by the test")
    sp = make_split(ds, "loo")
    assert sp.train.items == {"u": ["a"]} and sp.train.times is None
    assert sp.train.log == ["loaded by the test"]
    assert sp.valid == [Case("u", ("a",), "b")] and sp.test == [Case("u", ("a", "b"), "c")]
    assert (sp.info["users_shorter_than_3"], sp.info["users_single_item"]) == (1, 0)


# -- temporal -----------------------------------------------------------------------------------

def test_temporal_split_contents_and_both_cut_boundaries():
    # 17 timestamps: the 0.5 and 0.75 quantiles are exactly the 9th and 13th, 6 and 9
    seqs = {"A": ["a", "b", "c"], "B": ["x", "y", "z"], "C": ["p"], "D": ["d1", "d2", "d3"], "G": ["g0", "g1"],
            "H": ["h0", "h1"], "I": ["i0", "i1", "i2"]}
    times = {"A": [0, 6, 9], "B": [1, 2, 9], "C": [11], "D": [7, 8, 12], "G": [5, 10], "H": [3, 4],
             "I": [0.5, 1.5, 6.5]}
    ds = _ds(seqs, times)
    ds.sequences.log.append("loaded by the test")
    sp = make_split(ds, "temporal", temporal_quantiles=(0.5, 0.75))
    assert (sp.info["valid_cut"], sp.info["test_cut"], sp.info["quantiles"]) == (6.0, 9.0, [0.5, 0.75])
    # before the validation cut trains; an interaction exactly at the cut does not
    assert sp.train.items == {"A": ["a"], "B": ["x", "y"], "G": ["g0"], "H": ["h0", "h1"], "I": ["i0", "i1"]}
    assert sp.train.times == {"A": [0], "B": [1, 2], "G": [5], "H": [3, 4], "I": [0.5, 1.5]}
    assert sp.train.log == ["loaded by the test"]
    # a user's first interaction at/after the validation cut (and before the test cut) validates;
    # B's and G's first ones after the validation cut are at/after the test cut: no validation case;
    # C and D have nothing before the validation cut: no history, no validation case
    assert sp.valid == [Case("A", ("a",), "b"), Case("I", ("i0", "i1"), "i2")]
    # the first interaction at/after the test cut is the test target, everything before it the
    # history (one item for G); C has nothing before the test cut: no case
    assert sp.test == [Case("A", ("a", "b"), "c"), Case("B", ("x", "y"), "z"), Case("D", ("d1", "d2"), "d3"),
                       Case("G", ("g0",), "g1")]
    with pytest.raises(GenrecError, match=r"^the temporal split needs timestamps; this dataset has none \(its "
                       r"files carry order only\): use --split loo or --split user$"):
        make_split(_ds(seqs), "temporal")


def test_temporal_split_default_quantiles():
    seqs = {f"u{n}": ["a", "b", "c", "d"] for n in range(10)}
    times = {f"u{n}": [n, n + 10, n + 20, n + 30] for n in range(10)}
    sp = make_split(_ds(seqs, times), "temporal")
    assert sp.info["quantiles"] == [0.8, 0.9]
    # times 0..39 once each: the 0.8 and 0.9 quantiles (linear) are 31.2 and 35.1
    assert (sp.info["valid_cut"], sp.info["test_cut"]) == (pytest.approx(31.2), pytest.approx(35.1))
    assert sp.valid == [Case(f"u{n}", ("a", "b", "c"), "d") for n in range(2, 6)]
    assert sp.test == [Case(f"u{n}", ("a", "b", "c"), "d") for n in range(6, 10)]


# -- cold items ---------------------------------------------------------------------------------

def test_cold_set_is_repeatable_per_seed_and_sized_by_the_fraction():
    ds = _ds(_three_item_users(60) | {f"w{n}": [f"j{n}", f"j{n + 1}", "i0"] for n in range(40)})
    n_items = len(ds.catalog)
    a = make_split(ds, "user", seed=3, cold_items=0.2).cold_items
    assert a == make_split(ds, "user", seed=3, cold_items=0.2).cold_items
    assert a != make_split(ds, "user", seed=4, cold_items=0.2).cold_items
    assert len(a) == round(0.2 * n_items) and a <= set(ds.catalog.ids)
    assert make_split(ds, "user", seed=3, cold_items=0.2).info["cold_fraction"] == 0.2
    assert make_split(ds, "user", seed=3, cold_items=0.0).cold_items == set()


@pytest.mark.parametrize("frac", [1.0, 1.5, -0.1])
def test_cold_fraction_must_be_in_0_to_1_with_1_excluded(frac):
    with pytest.raises(ValueError, match=rf"^cold_items must be a fraction in \[0, 1\), got {frac}$"):
        make_split(_ds(_three_item_users(10)), "user", cold_items=frac)


def test_cold_items_are_stripped_from_histories_and_cases_left_without_history_dropped():
    seqs = {f"u{n:02d}": [f"i{n % 9}", f"i{(n + 3) % 9}", f"i{(n + 5) % 9}"] for n in range(45)}
    ds = _ds(seqs)
    full = make_split(ds, "loo", seed=1)
    sp = make_split(ds, "loo", seed=1, cold_items=0.3)
    cold = sp.cold_items
    assert len(cold) == 3
    for name in ("valid", "test"):
        want = []
        for c in full.cases(name):
            h = tuple(i for i in c.history if i not in cold)
            if h:
                want.append(Case(c.user, h, c.target))
        assert sp.cases(name) == want
    assert len(sp.valid) < len(full.valid)  # some histories were all cold
    assert sp.train.items == {u: kept for u, s in full.train.items.items() if (kept := [i for i in s if i not in cold])}
    # the cold view keeps exactly the cases whose target is cold, in validation and test alike
    view = sp.cold_view()
    assert view.valid == [c for c in sp.valid if c.target in cold] and view.valid
    assert view.test == [c for c in sp.test if c.target in cold] and view.test
    assert view.info["view"] == "cold-start targets only" and view.train is sp.train
    assert (view.catalog, view.protocol, view.seed) == (sp.catalog, "loo", 1)
    assert sp.train.log[-1] == "hold out 3 cold items"
    with pytest.raises(ValueError, match=r"^this split holds out no items: make it with cold_items=0\.1$"):
        full.cold_view()


def test_make_split_defaults_protocol_name_and_recorded_info():
    ds = Dataset("tiny", Catalog(Item(i) for i in ("a", "b", "c")),
                 Sequences({f"u{n:02d}": ["a", "b", "c"] for n in range(20)}), info={"preprocess": "standard"},
                 synthetic=True)
    sp = make_split(ds)
    assert (sp.protocol, sp.seed) == ("user", 0) and sp.test == make_split(ds, "user", seed=0).test
    assert (sp.info["dataset"], sp.info["synthetic"], sp.info["preprocess"]) == ("tiny", True, "standard")
    with pytest.raises(UnknownNameError, match="^unknown split protocol 'random'; known split protocols: loo, "
                       "temporal, user$"):
        make_split(ds, "random")


@pytest.mark.skipif("MUTANT_UNDER_TEST" in os.environ, reason="mutmut's trampoline adds a stack frame")
def test_single_item_warning_points_at_the_caller():
    ds = _ds({"u": ["a", "b", "c"], "s": ["a"]})
    with pytest.warns(UserWarning, match="single item") as w:
        make_split(ds, "loo")
    assert w[0].filename == __file__


def test_split_describe_and_cases():
    ds = _ds(_three_item_users(20), name="tiny")
    sp = make_split(ds, "loo", seed=7)
    assert sp.describe() == {"protocol": "loo", "seed": 7, "train_users": 20, "train_interactions": 20,
                             "valid_cases": 20, "test_cases": 20, "items": 7, "dataset": "tiny",
                             "synthetic": False, "preprocess": None, "users_shorter_than_3": 0,
                             "users_single_item": 0}
    assert sp.cases("valid") is sp.valid and sp.cases("test") is sp.test
    with pytest.raises(ValueError, match="^which must be 'valid' or 'test'$"):
        sp.cases("train")
