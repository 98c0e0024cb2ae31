"""Constrained decoding over a trie of catalog titles: every greedy and beam output is a title
(while unconstrained outputs are not all titles), the constraint is part of the cache key, and
the HTTP backend refuses it."""

import pytest

torch = pytest.importorskip("torch")

from genrec.llm.cache import LLMCache  # noqa: E402
from genrec.llm.constrained import TokenTrie  # noqa: E402
from genrec.llm.local import HFBackend  # noqa: E402
from genrec.llm.types import GenParams, UnsupportedOperation  # noqa: E402

from . import gpt4rec_golden as G  # noqa: E402


def test_trie_allows_only_continuations_of_its_sequences():
    t = TokenTrie([[1, 2, 3], [1, 2], [4], [], [1, 2]], eos_id=0)
    assert len(t) == 3 and [1, 2] in t and [1, 2, 3] in t and [1] not in t
    assert sorted(t.allowed([])) == [1, 4]
    assert sorted(t.allowed([1, 2])) == [0, 3]  # a title that is a prefix of another can end here
    assert t.allowed([1, 2, 3]) == [0] and t.allowed([9]) == [0] and t.allowed([4, 0, 0]) == [0]
    assert TokenTrie([[4], [1, 2, 3], [1, 2]], eos_id=0).fingerprint == t.fingerprint
    with pytest.raises(ValueError):
        TokenTrie([[]], eos_id=0)


def test_every_constrained_output_is_a_catalog_title(trained_tiny, tmp_path):
    catalog, model, tok, builder = trained_tiny
    titles = builder.titles_ids(catalog.titles[:40])
    trie = TokenTrie(titles, tok.eos_token_id)
    valid = {tok.decode(t) for t in titles}
    be = HFBackend(model, tok, device="cpu", bf16=False, cache=LLMCache(tmp_path / "c.sqlite"))
    prompts = G.prompts(builder, catalog.titles)
    beam = GenParams(max_new_tokens=14, num_beams=4, n=4)
    for params in (beam, GenParams(max_new_tokens=14)):
        out = be.generate(prompts, params, constraint=trie)
        texts = [g.text for row in out for g in row]
        assert len(texts) == len(prompts) * params.n and set(texts) <= valid
        assert all(g.finish_reason == "stop" for row in out for g in row)
    free = [g.text for row in be.generate(prompts, beam) for g in row]
    assert not set(free) <= valid  # the tiny model does invent titles without the constraint
    # the constraint is part of the cache key: the free and constrained answers do not mix
    assert be.generate(prompts, beam, constraint=trie) != be.generate(prompts, beam)
    with pytest.raises(ValueError, match="not branch"):
        be.generate(prompts[:1], GenParams(max_new_tokens=4, n=2, decoding="branch"), constraint=trie)


def test_http_backend_refuses_constraints():
    from genrec.llm.http import OpenAIBackend

    be = OpenAIBackend("http://127.0.0.1:9/v1", "m", max_retries=0)
    with pytest.raises(UnsupportedOperation, match="constrained decoding is a capability of the local backend"):
        be.generate(["x"], GenParams(), constraint=TokenTrie([[1]], eos_id=0))
