"""The local Hugging Face backend on a tiny scratch GPT-2: generation, continuation scores with
the prompt's KV cache shared (checked against one full forward pass per continuation),
next-token scores over candidates, chat prompts, errors; the SQLite record-replay cache and the
usage account."""

import pytest

torch = pytest.importorskip("torch")

from genrec.llm.cache import LLMCache  # noqa: E402
from genrec.llm.local import HFBackend  # noqa: E402
from genrec.llm.types import CacheMiss, GenParams, LLMBackend  # noqa: E402

PROMPT = "Previously, the customer has bought: Silkora Shampoo, 8 oz. In the future, the customer wants to buy"
CONTS = [" Silkora Shampoo, 8 oz", " BrewMaster Classic Coffee Grinder, 2 oz", " Mug", " Herbalia Conditioner"]


@pytest.fixture(scope="module")
def model_tok(tiny_tok):
    from genrec.lm.scratch import build_model

    torch.set_num_threads(1)
    return build_model("tiny", tiny_tok, n_positions=128, dropout=0.0, seed=5).eval(), tiny_tok


@pytest.fixture()
def backend(model_tok):
    return HFBackend(*model_tok, device="cpu", bf16=False, batch_size=3)


def full_forward_logprob(be, text, cont):
    whole = be.encode(text + cont)
    n = len(be.encode(text))
    return sum(be.token_logprobs(whole)[n:]), len(whole) - n


def test_is_an_llm_backend(backend):
    assert isinstance(backend, LLMBackend)
    d = backend.describe()
    assert d["backend"] == "hf" and d["precision"] == "fp32" and d["device"] == "cpu" and d["cache"] is None


def test_score_shares_the_prompt_and_matches_full_forward(backend):
    scores = backend.score(PROMPT, CONTS)  # batch_size=3: two chunks of continuations
    assert len(scores) == len(CONTS)
    for c, s in zip(CONTS, scores):
        ref, n = full_forward_logprob(backend, PROMPT, c)
        assert s.tokens == n and s.logprob == pytest.approx(ref, abs=1e-4)
        assert s.mean == pytest.approx(s.logprob / s.tokens)
    # a trailing space of the prompt moves to the continuation (lm-evaluation-harness)
    spaced = backend.score(PROMPT + " ", [c.lstrip() for c in CONTS])
    assert [s.logprob for s in spaced] == pytest.approx([s.logprob for s in scores], abs=1e-4)
    with pytest.raises(ValueError, match="empty continuation"):
        backend.score(PROMPT, ["x", ""])


def test_next_token_scores_are_log_softmax_at_the_candidates(backend):
    prompts = [PROMPT, "Previously", [1, 2, 3]]
    out = backend.next_token_scores(prompts, ["A", "B", ","])
    lp, _ = backend.next_token_logprobs(prompts)
    ids = backend.candidate_ids(["A", "B", ","])
    assert torch.allclose(torch.tensor(out), lp[:, ids], atol=1e-6)
    for row in out:
        assert all(v < 0 for v in row)
    # batched (left-padded) equals one at a time
    single = [backend.next_token_scores([p], ["A", "B", ","])[0] for p in prompts]
    assert torch.allclose(torch.tensor(out), torch.tensor(single), atol=1e-4)
    assert backend.next_token_scores(prompts, ids) == out  # token ids as candidates
    with pytest.raises(ValueError, match="outside the vocabulary"):
        backend.next_token_scores([PROMPT], [10 ** 6])
    with pytest.raises(ValueError, match="one token"):
        backend.next_token_scores([PROMPT], ["Silkora Shampoo"])
    with pytest.raises(ValueError, match="distinct"):
        backend.next_token_scores([PROMPT], ["A", "A"])


