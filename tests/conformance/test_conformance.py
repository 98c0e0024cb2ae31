"""Every registered model through the protocol, and every declared capability checked against the
real model: fit / recommend / save / load / add_items / update_items / exclusions / unknown ids /
empty history, on the small demo shop with tiny settings (a few training steps for torch models).

A model declaring ``cold_start_items`` must rank an added item; one declaring ``text_updates`` must
rank an item by its edited title; one declaring neither must ignore both, as documented.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from genrec.core.capabilities import Capabilities
from genrec.core.why import Why, as_why
from genrec.data.catalog import Item
from genrec.models.registry import MODELS, create, load_model

# Tiny settings per registered model: seconds, not minutes. A model added to the registry must be
# added here too (test_every_registered_model_has_tiny_settings), so conformance covers it.
TORCH_SEQ = dict(max_len=8, hidden=16, layers=1, epochs=1, batch_size=128, valid_users=20, patience=None,
                 progress=False, threads=1)
TINY: dict[str, dict] = {
    "random": {},
    "pop": {},
    "itemknn": {},
    "als": {"factors": 8, "iterations": 3, "num_threads": 1},
    "bpr": {"factors": 8, "iterations": 5},
    "svd": {"factors": 8, "epochs": 5},
    "lightfm": {"factors": 8, "epochs": 3},
    "content": {},
    "sasrec": dict(TORCH_SEQ, heads=1, loss="ce"),
    "bert4rec": dict(TORCH_SEQ, heads=1),
    "gpt4rec": dict(lm="tiny", num_queries=2, epochs=1, batch_size=64, max_new_tokens=8, valid_users=4,
                    vocab_size=512, max_prompt_tokens=48, max_title_tokens=12, tune_bm25=False, progress=False),
    "title-bm25": {"num_queries": 2, "valid_users": 20},
    "genrec-seq2seq": dict(pretrain_epochs=0, finetune_epochs=1, max_len=8, d_model=16, layers=1, heads=2,
                           batch_size=128, valid_users=20, patience=0, progress=False, threads=1),
    "llm-rerank": dict(backend="scratch", candidates=6, history_items=4, max_title_tokens=12, bf16=False),
    "genrec-llm": dict(lm="tiny", epochs=1, batch_size=64, vocab_size=384, max_prompt_tokens=40, max_title_tokens=8,
                       max_target_tokens=10, history_items=2, examples_per_user=1, num_beams=3, valid_users=4,
                       progress=False, threads=1),
    "p5": dict(lm="tiny", epochs=1, batch_size=64, sequential_examples=2, direct_examples=1, yesno_examples=1,
               candidates=4, beams=4, vocab_size=512, max_prompt_tokens=160, valid_users=10, bf16=False,
               progress=False, threads=1),
}
K = 10


def test_every_registered_model_has_tiny_settings():
    assert sorted(TINY) == sorted(MODELS)


@pytest.fixture(scope="module")
def saved(demo_loo, tmp_path_factory):
    """name -> folder of the model fitted once on the demo shop (each test loads its own copy)."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    out = {}
    for name in MODELS:
        model = create(name, **TINY[name]).fit(demo_loo)
        out[name] = model.save(tmp_path_factory.mktemp(f"conf-{name}"))
    return out


@pytest.fixture(params=list(MODELS))
def name(request) -> str:
    return request.param


@pytest.fixture()
def model(name, saved):
    return load_model(saved[name])


def _histories(split, n: int = 4) -> list[list[str]]:
    return [list(c.history) for c in split.test[:n]]


def _rank_of(model, history: list[str], item: str) -> int | None:
    """1-based rank of ``item`` in the model's full list for ``history`` (None: not ranked)."""
    items = model.recommend([history], k=len(model.catalog)).items[0]
    return items.index(item) + 1 if item in items else None


def _liked_text(model, history: list[str]) -> Item:
    """Text the model must like for ``history``: its first query (models that write queries; an
    item titled with a query is that query's best BM25 match), else its top item's fields."""
    recs = model.recommend([history], k=K)
    top = model.catalog[recs.items[0][0]]
    queries = as_why(recs.why[0]).queries
    if queries:
        return Item(id="", title=queries[0].text)
    return Item(id="", title=top.title, brand=top.brand, categories=top.categories)


