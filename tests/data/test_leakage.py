"""The leakage check: each rule on a hand-made split that breaks it (and only it), and on one
that keeps it; the check runs by default in make_split and never goes quiet."""

import pytest

from genrec.data import splits as splits_module
from genrec.data.catalog import Catalog, Item
from genrec.data.dataset import Dataset
from genrec.data.sequences import Sequences
from genrec.data.splits import Case, LeakageError, Split, check_leakage, make_split

CAT = Catalog(Item(i) for i in ("a", "b", "c", "d", "e"))


def _split(protocol, train, valid=(), test=(), times=None, info=None):
    return Split(CAT, Sequences(train, times), list(valid), list(test), protocol, 0, dict(info or {}))


def _fails(split, *phrases):
    with pytest.raises(LeakageError, match=f"^leakage check failed for the '{split.protocol}' split: ") as e:
        check_leakage(split)
    for p in phrases:
        assert p in str(e.value), str(e.value)
    return str(e.value)


def test_targets_outside_the_catalog_and_empty_histories_for_every_protocol():
    for protocol in ("user", "loo"):
        check_leakage(_split(protocol, {}, [Case("v", ("a",), "b")], [Case("t", ("a",), "c")]))
        _fails(_split(protocol, {}, [Case("v", ("a",), "zz")]),
               "1 valid targets are not in the catalog (e.g. 'zz' of user 'v')")
        _fails(_split(protocol, {}, [], [Case("t", ("a",), "zz"), Case("t2", ("a",), "yy")]),
               "2 test targets are not in the catalog (e.g. 'zz' of user 't')")
        _fails(_split(protocol, {}, [Case("v", (), "b")]), "1 valid cases have an empty history (e.g. user 'v')")
        _fails(_split(protocol, {}, [], [Case("t", (), "b")]), "1 test cases have an empty history (e.g. user 't')")


def test_user_protocol_evaluation_users_never_train_and_are_valid_or_test_not_both():
    check_leakage(_split("user", {"u": ["a", "b"]}, [Case("v", ("a",), "b")], [Case("t", ("a",), "c")]))
    _fails(_split("user", {"v": ["a"]}, [Case("v", ("a",), "b")]), "1 valid users also appear in training (e.g. 'v')")
    _fails(_split("user", {"t": ["a"]}, [], [Case("t", ("a",), "b")]), "1 test users also appear in training (e.g. 't')")
    msg = _fails(_split("user", {}, [Case("x", ("a",), "b")], [Case("x", ("a",), "c")]),
                 "1 users are both validation and test users (e.g. 'x')")
    assert "appear in training" not in msg


def test_loo_protocol_training_must_be_a_prefix_of_each_history():
    ok = _split("loo", {"u": ["a", "b"]}, [Case("u", ("a", "b"), "c")], [Case("u", ("a", "b", "c"), "d")])
    check_leakage(ok)
    check_leakage(_split("loo", {}, [], [Case("new", ("a",), "b")]))  # no training sequence: nothing leaks
    _fails(_split("loo", {"u": ["a", "c"]}, [Case("u", ("a", "b"), "c")]),
           "1 valid cases whose training sequence is not a prefix of the history (e.g. user 'u')")
    # training runs past the history: it holds the target
    _fails(_split("loo", {"u": ["a", "b", "c"]}, [], [Case("u", ("a", "b"), "c")]),
           "1 test cases whose training sequence is not a prefix")


def test_temporal_protocol_no_training_interaction_at_or_after_the_validation_cut():
    info = {"valid_cut": 5.0, "test_cut": 8.0}
    check_leakage(_split("temporal", {"u": ["a", "b"]}, [], [], {"u": [1, 4.999]}, info))
    _fails(_split("temporal", {"u": ["a", "b"], "w": ["c"]}, [], [], {"u": [1, 5.0], "w": [2]}, info),
           "1 training sequences have interactions at or after the validation cut 5.0 (e.g. user 'u')")
    _fails(_split("temporal", {"u": ["a", "b"]}, [], [], {"u": [7, 2]}, info), "at or after the validation cut")


def test_cold_items_never_in_training_nor_in_a_history():
    info = {"cold_items": ["e"]}
    check_leakage(_split("loo", {"u": ["a"]}, [Case("u", ("a",), "e")], [], None, info))
    _fails(_split("loo", {"u": ["a", "e"]}, [], [], None, info), "1 held-out cold items appear in training (e.g. 'e')")
    _fails(_split("loo", {}, [Case("v", ("e",), "a")], [], None, info),
           "1 evaluation histories hold held-out cold items (e.g. user 'v')")
    _fails(_split("loo", {}, [], [Case("t", ("a", "e"), "b")], None, info), "evaluation histories hold held-out cold")


def test_every_broken_rule_is_reported_however_many_problems_pile_up():
    bad_valid = [Case(f"v{n}", (), "zz") for n in range(30)]
    bad_test = [Case(f"t{n}", ("a",), "b") for n in range(25)]
    msg = _fails(_split("user", {f"t{n}": ["a"] for n in range(25)}, bad_valid, bad_test),
                 "30 valid targets are not in the catalog", "30 valid cases have an empty history",
                 "25 test users also appear in training")
    assert msg == ("leakage check failed for the 'user' split: 30 valid targets are not in the catalog (e.g. 'zz' "
                   "of user 'v0'); 30 valid cases have an empty history (e.g. user 'v0'); 25 test users also "
                   "appear in training (e.g. 't0')")


def _leaky_loo(seqs):
    """A loo split whose training sequences keep every item, targets included."""
    valid = [Case(u, tuple(s[:-2]), s[-2]) for u, s in seqs.items.items()]
    test = [Case(u, tuple(s[:-1]), s[-1]) for u, s in seqs.items.items()]
    return Sequences(dict(seqs.items)), valid, test, {}


def test_make_split_runs_the_check_by_default(monkeypatch):
    ds = Dataset("t", CAT, Sequences({"u": ["a", "b", "c", "d"], "w": ["b", "c", "d"]}))
    monkeypatch.setattr(splits_module, "_loo_split", _leaky_loo)
    with pytest.raises(LeakageError, match="2 valid cases whose training sequence is not a prefix"):
        make_split(ds, "loo")
    assert make_split(ds, "loo", check=False).train["u"] == ["a", "b", "c", "d"]