def test_generation_greedy_beam_sample_stop_and_chat(backend):
    greedy = backend.generate([PROMPT, "Previously"], GenParams(max_new_tokens=6))
    assert [len(g) for g in greedy] == [1, 1] and greedy[0][0].tokens == 6
    assert greedy[0][0].finish_reason in ("length", "stop") and isinstance(greedy[0][0].score, float)
    beams = backend.generate([PROMPT], GenParams(max_new_tokens=6, num_beams=4, n=3))[0]
    assert len(beams) == 3 and [b.score for b in beams] == sorted((b.score for b in beams), reverse=True)
    s1 = backend.generate([PROMPT], GenParams(max_new_tokens=6, temperature=1.0, n=2, seed=3))
    s2 = backend.generate([PROMPT], GenParams(max_new_tokens=6, temperature=1.0, n=2, seed=3))
    assert s1 == s2 and len(s1[0]) == 2
    text = greedy[0][0].text
    stop = text.strip()[1:3]
    cut = backend.generate([PROMPT], GenParams(max_new_tokens=6, stop=[stop]))[0][0]
    assert cut.text == text[:text.find(stop)] and cut.finish_reason == "stop"
    chat = [{"role": "system", "content": "You recommend."}, {"role": "user", "content": "Shampoo?"}]
    assert backend.render_chat(chat) == "system: You recommend.\nuser: Shampoo?\nassistant:"
    assert backend.generate([chat], GenParams(max_new_tokens=4)) == \
        backend.generate([backend.render_chat(chat)], GenParams(max_new_tokens=4))
    with pytest.raises(TypeError, match="a prompt is"):
        backend.generate([3.5])
    with pytest.raises(ValueError, match="temperature"):
        GenParams(temperature=-1)


def test_record_then_replay_without_the_model(model_tok, tmp_path):
    path = tmp_path / "calls.sqlite"
    with pytest.raises(CacheMiss, match="does not exist"):
        LLMCache(path, mode="replay")
    rec = HFBackend(*model_tok, device="cpu", bf16=False, cache=LLMCache(path, mode="record"))
    g = rec.generate([PROMPT, "Previously"], GenParams(max_new_tokens=5))
    s = rec.score(PROMPT, CONTS)
    n = rec.next_token_scores([PROMPT], ["A", "B"])
    assert rec.usage().calls == 4 and rec.usage().cached_calls == 0 and len(rec.cache) == 4
    assert rec.describe()["cache"] == {"mode": "record", "path": str(path)}
    # same call again: answered by the cache, counted as saved work
    assert rec.generate([PROMPT, "Previously"], GenParams(max_new_tokens=5)) == g
    assert rec.usage().cached_calls == 2 and rec.usage().saved_tokens_in > 0

    class Broken:  # replay must not touch the model: any attribute access on it fails
        def __getattr__(self, name):
            raise AssertionError(f"the model was used ({name})")

    model, tok = model_tok
    rep = HFBackend(model, tok, device="cpu", bf16=False, cache=LLMCache(path, mode="replay-only"))
    rep._fingerprint = rec._fingerprint
    rep.model = Broken()
    assert rep.generate([PROMPT, "Previously"], GenParams(max_new_tokens=5)) == g
    assert rep.score(PROMPT, CONTS) == s and rep.next_token_scores([PROMPT], ["A", "B"]) == n
    assert rep.usage().calls == 0 and rep.usage().cached_calls == 4
    with pytest.raises(CacheMiss, match="never recorded"):
        rep.generate([PROMPT], GenParams(max_new_tokens=6))  # other parameters: another key


def test_a_retrained_model_does_not_replay_the_old_answers(model_tok, tmp_path):
    import copy

    model, tok = model_tok
    cache = LLMCache(tmp_path / "c.sqlite")
    a = HFBackend(model, tok, device="cpu", bf16=False, cache=cache)
    a.score(PROMPT, CONTS[:1])
    changed = copy.deepcopy(model)
    with torch.no_grad():
        next(changed.parameters()).add_(0.01)
    b = HFBackend(changed, tok, device="cpu", bf16=False, cache=cache)
    b.score(PROMPT, CONTS[:1])
    assert b.usage().calls == 1 and b.usage().cached_calls == 0 and len(cache) == 2
