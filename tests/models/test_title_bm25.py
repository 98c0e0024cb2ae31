"""title-bm25: GPT4Rec's search and merge with the history's own titles as the queries."""

import pytest

from genrec.data.catalog import Item
from genrec.eval.evaluate import evaluate
from genrec.models.title_bm25 import TitleBM25
from genrec.models.registry import create, load_model


@pytest.fixture(scope="module")
def fitted(demo_user):
    return TitleBM25(num_queries=3, valid_users=50).fit(demo_user)


def test_queries_are_the_last_distinct_titles_newest_first(fitted, demo_user):
    hist = list(demo_user.test[0].history)
    titles = [demo_user.catalog[i].title for i in reversed(hist)]
    expected = list(dict.fromkeys(titles))[:3]
    queries = fitted.generate_queries([hist + ["no-such-item"]])[0]
    assert [q for q, _ in queries] == expected
    assert [s for _, s in queries] == sorted((s for _, s in queries), reverse=True)


def test_recommendations_merge_per_query_results_and_exclude_history(fitted, demo_user):
    hist = [list(c.history) for c in demo_user.test[:5]]
    recs = fitted.recommend(hist + [[]], k=6)
    for n, h in enumerate(hist):
        assert len(recs.items[n]) == 6 and not set(recs.items[n]) & set(h)
        credited = [i for q in recs.why[n].queries for i in q.items]
        assert len(credited) + recs.why[n].filled_by_popularity == 6
    assert recs.why[-1].filled_by_popularity == 6 and any("empty history" in s for s in recs.notes[-1])


def test_excluding_all_but_one_category_still_fills_k_from_its_matches(fitted, demo_user):
    """As the server's category filter does: everything outside the category is passed in
    ``exclude``; the masked search still finds the category's matching items for each query."""
    cat = demo_user.catalog
    hist = list(demo_user.test[0].history)
    wanted = cat[hist[-1]].categories[-1]
    inside = {i for i in cat.ids if wanted in cat[i].categories and i not in hist}
    recs = fitted.recommend([hist], k=5, exclude={i for i in cat.ids if i not in inside})
    assert len(recs.items[0]) == 5 and set(recs.items[0]) <= inside
    credited = [i for q in recs.why[0].queries for i in q.items]
    assert recs.why[0].filled_by_popularity == 0 and len(credited) == 5 and set(credited) <= inside


def test_tuned_on_validation_evaluated_per_k_and_beats_popularity(fitted, demo_user):
    assert len(fitted.bm25_grid_) == 20
    both = evaluate(fitted, demo_user, ks=(5, 20), progress=False).table
    alone = evaluate(fitted, demo_user, ks=(5,), progress=False).table
    assert both["recall@5"] == alone["recall@5"]  # each K has its own merged list, as the paper
    pop = evaluate(create("pop").fit(demo_user), demo_user, ks=(20,), progress=False).table
    assert both["recall@20"] > pop["recall@20"]


def test_new_item_is_found_at_once_and_save_load_round_trips(fitted, demo_user, tmp_path):
    m = load_model(fitted.save(tmp_path / "m"))
    hist = list(demo_user.test[0].history)
    assert m.recommend([hist], k=5).items == fitted.recommend([hist], k=5).items
    m._bm25.set_params(k1=1.2, b=0.0)
    last = demo_user.catalog[hist[-1]].title
    m.add_items([Item("NEW-1", title=f"{last} {last}")])
    assert m.recommend([hist], k=5).items[0][0] == "NEW-1"
    assert "NEW-1" not in demo_user.catalog


def test_bad_parameters_fail_clearly(demo_user):
    with pytest.raises(ValueError, match="num_queries"):
        TitleBM25(num_queries=0).fit(demo_user)


def test_recommend_for_ks_gives_each_k_its_own_merge(fitted, demo_user):
    hist = [list(c.history) for c in demo_user.test[:4]]
    by_k = fitted.recommend_for_ks(hist, [3, 9])
    for k in (3, 9):
        assert by_k[k].items == fitted.recommend(hist, k=k).items
    # three queries: K=3 takes the best new item of each query, K=9 the best three of each
    for n in range(4):
        assert [len(q.items) for q in by_k[3].why[n].queries] == [1, 1, 1]
        assert set(by_k[3].items[n]) <= set(by_k[9].items[n]) and by_k[3].items[n][0] == by_k[9].items[n][0]
