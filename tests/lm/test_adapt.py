"""genrec.lm.adapt: the levers for adapting a pre-trained LM, on tiny Llama and GPT-2 models
built from configs and saved to folders (the same path a downloaded model takes)."""

# ruff: noqa: E402
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from genrec.lm.adapt import (LoraSpec, adapt_info, cut_title_ids, decoder_layers_path, finish, keep_first_layers,
                             last_items, num_layers, pack_examples, prepare_pretrained)


def _save(model, tok, folder):
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def llama_folder(tiny_tok, tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tiny_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      eos_token_id=tiny_tok.eos_token_id, bos_token_id=tiny_tok.eos_token_id,
                      pad_token_id=tiny_tok.pad_token_id, tie_word_embeddings=True)
    return _save(LlamaForCausalLM(cfg), tiny_tok, tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def gpt2_folder(tiny_tok, tmp_path_factory):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tiny_tok), n_positions=256, n_embd=32, n_layer=3, n_head=4,
                     eos_token_id=tiny_tok.eos_token_id, bos_token_id=tiny_tok.eos_token_id)
    return _save(GPT2LMHeadModel(cfg), tiny_tok, tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.mark.parametrize("which,last", [("llama_folder", 0), ("gpt2_folder", 0), ("llama_folder", 1)])
def test_keep_layers_keeps_the_first_blocks_and_round_trips(which, last, request, tmp_path):
    from genrec.lm.load import load_causal_lm

    folder = request.getfixturevalue(which)
    full, _ = load_causal_lm(folder)
    cut, tok = prepare_pretrained(folder, keep_layers=2, keep_last=last)
    assert num_layers(cut) == 2 and num_layers(full) == 3
    blocks_full = full.get_submodule(decoder_layers_path(full))
    blocks_cut = cut.get_submodule(decoder_layers_path(cut))
    assert len(blocks_cut) == 2
    kept = [blocks_full[0], blocks_full[2 if last else 1]]  # the first block, then the second or the last
    for a, b in zip(kept, blocks_cut):
        for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
            assert na == nb and torch.equal(pa, pb)
    ids = torch.tensor([tok("lamp desk chair")["input_ids"]])
    cut.eval()
    with torch.no_grad():
        out_cut, out_full = cut(ids).logits, full(ids).logits
    assert out_cut.shape == out_full.shape == (1, ids.shape[1], len(tok))
    assert not torch.allclose(out_cut, out_full)  # a block was really dropped
    idx = [m.layer_idx for blk in blocks_cut for m in blk.modules() if isinstance(getattr(m, "layer_idx", None), int)]
    assert sorted(set(idx)) == [0, 1]
    gen = cut.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)  # KV cache slots 0, 1
    assert gen.shape == (1, ids.shape[1] + 3)
    _save(cut, tok, tmp_path / "m")
    again, _ = load_causal_lm(tmp_path / "m")
    assert num_layers(again) == 2
    with torch.no_grad():
        assert torch.allclose(again(ids).logits, out_cut, atol=1e-5)
    with pytest.raises(ValueError, match="keep_layers must be an integer in 1..3"):
        keep_first_layers(full, 4)


@pytest.mark.parametrize("which", ["llama_folder", "gpt2_folder"])
def test_lora_trains_only_the_adapters_and_merges(which, request, tiny_tok):
    from genrec.lm.train import TrainConfig, train_lm

    model, tok = prepare_pretrained(request.getfixturevalue(which), keep_layers=2, lora=LoraSpec(r=4, alpha=8),
                                    precision="fp32")
    info = adapt_info(model)
    assert info["keep_layers"] == 2 and info["lora"]["r"] == 4 and info["precision"] == "fp32"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert 0 < info["trainable_parameters"] < info["parameters"] / 5
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = tok(" lamp desk chair lamp")["input_ids"]
    examples = [(ids + [tok.eos_token_id], 2)] * 8
    train_lm(model, examples, TrainConfig(epochs=2, lr=5e-2, batch_size=4, row_len=64, bf16=False, progress=False),
             pad_id=tok.pad_token_id)
    for n, p in model.named_parameters():
        changed = not torch.equal(before[n], p.detach())
        assert changed == ("lora_B" in n or "lora_A" in n), n  # base weights frozen; adapters moved
    merged = finish(model)
    assert not hasattr(merged, "peft_config") and adapt_info(merged)["keep_layers"] == 2
    x = torch.tensor([ids])
    with torch.no_grad():
        assert torch.allclose(merged(x).logits, model(x).logits, atol=1e-4)


@pytest.mark.parametrize("which", ["llama_folder", "gpt2_folder"])
def test_packing_labels_and_block_diagonal_attention(which, request):
    model, tok = prepare_pretrained(request.getfixturevalue(which))
    model.eval()
    a = tok(" lamp desk")["input_ids"] + [tok.eos_token_id]
    b = tok(" red blue mug chair")["input_ids"] + [tok.eos_token_id]
    batch = pack_examples([(a, 1), (b, 2)], row_len=64, pad_id=tok.pad_token_id)
    ids, pos, lab = batch["input_ids"], batch["position_ids"], batch["labels"]
    assert ids.shape == (1, len(a) + len(b))  # one row: both fit
    (first, p1), (second, p2) = sorted([(a, 1), (b, 2)], key=lambda e: -len(e[0]))  # first-fit decreasing
    n1 = len(first)
    assert ids[0].tolist() == first + second
    assert pos[0].tolist() == list(range(n1)) + list(range(len(second)))
    want = [-100] * (n1 + len(second))  # shifted: the token at t + 1 is predicted at t, targets only
    want[p1 - 1:n1 - 1] = first[p1:]
    want[n1 + p2 - 1:n1 + len(second) - 1] = second[p2:]
    assert lab[0].tolist() == want
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=pos, attention_mask=None, use_cache=False).logits[0]
        alone1 = model(input_ids=torch.tensor([first])).logits[0]
        alone2 = model(input_ids=torch.tensor([second])).logits[0]
    # masked: the second example's logits do not see the first example
    assert torch.allclose(packed[:n1], alone1, atol=1e-4)
    assert torch.allclose(packed[n1:], alone2, atol=1e-4)


def test_short_prompt_helpers(tiny_tok):
    assert last_items([1, 2, 3, 4], 2) == [3, 4] and last_items([1, 2], None) == [1, 2]
    cut = cut_title_ids(tiny_tok, ["a very long title about lamps and desks", "mug"], 3)
    assert [len(c) for c in cut][0] == 3 and len(cut[1]) <= 3
    with pytest.raises(ValueError):
        LoraSpec(r=0)
