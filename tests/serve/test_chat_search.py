"""The chat's fusion of ranked lists and its score normalisation (pure functions)."""

import pytest

from genrec.serve.chat_search import Ranked, fuse, normalise


def test_normalise_per_source():
    assert normalise("bm25", [8.0, 4.0, 2.0]) == [1.0, 0.5, 0.25]
    assert normalise("embedding", [0.7, 0.5, 0.3]) == pytest.approx([1.0, 0.5, 0.0])
    assert normalise("embedding", [0.4, 0.4]) == [1.0, 1.0]
    assert normalise("collaborative", [0.0] * 4) == [1.0, 0.75, 0.5, 0.25]
    assert normalise("bm25", []) == []


def test_a_full_text_match_beats_a_half_match_the_model_likes():
    text = Ranked("bm25", 1.0, ("lavender-shampoo", "vegan-shampoo"), tuple(normalise("bm25", [6.0, 3.0])), 0)
    cf = Ranked("collaborative", 0.25, ("vegan-shampoo", "mug"), tuple(normalise("collaborative", [0, 0])))
    got = fuse([text, cf])
    assert [i for i, _ in got] == ["lavender-shampoo", "vegan-shampoo", "mug"]
    assert dict(got)["vegan-shampoo"] == pytest.approx(0.5 + 0.25)
    # With the model weighted as much as the text, its favourite wins: the weight is the design.
    assert fuse([text, Ranked("collaborative", 1.0, cf.items, cf.scores)])[0][0] == "vegan-shampoo"


def test_ties_keep_the_order_items_were_first_met():
    a = Ranked("bm25", 1.0, ("x", "y"), (1.0, 1.0), 0)
    assert [i for i, _ in fuse([a])] == ["x", "y"]
