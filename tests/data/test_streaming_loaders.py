"""The streaming loaders (compact integer arrays, genrec.data.loaders.events) give the same
Dataset as the in-memory path (Python lists of every row): same users in the same order, same
items and times per user (ties in file order), same catalog and info."""

import gzip
import json

import numpy as np
import pytest

from genrec.data.loaders.amazon import load_amazon_reviews
from genrec.data.loaders.generic import load_interactions


def _same(a, b):
    assert list(a.sequences.items) == list(b.sequences.items)  # user order: first appearance
    assert a.sequences.items == b.sequences.items
    assert a.sequences.times == b.sequences.times
    assert a.sequences == b.sequences
    assert list(a.catalog.ids) == list(b.catalog.ids)
    assert [it.title for it in a.catalog] == [it.title for it in b.catalog]
    assert a.info == b.info and a.name == b.name


def _events(n=600, seed=0):
    rng = np.random.default_rng(seed)
    # few distinct times: many ties, which must keep file order
    return [(f"U{int(u)}", f"B{int(i):04d}", int(t)) for u, i, t in
            zip(rng.integers(0, 40, n), rng.integers(0, 90, n), rng.integers(0, 12, n) * 86400)]


def test_amazon_reviews_streaming_equals_in_memory(tmp_path):
    ev = _events()
    with gzip.open(tmp_path / "reviews_Beauty_5.json.gz", "wt") as f:
        for u, i, t in ev:
            f.write(json.dumps({"reviewerID": u, "asin": i, "unixReviewTime": t, "reviewText": "ok"}) + "\n")
    with gzip.open(tmp_path / "meta_Beauty.json.gz", "wt") as f:
        for i in sorted({i for _, i, _ in ev})[::2]:
            f.write(str({"asin": i, "title": f"Title {i}", "categories": [["Beauty", "Hair"]]}) + "\n")
    with pytest.warns(UserWarning):
        streamed = load_amazon_reviews(tmp_path)
    with pytest.warns(UserWarning):
        listed = load_amazon_reviews(tmp_path, stream=False)
    _same(streamed, listed)
    assert sum(len(s) for s in streamed.sequences.items.values()) == len(ev)
    # ties kept in file order: user U's events at one time are in the order the file had them
    u0 = ev[0][0]
    first_t = min(t for u, _, t in ev if u == u0)
    assert streamed.sequences.items[u0][:sum(1 for u, _, t in ev if u == u0 and t == first_t)] == \
        [i for u, i, t in ev if u == u0 and t == first_t]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "csv-no-time"])
def test_generic_interactions_streaming_equals_in_memory(tmp_path, fmt):
    ev = _events(seed=1)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = tmp_path / "interactions.parquet"
        pq.write_table(pa.table({"user": [e[0] for e in ev], "item": [e[1] for e in ev],
                                 "timestamp": [e[2] for e in ev]}), path, row_group_size=100)
    else:
        path = tmp_path / "interactions.csv"
        head = "user,item" + ("" if fmt == "csv-no-time" else ",timestamp")
        path.write_text(head + "\n" + "".join(f"{u},{i}" + ("" if fmt == "csv-no-time" else f",{t}") + "\n"
                                              for u, i, t in ev))
    _same(load_interactions(path), load_interactions(path, stream=False))
