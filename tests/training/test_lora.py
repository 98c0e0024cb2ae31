"""LoRA through the one trainer, on a tiny scratch GPT-2 (real peft, real training)."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("transformers")

from genrec.prompts.tokens import PromptBuilder  # noqa: E402
from genrec.lm.scratch import build_model  # noqa: E402
from genrec.lm.train import TrainConfig, build_examples, train_lm  # noqa: E402
from genrec.training.lora import apply_lora, merge_lora, trainable_fraction  # noqa: E402


@pytest.fixture(scope="module")
def tiny_tok(demo_small):
    from genrec.lm.scratch import train_tokenizer
    from genrec.prompts import gpt4rec_template

    return train_tokenizer(demo_small.catalog.titles + [gpt4rec_template().words()] * 20, vocab_size=1024)


def test_lora_trains_only_the_adapter_through_the_trainer(tiny_tok, demo_small, tmp_path):
    torch.set_num_threads(1)
    b = PromptBuilder(tiny_tok, max_title_tokens=16, max_prompt_tokens=80)
    tid = dict(zip(demo_small.catalog.ids, b.titles_ids(demo_small.catalog.titles)))
    seqs = [[tid[i] for i in s] for s in list(demo_small.sequences.items.values())[:32]]
    examples = build_examples(b, seqs)
    base = build_model("tiny", tiny_tok, n_positions=128, seed=0)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    model = apply_lora(base, r=4, alpha=8)
    assert 0 < trainable_fraction(model) < 0.1
    assert all("lora_" in n for n, p in model.named_parameters() if p.requires_grad)
    cfg = TrainConfig(epochs=3, lr=1e-2, batch_size=8, row_len=128, progress=False, seed=0,
                      checkpoint_dir=str(tmp_path))
    res = train_lm(model, examples, cfg, pad_id=tiny_tok.eos_token_id, device="cpu")
    assert res.steps == 3 * 4 and res.history[-1]["loss"] < res.history[0]["loss"]
    after = model.state_dict()
    lora_b = [k for k in after if "lora_B" in k]
    assert lora_b and all(after[k].abs().sum() > 0 for k in lora_b)  # B starts at zero: it trained
    frozen = [k for k in after if "base_layer" in k or k.endswith("wte.weight")]
    assert frozen
    for k in frozen:  # the base weights did not move
        orig = k.replace("base_model.model.", "").replace(".base_layer", "")
        assert torch.equal(after[k], before[orig]), k
    # merged: a plain GPT-2 again, with the same outputs as base + adapter
    x = torch.tensor([examples[0][0]])
    model.eval()
    with torch.no_grad():
        want = model(input_ids=x).logits
        merged = merge_lora(model)
        got = merged(input_ids=x).logits
    assert not any("lora_" in k for k in merged.state_dict())
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_lora_checkpoint_holds_the_adapter_only_and_resumes_exactly(tiny_tok, demo_small, tmp_path):
    """A LoRA run's checkpoint keeps the trainable weights (not the frozen base), and a run stopped
    by max_steps and resumed ends with the same adapter as an uninterrupted one."""
    from genrec.training.checkpoint import CHECKPOINT_FILE, load

    torch.set_num_threads(1)
    b = PromptBuilder(tiny_tok, max_title_tokens=16, max_prompt_tokens=80)
    tid = dict(zip(demo_small.catalog.ids, b.titles_ids(demo_small.catalog.titles)))
    examples = build_examples(b, [[tid[i] for i in s] for s in list(demo_small.sequences.items.values())[:32]])

    def run(folder, **kw):
        model = apply_lora(build_model("tiny", tiny_tok, n_positions=128, seed=0), r=4, alpha=8)
        cfg = TrainConfig(epochs=2, lr=1e-2, batch_size=8, row_len=128, progress=False, seed=0, bf16=False,
                          checkpoint_dir=folder, **kw)
        return model, train_lm(model, examples, cfg, pad_id=tiny_tok.eos_token_id, device="cpu")

    straight, r1 = run(None)
    _, part = run(str(tmp_path), max_steps=3)
    assert part.steps == 3
    saved = load(tmp_path / CHECKPOINT_FILE)["model"]
    trainable = {n for n, p in straight.named_parameters() if p.requires_grad}
    assert trainable <= set(saved)
    assert not any("base_layer" in k or k.endswith("wte.weight") for k in saved)  # no frozen base weights
    resumed, r2 = run(str(tmp_path))
    assert r2.steps == r1.steps == 8
    a, b2 = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b2[k]) for k in a), "resumed LoRA run differs from the straight one"