def test_capabilities_are_declared_and_their_methods_exist(name):
    from genrec.models.base import Recommender as base
    from genrec.models.registry import model_class

    cls = model_class(name)
    caps = cls.capabilities
    assert isinstance(caps, Capabilities)
    if caps.text_updates:
        assert cls.update_items is not base.update_items, f"{name} declares text_updates but keeps the base update_items"
    if caps.cold_start_items:
        assert cls.add_items is not base.add_items, f"{name} declares cold_start_items but keeps the base add_items"
    assert callable(getattr(cls, "generate_queries", None)) == caps.writes_queries
    assert callable(getattr(cls, "recommend_for_ks", None)) == caps.per_k_lists
    assert callable(getattr(cls, "score", None)) == caps.scores_all_items


def test_recommend_lists_exclusions_and_why(model, name, demo_loo):
    caps = model.capabilities
    hists = _histories(demo_loo)
    recs = model.recommend(hists, k=K)
    assert len(recs) == len(hists) == len(recs.why) == len(recs.notes)
    for n, h in enumerate(hists):
        items, scores = recs.items[n], recs.scores[n]
        assert len(items) == K and len(set(items)) == K, (name, items)
        assert all(i in model.catalog for i in items)
        assert not set(items) & set(h), f"{name} returned history items with exclude_history=True"
        assert scores == sorted(scores, reverse=True) and all(np.isfinite(scores))
        why = as_why(recs.why[n])
        assert isinstance(why, Why)
        if caps.explains:
            assert why.queries or why.explanations, f"{name} declares explains but gave an empty why"
            assert {i for q in why.queries for i in q.items} <= set(items)
        else:
            assert why.is_empty(), f"{name} does not declare explains but gave a why: {why}"
    rows = json.loads(json.dumps(recs.to_dicts(model.catalog)))  # JSON-ready, why as Why.to_dict()
    assert [Why.from_dict(r["why"]) for r in rows] == [as_why(w) for w in recs.why]
    assert [[x["item_id"] for x in r["items"]] for r in rows] == recs.items
    if caps.takes_exclude:
        banned = recs.items[0][:3] + ["no-such-item"]
        again = model.recommend(hists[:1], k=K, exclude=banned)
        assert len(again.items[0]) == K and not set(again.items[0]) & set(banned)
    # exclude_history=False may return history items, and still K of them
    loose = model.recommend(hists[:1], k=K, exclude_history=False)
    assert len(loose.items[0]) == K


def test_unknown_ids_are_ignored_with_a_note_and_empty_history_works(model, name, demo_loo, saved):
    h = _histories(demo_loo, 1)[0]
    plain = model.recommend([h], k=K)
    # a fresh copy, so the random model's generator starts where the first one's did
    noisy = load_model(saved[name]).recommend([["no-such-item"] + h + ["also-unknown"]], k=K)
    assert noisy.items == plain.items, name
    assert any("unknown" in note for note in noisy.notes[0]), noisy.notes
    empty = model.recommend([[]], k=K)
    assert len(empty.items[0]) == K and len(set(empty.items[0])) == K, name
    assert model.recommend([], k=K).items == []
    with pytest.raises(ValueError):
        model.recommend([h], k=0)


def test_save_then_load_gives_the_same_recommendations(model, name, demo_loo, tmp_path):
    hists = _histories(demo_loo) + [[]]
    model.save(tmp_path)  # saved now, so even the random model's generator state matches
    before = model.recommend(hists, k=K)
    after = load_model(tmp_path).recommend(hists, k=K)
    assert after.items == before.items, name
    np.testing.assert_allclose(np.asarray(after.scores), np.asarray(before.scores), rtol=1e-4, atol=1e-5)
    assert [as_why(w).to_dict() for w in after.why] == [as_why(w).to_dict() for w in before.why]


def test_add_items_is_ranked_only_by_models_declaring_cold_start(model, name, demo_loo):
    h = _histories(demo_loo, 1)[0]
    # Text the model likes for h: a text model must rank a new item with it in the top K.
    src = _liked_text(model, h)
    clone = Item(id="NEW-CLONE", title=src.title, brand=src.brand, categories=src.categories)
    split_size = len(demo_loo.catalog)
    new = model.add_items([clone])
    assert new == [len(model.catalog) - 1] and "NEW-CLONE" in model.catalog
    assert len(demo_loo.catalog) == split_size, "add_items changed the split's catalog"
    if model.capabilities.cold_start_items:
        assert "NEW-CLONE" in model.recommend([h], k=K).items[0], f"{name} declares cold_start_items"
    else:
        assert _rank_of(model, h, "NEW-CLONE") is None, f"{name} ranked an item it cannot score"
    # the added item in a history is in the catalog (not an "unknown item id") and never breaks recommend
    recs = model.recommend([h + ["NEW-CLONE"]], k=K)
    assert len(recs.items[0]) == K and "NEW-CLONE" not in recs.items[0]
    assert not any("unknown item id" in note for note in recs.notes[0]), recs.notes[0]


