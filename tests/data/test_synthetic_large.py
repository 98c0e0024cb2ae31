"""The large synthetic generator: deterministic, exact sizes, the shared layout, skewed popularity."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import pytest

from genrec.data.registry import load_dataset
from genrec.data.synthetic_large import pseudo_word, write_synthetic_large, zipf_positions


def _digest(folder) -> str:
    return hashlib.sha256((folder / "items.jsonl").read_bytes() + (folder / "sequences.txt").read_bytes()).hexdigest()


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = write_synthetic_large(tmp_path / "a", 5000, 30_000, seed=1)
    write_synthetic_large(tmp_path / "b", 5000, 30_000, seed=1)
    write_synthetic_large(tmp_path / "c", 5000, 30_000, seed=2)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
    assert json.loads((tmp_path / "a" / "generated.json").read_text()) == a


def test_sizes_layout_and_realism(tmp_path):
    # More than one block of users and items, so block boundaries are exercised.
    stats = write_synthetic_large(tmp_path, n_items=45_000, n_interactions=250_003, seed=0)
    items = [json.loads(line) for line in open(tmp_path / "items.jsonl", encoding="utf-8")]
    assert len(items) == 45_000 and len({it["item_id"] for it in items}) == 45_000
    assert all(set(it) == {"item_id", "title", "brand", "categories"} and len(it["categories"]) == 3 for it in items)
    assert all(it["title"].startswith(it["brand"] + " ") and it["title"].endswith(it["categories"][-1]) for it in items)
    words = np.array([len(it["title"].split()) for it in items])
    assert 8 <= np.median(words) <= 10 and 9 <= words.mean() <= 12  # Amazon Beauty: median 9, mean 10.9
    lines = open(tmp_path / "sequences.txt", encoding="utf-8").read().splitlines()
    seqs = [line.split()[1:] for line in lines]
    assert sum(map(len, seqs)) == 250_003 and len(lines) == stats["n_users"]
    assert len({line.split()[0] for line in lines}) == len(lines)
    assert all(len(s) >= 5 for s in seqs[:-1]) and seqs[-1]  # 5-core-like; only the last user may be cut
    known = {it["item_id"] for it in items}
    counts = Counter(i for s in seqs for i in s)
    assert set(counts) <= known
    top = sorted(counts.values(), reverse=True)
    assert sum(top[:450]) / 250_003 > 0.12  # the top 1% of items take far more than 1% of the log
    # Ids do not reveal the layout (items are written category by category).
    first = [int(it["item_id"][1:]) for it in items[:100]]
    assert sum(b == a + 1 for a, b in zip(first, first[1:])) < 10


def test_registered_and_loadable(tmp_path):
    ds = load_dataset("synthetic-large", n_items=800, n_interactions=6000, seed=3, folder=tmp_path)
    assert ds.synthetic and ds.info["n_items"] == 800
    assert ds.sequences.num_interactions() == 6000
    assert all(it.title for it in ds.catalog)
    again = load_dataset("synthetic-large", n_items=800, n_interactions=6000, seed=3, folder=tmp_path)
    assert len(again.catalog) == len(ds.catalog)


def test_helpers_and_bad_sizes(tmp_path):
    words = [pseudo_word(i) for i in range(20_000)]
    assert len(set(words)) == len(words) and len(words[0]) < len(words[-1])
    rng = np.random.default_rng(0)
    pos = zipf_positions(rng, np.full(200_000, 100), 1.0)
    assert pos.min() == 0 and pos.max() == 99
    share = np.bincount(pos, minlength=100) / len(pos)
    assert share[0] > 5 * share[9] > 5 * share[99] * 0.5  # ~1/(j+1)
    with pytest.raises(ValueError, match="n_items"):
        write_synthetic_large(tmp_path, 0, 10)
    with pytest.raises(ValueError, match="popularity_skew"):
        write_synthetic_large(tmp_path, 10, 10, popularity_skew=0)
