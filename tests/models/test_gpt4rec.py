"""GPT4Rec end to end on a tiny demo shop: a real scratch LM trained in the test, real bm25s."""

import pytest

torch = pytest.importorskip("torch")

from genrec.core.why import Why  # noqa: E402
from genrec.data.catalog import Item  # noqa: E402
from genrec.models.gpt4rec import GPT4Rec  # noqa: E402
from genrec.models.registry import load_model  # noqa: E402


@pytest.fixture(scope="module")
def fitted(demo_user):
    torch.set_num_threads(1)
    m = GPT4Rec(lm="tiny", num_queries=4, epochs=2, batch_size=32, max_new_tokens=12, valid_users=8,
                valid_k=8, vocab_size=1024, max_prompt_tokens=96, max_title_tokens=16, augment_prefixes=False,
                progress=False, seed=0)
    return m.fit(demo_user)


def test_fit_trains_tracks_validation_and_tunes_bm25(fitted):
    assert len(fitted.train_history_) >= 1 and "valid" in fitted.train_history_[0]
    assert fitted.best_epoch_ in range(1, 3)
    assert len(fitted.bm25_grid_) > 1
    assert 0 <= fitted.k1_ <= 3 and 0 < fitted.b_ < 1


def test_recommend_shape_why_exclusion_and_notes(fitted, demo_user):
    cases = demo_user.test[:3]
    hist = [list(c.history) for c in cases]
    recs = fitted.recommend(hist + [[], ["no-such-item"] + hist[0]], k=8)
    assert len(recs) == 5
    for n, h in enumerate(hist):
        assert len(recs.items[n]) == 8 and len(set(recs.items[n])) == 8
        assert not set(recs.items[n]) & set(h)
        assert recs.scores[n] == sorted(recs.scores[n], reverse=True)
        why = recs.why[n]
        assert isinstance(why, Why) and not why.explanations and why.profile is None
        assert 1 <= len(why.queries) <= 4
        for q in why.queries:
            assert isinstance(q.text, str) and q.text and isinstance(q.score, float)
        credited = [i for q in why.queries for i in q.items]
        assert len(credited) + why.filled_by_popularity == 8
        assert set(credited) <= set(recs.items[n])
        scores = [q.score for q in why.queries]
        assert scores == sorted(scores, reverse=True)
    assert len(recs.items[3]) == 8 and any("empty history" in s for s in recs.notes[3])
    assert any("unknown" in s for s in recs.notes[4])
    assert recs.items[4] == recs.items[0]  # the unknown id is ignored, the rest is the same history
    with pytest.raises(ValueError):
        fitted.recommend(hist, k=0)


def test_save_load_gives_the_same_recommendations(fitted, demo_user, tmp_path):
    hist = [list(c.history) for c in demo_user.test[:3]]
    before = fitted.recommend(hist, k=6)
    fitted.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, GPT4Rec) and (loaded.k1_, loaded.b_) == (fitted.k1_, fitted.b_)
    after = loaded.recommend(hist, k=6)
    assert after.items == before.items
    assert [[q.text for q in w.queries] for w in after.why] == [[q.text for q in w.queries] for w in before.why]


def test_cold_start_item_is_searchable_and_recommended(fitted, demo_user, tmp_path):
    m = load_model(fitted.save(tmp_path / "m"))  # a private copy: the module fixture stays unchanged
    m.num_queries = 2
    m._bm25.set_params(k1=1.2, b=0.0)
    hist = list(demo_user.test[0].history)
    top_query = m.generate_queries([hist])[0][0][0]
    assert "NEW-1" not in m.recommend([hist], k=4).items[0]
    # b=0: the repeated title has the query's words twice, so it beats every existing title
    m.add_items([Item("NEW-1", title=f"{top_query} {top_query}", categories=("New",))])
    recs = m.recommend([hist], k=4)
    assert recs.items[0][0] == "NEW-1"
    assert recs.why[0].queries[0].items[0] == "NEW-1"
    assert "NEW-1" not in demo_user.catalog  # the split's catalog is not modified


def test_updated_title_is_searchable_at_once(fitted, demo_user, tmp_path):
    m = load_model(fitted.save(tmp_path / "m"))
    m.num_queries = 2
    m._bm25.set_params(k1=1.2, b=0.0)
    hist = list(demo_user.test[0].history)
    top_query = m.generate_queries([hist])[0][0][0]
    victim = next(i for i in m.catalog.ids if i not in hist and i not in m.recommend([hist], k=4).items[0])
    old = m.catalog[victim]
    m.update_items([Item(victim, title=f"{top_query} {top_query}", brand=old.brand, categories=old.categories)])
    assert m.recommend([hist], k=4).items[0][0] == victim
    assert demo_user.catalog[victim].title == old.title  # the split's catalog is not modified


def test_bad_parameters_fail_clearly(demo_user):
    with pytest.raises(ValueError, match="decode"):
        GPT4Rec(decode="nucleus").fit(demo_user)
    with pytest.raises(Exception, match="not fitted"):
        GPT4Rec().recommend([["x"]])


def test_branch_decoding_gives_queries_with_different_starts(fitted, demo_user):
    hist = [list(c.history) for c in demo_user.test[:3]]
    fitted.decode = "branch"
    try:
        qs = fitted.generate_queries(hist)
        recs = fitted.recommend(hist, k=8)
        fitted.retune_search(demo_user)
        assert 0 <= fitted.k1_ <= 3 and 0 < fitted.b_ < 1
    finally:
        fitted.decode = "beam"
        fitted.retune_search(demo_user)
    for q, items in zip(qs, recs.items):
        assert 1 <= len(q) <= 4 and len(items) == 8
        scores = [s for _, s in q]
        assert scores == sorted(scores, reverse=True) and all(s <= 0 for s in scores)
    with pytest.raises(ValueError, match="decode must be one of"):
        GPT4Rec(decode="nucleus").fit(demo_user)