def test_update_items_reaches_the_scores_only_of_models_declaring_text_updates(model, name, demo_loo):
    h = _histories(demo_loo, 1)[0]
    top_k = model.recommend([h], k=K).items[0]  # not the full list's first K: GPT4Rec's list depends on K
    # an item outside the top K (or not ranked at all) gets text the model likes for h
    low = next(i for i in reversed(model.catalog.ids) if i not in top_k and i not in h)
    src, old = _liked_text(model, h), model.catalog[low]
    edited = dataclasses.replace(old, title=src.title, brand=src.brand, categories=src.categories)
    rank_before = _rank_of(model, h, low)
    model.update_items([edited])
    assert model.catalog[low].title == src.title
    assert demo_loo.catalog[low].title == old.title, "update_items changed the split's catalog"
    if model.capabilities.text_updates:
        assert low in model.recommend([h], k=K).items[0], f"{name} declares text_updates but ignores the new title"
    elif name != "random":
        assert _rank_of(model, h, low) == rank_before, f"{name} changed its ranking after a text edit"


def test_declared_extras_work(model, name, demo_loo):
    caps = model.capabilities
    hists = _histories(demo_loo, 2)
    if caps.writes_queries:
        qs = model.generate_queries(hists)
        assert len(qs) == 2 and all(qs) and all(isinstance(q, str) and isinstance(s, float) for q, s in qs[0])
    if caps.per_k_lists:
        by_k = model.recommend_for_ks(hists, [2, 4])
        assert sorted(by_k) == [2, 4] and all(len(by_k[k].items[0]) == k for k in (2, 4))
    if caps.scores_all_items:
        enc, _ = model.encode_histories(hists)
        assert np.asarray(model.score(enc)).shape[0] == 2


def test_a_bad_batch_of_item_changes_leaves_the_model_unchanged(model, name, demo_loo):
    from genrec.errors import DataError

    h = _histories(demo_loo, 1)[0]
    before = model.recommend([h], k=K).items if name != "random" else None
    n, first = len(model.catalog), model.catalog.ids[0]
    with pytest.raises(DataError, match=first):
        model.add_items([Item(id="NEW-OK", title="fine new item"), Item(id=first, title="duplicate id")])
    with pytest.raises(DataError, match="NEW-TWICE"):
        model.add_items([Item(id="NEW-TWICE", title="a"), Item(id="NEW-TWICE", title="b")])
    assert len(model.catalog) == n and "NEW-OK" not in model.catalog
    old_title = model.catalog[first].title
    with pytest.raises(KeyError, match="no-such-item"):
        model.update_items([Item(id=first, title="edited"), Item(id="no-such-item", title="x")])
    assert model.catalog[first].title == old_title
    if before is not None:
        assert model.recommend([h], k=K).items == before, name
    # and the model still takes a good change afterwards
    assert model.add_items([Item(id="NEW-OK", title="fine new item")]) == [n]


def test_copy_for_edit_takes_edits_without_changing_the_original(model, name, demo_loo):
    h = _histories(demo_loo, 1)[0]
    before = model.recommend([h], k=K).items
    src = _liked_text(model, h)
    first = model.catalog.ids[0]
    old_title = model.catalog[first].title
    dup = model.copy_for_edit()
    dup.add_items([Item(id="NEW-CLONE", title=src.title, brand=src.brand, categories=src.categories)])
    dup.update_items([dataclasses.replace(model.catalog[first], title=src.title)])
    assert "NEW-CLONE" in dup.catalog and dup.catalog[first].title == src.title
    assert "NEW-CLONE" not in model.catalog and model.catalog[first].title == old_title
    if name != "random":  # its generator moves on with every call
        assert model.recommend([h], k=K).items == before, f"editing {name}'s copy changed the original"
    if model.capabilities.cold_start_items:
        assert "NEW-CLONE" in dup.recommend([h], k=K).items[0]


def test_evaluate_records_the_declared_capabilities(model, demo_loo):
    from genrec.eval.evaluate import evaluate

    rep = evaluate(model, demo_loo, ks=(5,), max_cases=5, progress=False)
    assert rep.run_card["capabilities"] == model.capabilities.names()
    assert len(rep.per_case) == 5
