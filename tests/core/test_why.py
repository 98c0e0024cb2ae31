import math

import pytest

from genrec.core.why import Evidence, Explanation, Query, Why


def _why() -> Why:
    return Why(queries=(Query("red lipstick", 2.5, ("a", "b")), Query("eyeliner", float("-inf"), ("c",))),
               explanations=(Explanation("a", "same brand as X", (Evidence("history_item", "x1"),
                                                                    Evidence("attribute", "Acme", "brand", "a"))),
                             Explanation("c", "you liked eyeliners")),
               profile="likes makeup", filled_by_popularity=1)


def test_round_trip_and_non_finite_scores():
    w = _why()
    d = w.to_dict()
    assert d["queries"][1]["score"] is None  # -inf is not JSON
    back = Why.from_dict(d)
    assert back.queries[0] == w.queries[0]
    assert back.queries[1].score is None
    assert back.explanations == w.explanations
    assert back.profile == "likes makeup" and back.filled_by_popularity == 1


def test_restricted_to_keeps_only_listed_items_and_recounts_fill():
    r = _why().restricted_to(["b", "z"])
    assert [q.items for q in r.queries] == [("b",), ()]
    assert r.explanations == ()
    assert r.filled_by_popularity == 1  # "z" came from no query
    assert r.queries_for("b") == [0] and r.queries_for("z") == []


def test_restricted_without_queries_caps_fill():
    assert Why(filled_by_popularity=5).restricted_to(["a", "b"]).filled_by_popularity == 2


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="why.queries"):
        Why.from_dict({"queries": [{"score": 1}]})
    with pytest.raises(ValueError, match="Evidence.kind"):
        Evidence("rumour", "x")
    with pytest.raises(ValueError, match="filled_by_popularity"):
        Why.from_dict({"filled_by_popularity": "many"})
    assert Why.from_dict(None).is_empty()
    assert not math.isnan(Query("q", 1.0).to_dict()["score"])


def test_as_why_accepts_why_none_and_legacy_dicts_only():
    from genrec.core.why import as_why

    w = _why()
    assert as_why(w) is w
    assert as_why(None).is_empty()
    assert as_why({"queries": [{"query": "q", "score": 1.0, "items": ["a"]}]}).queries[0].items == ("a",)
    with pytest.raises(TypeError, match="Why"):
        as_why("a string")
