"""The tuner picks the best candidate on validation cases, through set_params for score-only
parameters, on a split where the answer is known by construction."""

from __future__ import annotations

import pytest

from genrec.data.catalog import Catalog, Item
from genrec.data.sequences import Sequences
from genrec.data.splits import Case, Split
from genrec.experiments.tuner import Tuner, candidates
from genrec.models.base import Recommendations, Recommender

N = 12


class ShiftRec(Recommender):
    """Recommends item (last + shift) mod N first, then the rest in order. ``shift`` is read at
    recommend time; ``width`` only at fit. Counts fits and set_params calls."""

    name = "shift"
    fits = 0
    set_calls: list[dict] = []

    def __init__(self, shift: int = 0, width: int = 1) -> None:
        self.shift, self.width = shift, width

    def set_params(self, **params):
        ShiftRec.set_calls.append(params)
        return super().set_params(**params)

    def __setattr__(self, key, value):
        if key in ("shift", "width") and getattr(self, "catalog", None) is not None and not ShiftRec._in_set:
            raise AssertionError(f"{key} set on a fitted model outside set_params")
        super().__setattr__(key, value)

    _in_set = False

    def fit(self, split):
        ShiftRec.fits += 1
        self.catalog = split.catalog
        self.width_ = self.width
        return self

    def recommend(self, histories, k=10, *, exclude_history=True):
        items = []
        for h in histories:
            last = int(h[-1][1:])
            first = [f"i{(last + self.shift * self.width_) % N:02d}"]
            items.append((first + [f"i{j:02d}" for j in range(N) if f"i{j:02d}" not in first])[:k])
        return Recommendations(items, [[1.0] * len(r) for r in items], [], [[] for _ in items])


@pytest.fixture
def split():
    """Validation target = next item (best shift 1); test target = two on (best shift 2)."""
    cat = Catalog([Item(f"i{j:02d}", f"item {j}") for j in range(N)])
    train = Sequences({f"u{j}": [f"i{j:02d}", f"i{(j + 1) % N:02d}"] for j in range(N)})
    valid = [Case(f"u{j}", (f"i{j:02d}",), f"i{(j + 1) % N:02d}") for j in range(N)]
    test = [Case(f"u{j}", (f"i{j:02d}",), f"i{(j + 2) % N:02d}") for j in range(N)]
    return Split(cat, train, valid, test, "loo", 0)


@pytest.fixture(autouse=True)
def counters(monkeypatch):
    ShiftRec.fits, ShiftRec.set_calls = 0, []
    orig = Recommender.set_params

    def guarded(self, **params):
        ShiftRec._in_set = True
        try:
            return orig(self, **params)
        finally:
            ShiftRec._in_set = False
    monkeypatch.setattr(Recommender, "set_params", guarded)


@pytest.mark.parametrize("method", ["coordinate", "grid", "random"])
def test_picks_the_validation_best_with_set_params_and_one_fit(split, method):
    tuner = Tuner(ShiftRec, split, metric="recall@1", tiebreak=None, score_only=["shift"], log=lambda m: None)
    res = tuner.run({"shift": 0, "width": 1}, {"shift": [0, 2, 1, 3]}, method, trials=4)
    assert res.best == {"shift": 1, "width": 1} and res.score == (1.0,)  # not 2, the test's answer
    assert ShiftRec.fits == 1  # score-only changes reuse the fitted model ...
    assert {c["shift"] for c in ShiftRec.set_calls} >= {2, 1, 3}  # ... through set_params
    assert [t.refit for t in res.trials].count(True) == 1


def test_a_fit_parameter_refits(split):
    tuner = Tuner(ShiftRec, split, metric="recall@1", tiebreak=None, score_only=["shift"], log=lambda m: None)
    res = tuner.run({"shift": 1, "width": 3}, {"width": [3, 2, 1], "shift": [1, 0]}, "grid")
    assert res.best == {"shift": 1, "width": 1}
    assert ShiftRec.fits == 3 and len(res.trials) == 6  # one fit per width; shift varies within a fit


def test_random_search_draws_a_seeded_subset():
    grid = {"a": [1, 2, 3], "b": [4, 5, 6]}
    one = candidates({"c": 0}, grid, "random", trials=4, seed=1)
    assert one == candidates({"c": 0}, grid, "random", trials=4, seed=1) and len(one) == 4
    assert all(c["c"] == 0 for c in one) and len({(c["a"], c["b"]) for c in one}) == 4
    assert len(candidates({}, grid, "grid")) == 9


def test_ties_keep_the_first_and_unknown_method_is_an_error(split):
    tuner = Tuner(ShiftRec, split, metric="recall@1", tiebreak=None, score_only=["shift"], log=lambda m: None)
    assert tuner.run({"shift": 0, "width": 1}, {"shift": [5, 4]}, "grid").best["shift"] == 5  # both score 0
    with pytest.raises(ValueError, match="unknown search method 'anneal'"):
        tuner.run({"shift": 0, "width": 1}, {"shift": [1]}, "anneal")
