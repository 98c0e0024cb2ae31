"""GPT4Rec with a pre-trained-style LM (a tiny Llama saved to a folder, loaded as any HF model is)
and the adaptation levers: keep_layers, LoRA, short prompts."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from genrec.models.gpt4rec import GPT4Rec  # noqa: E402
from genrec.models.registry import load_model  # noqa: E402


@pytest.fixture(scope="module")
def llama_dir(demo_user, tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    from genrec.lm.scratch import train_tokenizer
    from genrec.prompts import gpt4rec_template

    tok = train_tokenizer(demo_user.catalog.titles + [gpt4rec_template().words()] * 20, vocab_size=1024)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    folder = tmp_path_factory.mktemp("pre-llama")
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def fitted(demo_user, llama_dir):
    torch.set_num_threads(1)
    m = GPT4Rec(lm=str(llama_dir), keep_layers=2, keep_last=1, lora_r=4, lora_targets="all-linear", max_history=3,
                num_queries=3, epochs=1, lr=1e-2, batch_size=32, max_new_tokens=8, valid_users=4, valid_k=6,
                max_prompt_tokens=96, max_title_tokens=12, progress=False, seed=0)
    return m.fit(demo_user)


def test_fit_with_levers_trains_adapters_then_merges(fitted):
    info = fitted.adapt_info_
    assert info["keep_layers"] == 2 and info["keep_last"] == 1 and info["layers_loaded"] == 3 and info["lora"]["r"] == 4
    assert 0 < info["trainable_parameters"] < info["parameters"]
    assert not hasattr(fitted._model, "peft_config")  # merged: a plain model
    assert fitted._model.config.num_hidden_layers == 2
    assert len(fitted.train_history_) == 1 and fitted.fit_info_["scratch"] is False


def test_short_prompts_keep_the_last_titles(fitted, demo_user):
    b = fitted._builder
    hist = [fitted._title_ids[i] for i in range(6)]
    ids = b.prompt_ids(hist)
    body = ids[len(b.prefix_ids):len(ids) - len(b.suffix_ids)]
    want = [t for h in hist[-3:] for t in list(h) + b.sep_ids]
    assert body == want


def test_recommends_and_save_load_is_identical(fitted, demo_user, tmp_path):
    hist = [list(c.history) for c in demo_user.test[:3]]
    before = fitted.recommend(hist, k=6)
    assert all(len(r) == 6 for r in before.items)
    loaded = load_model(fitted.save(tmp_path / "m"))
    assert loaded.max_history == 3 and loaded._model.config.num_hidden_layers == 2
    after = loaded.recommend(hist, k=6)
    assert after.items == before.items
    assert [[q.text for q in w.queries] for w in after.why] == [[q.text for q in w.queries] for w in before.why]


def test_levers_on_a_scratch_lm_fail_clearly(demo_user):
    with pytest.raises(ValueError, match="keep_layers and lora_r apply to a pre-trained lm"):
        GPT4Rec(lm="tiny", lora_r=4, epochs=0, progress=False).fit(demo_user)
