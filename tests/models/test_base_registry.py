import numpy as np
import pytest

from genrec.data.catalog import Item
from genrec.errors import GenrecError, UnknownNameError
from genrec.models.base import NotFittedError, top_k
from genrec.models.registry import MODELS, create, load_model, model_class


def test_unknown_model_name_lists_known():
    with pytest.raises(UnknownNameError, match="unknown model 'nope'; known models: .*gpt4rec.*sasrec"):
        create("nope")


def test_registry_entries_point_to_classes_with_that_name():
    for name in ("pop", "random"):
        assert model_class(name).name == name
    assert set(MODELS) >= {"pop", "itemknn", "als", "bpr", "content", "sasrec", "bert4rec", "gpt4rec", "genrec-seq2seq"}


def test_bad_params_message():
    with pytest.raises(TypeError, match="bad parameters for model 'random'.*it takes: seed"):
        create("random", nope=1)


def test_top_k_excludes_and_orders():
    s = np.array([[0.1, 0.9, 0.5, 0.7], [1.0, 0.0, 0.2, 0.3]], dtype=np.float32)
    idx, sc = top_k(s.copy(), 2, [np.array([1]), np.array([], dtype=np.int64)])
    assert idx[0].tolist() == [3, 2] and idx[1].tolist() == [0, 3]
    idx, _ = top_k(s.copy(), 10, [np.array([0, 1, 2, 3]), np.array([0])])
    assert idx[0].tolist() == [] and idx[1].tolist() == [3, 2, 1]  # never more than remain


def test_not_fitted_and_unknown_ids(demo_loo, tmp_path):
    with pytest.raises(NotFittedError):
        create("pop").recommend([["a"]])
    m = create("pop").fit(demo_loo)
    recs = m.recommend([["nope", demo_loo.catalog.id_at(0)], []], k=5)
    assert len(recs.items[0]) == 5 and "unknown item id" in recs.notes[0][0]
    assert demo_loo.catalog.id_at(0) not in recs.items[0]
    assert "empty history" in recs.notes[1][0]
    with pytest.raises(TypeError, match="not a string"):
        m.recommend(["abc"])
    m.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert back.recommend([[demo_loo.catalog.id_at(0)]], k=5).items == m.recommend([[demo_loo.catalog.id_at(0)]], k=5).items
    with pytest.raises(GenrecError, match="not a saved genrec model folder"):
        load_model(tmp_path)


def test_cold_items_are_left_out_by_id_models(demo_loo):
    m = create("pop").fit(demo_loo)
    m.catalog = m.catalog.copy()
    m.add_items([Item("NEW", "Brand new thing")])
    recs = m.recommend([[]], k=len(m.catalog))
    assert "NEW" not in recs.items[0] and len(recs.items[0]) == len(m.catalog) - 1


def test_top_k_ties_do_not_depend_on_k():
    s = np.array([[1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0]], dtype=np.float32)
    small, _ = top_k(s.copy(), 3)
    big, _ = top_k(s.copy(), 6)
    assert small[0].tolist() == [5, 0, 1] and big[0].tolist()[:3] == small[0].tolist()
    assert big[0].tolist() == [5, 0, 1, 2, 3, 4]


def test_add_items_does_not_change_the_split(demo_loo):
    n = len(demo_loo.catalog)
    a, b = create("pop").fit(demo_loo), create("pop").fit(demo_loo)
    a.add_items([Item("NEW-A", "thing")])
    assert len(demo_loo.catalog) == n and len(b.catalog) == n and len(a.catalog) == n + 1
    a.add_items([Item("NEW-B", "other")])
    assert len(a.catalog) == n + 2 and "NEW-A" in a.catalog


def test_set_params_sets_known_and_names_unknown():
    import pytest

    from genrec.models.registry import create

    m = create("itemknn")
    assert m.set_params(neighbors=7) is m and m.get_params()["neighbors"] == 7
    with pytest.raises(ValueError, match="'neighbours'"):
        m.set_params(neighbours=7)


def test_recommendations_hold_one_why_per_list_whatever_the_producer_passed():
    from genrec.core.why import Query, Why
    from genrec.models.base import Recommendations

    plain = Recommendations([["a"], ["b"]], [[1.0], [0.5]])
    assert plain.why == [Why(), Why()] and plain.notes == [[], []]
    legacy = Recommendations([["a"], ["b"]], [[1.0], [0.5]],
                             [None, {"queries": [{"query": "q", "score": 2.0, "items": ["b"]}]}])
    assert legacy.why[0] == Why() and legacy.why[1].queries == (Query("q", 2.0, ("b",)),)
    rows = legacy.to_dicts()
    assert rows[1]["why"]["queries"] == [{"query": "q", "score": 2.0, "items": ["b"]}]
    assert rows[0]["why"] == Why().to_dict()
    with pytest.raises(ValueError, match="2 item lists but 1 score lists"):
        Recommendations([["a"], ["b"]], [[1.0]])
    with pytest.raises(TypeError):
        Recommendations([["a"]], [[1.0]], ["a string is not a why"])
