"""The shared recipe fills in the dataset's defaults and gives the split the long form gives."""

from genrec.data.registry import load_dataset
from genrec.data.splits import make_split
from genrec.experiments.config import DataConfig
from genrec.experiments.recipe import load_split, preprocess_for


def test_defaults_come_from_the_registry():
    assert preprocess_for("demo", None, None) == ("user", "gpt4rec")
    assert preprocess_for("demo", "loo", None) == ("loo", "standard")
    assert preprocess_for("ml-100k", None, "gpt4rec") == ("loo", "gpt4rec")


def test_same_split_as_spelled_out():
    got = load_split(DataConfig(dataset="demo", cold_items=0.1), seed=3)
    want = make_split(load_dataset("demo", preprocess="gpt4rec"), "user", seed=3, cold_items=0.1)
    assert got.describe() == want.describe()
    assert [(c.user, c.history, c.target) for c in got.test] == [(c.user, c.history, c.target) for c in want.test]
    assert got.cold_items == want.cold_items and got.cold_items
