"""Full ranking in blocks of rows: the same recommendations and metrics whatever the memory budget,
and peak memory bounded by the budget rather than histories x items."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from genrec.data.catalog import Catalog, Item
from genrec.data.sequences import Sequences
from genrec.data.splits import Case, Split
from genrec.eval.evaluate import evaluate
from genrec.models.base import score_block_rows
from genrec.models.registry import create


def test_block_rows_from_budget():
    assert score_block_rows(1_000_000, 64 * 2**20) == 16
    assert score_block_rows(1_000_000, 100) == 1  # at least one row
    assert score_block_rows(0, 4096) == 1024


@pytest.mark.parametrize("name", ["pop", "itemknn", "random"])
def test_metrics_identical_across_block_sizes(demo_loo, name):
    n = len(demo_loo.catalog)
    reports = []
    for rows in (1, 7, 100_000):
        model = create(name).fit(demo_loo)
        model.score_block_bytes = rows * n * 4
        assert score_block_rows(n, model.score_block_bytes) == rows
        reports.append(evaluate(model, demo_loo, progress=False, batch_size=64))
    for rep in reports[1:]:
        assert rep.table == reports[0].table
        assert rep.lists == reports[0].lists


def test_recommend_with_exclude_identical_across_block_sizes(demo_loo):
    model = create("itemknn").fit(demo_loo)
    hist = [list(c.history) for c in demo_loo.cases("test")[:50]] + [[]]
    banned = [model.catalog.ids[j] for j in range(0, len(model.catalog), 3)]
    model.score_block_bytes = 4 * len(model.catalog) * 1000
    whole = model.recommend(hist, k=15, exclude=banned)
    model.score_block_bytes = 4 * len(model.catalog) * 3
    blocks = model.recommend(hist, k=15, exclude=banned)
    assert blocks.items == whole.items and blocks.scores == whole.scores and blocks.notes == whole.notes
    assert not set(banned) & {i for row in blocks.items for i in row}


def test_sampled_metrics_identical_across_block_sizes(demo_loo):
    out = []
    for rows in (1, 1000):
        model = create("pop").fit(demo_loo)
        model.score_block_bytes = rows * len(demo_loo.catalog) * 4
        with pytest.warns(UserWarning, match="sampled"):
            out.append(evaluate(model, demo_loo, progress=False, sampled_negatives=20, seed=4).table)
    assert out[0] == out[1]


def test_peak_memory_does_not_grow_with_histories_x_items():
    n_items, n_users = 200_000, 1_000  # unbounded: 1,000 x 200,000 float32 = 800 MB of scores
    cat = Catalog([Item(f"i{j}") for j in range(n_items)])
    train = Sequences({f"u{u}": [f"i{(u * 7 + t) % 5000}" for t in range(3)] for u in range(n_users)})
    cases = [Case(f"u{u}", (f"i{u % 5000}",), f"i{(u + 1) % 5000}") for u in range(n_users)]
    sp = Split(cat, train, cases, cases, "user", 0)
    model = create("pop").fit(sp)
    model.score_block_bytes = 8 * 2**20  # 10 rows of 200,000 scores
    hist = [list(c.history) for c in cases]
    tracemalloc.start()
    try:
        recs = model.recommend(hist, k=10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(recs.items) == n_users and all(len(r) == 10 for r in recs.items)
    assert peak < 80 * 2**20, f"peak {peak / 2**20:.0f} MB"
    top = np.argsort(-model.score([np.array([], dtype=np.int64)])[0], kind="stable")[:11]
    assert recs.items[0] == [cat.ids[j] for j in top if cat.ids[j] != hist[0][0]][:10]
