"""Packed training: packing is exact, loss goes down, interrupted training resumes exactly."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from genrec.prompts.tokens import PromptBuilder  # noqa: E402
from genrec.lm.scratch import build_model  # noqa: E402
from genrec.lm.train import TrainConfig, build_examples, pack, train_lm  # noqa: E402
from genrec.training.checkpoint import BEST_FILE, CHECKPOINT_FILE  # noqa: E402


@pytest.fixture(scope="module")
def examples(tiny_tok, demo_small):
    torch.set_num_threads(1)  # the test machine is shared; one thread is faster under contention
    b = PromptBuilder(tiny_tok, max_title_tokens=16, max_prompt_tokens=80)
    tid = dict(zip(demo_small.catalog.ids, b.titles_ids(demo_small.catalog.titles)))
    seqs = [[tid[i] for i in s] for s in list(demo_small.sequences.items.values())[:24]]
    return build_examples(b, seqs, augment_prefixes=False)


def test_build_examples_last_item_or_every_prefix(tiny_tok):
    b = PromptBuilder(tiny_tok)
    seq = b.titles_ids(["Shampoo", "Conditioner", "Hair Mask"])
    last = build_examples(b, [seq])
    every = build_examples(b, [seq], augment_prefixes=True)
    assert len(last) == 1 and len(every) == 2
    assert tiny_tok.decode(last[0][0][last[0][1]:-1]) == " Hair Mask"
    assert build_examples(b, [seq[:1]]) == []


def test_template_words_can_be_left_out_of_the_loss(tiny_tok):
    b = PromptBuilder(tiny_tok)
    seq = b.titles_ids(["Shampoo", "Conditioner", "Hair Mask"])
    (x, p, spans), = build_examples(b, [seq], template_loss=False)
    assert spans == [(0, len(b.prefix_ids)), (p - len(b.suffix_ids), p)]
    _, _, full = pack([(x, p)], 128, tiny_tok.eos_token_id, target_only=False)
    _, _, titles = pack([(x, p, spans)], 128, tiny_tok.eos_token_id, target_only=False)
    kept = [int(t) for t in titles[0] if t != -100]
    # exactly the titles, separators and EOS are predicted; no prefix or suffix token is
    expected = [t for j, t in enumerate(x) if j >= len(b.prefix_ids) and not p - len(b.suffix_ids) <= j < p]
    assert kept == expected
    assert tiny_tok.decode(kept).replace(" ", "").startswith("Shampoo.Conditioner.HairMask")
    assert (full[0] != -100).sum() == len(x) - 1


def test_packed_rows_equal_unpacked_forward(tiny_tok, examples):
    model = build_model("tiny", tiny_tok, n_positions=128).eval()
    ids, pos, lab = pack(examples[:6], 256, tiny_tok.eos_token_id)
    assert ids.shape[0] < 6  # several examples share a row
    x, p = examples[0]
    r, c = next((r, c) for r in range(ids.shape[0]) for c in range(ids.shape[1] - len(x) + 1)
                if pos[r, c] == 0 and ids[r, c:c + len(x)].tolist() == x)
    # labels: the target title tokens + EOS, shifted by one, nothing else
    assert lab[r, c + p - 1:c + len(x) - 1].tolist() == x[p:]
    assert (lab[r, c:c + p - 1] == -100).all()
    with torch.no_grad():
        packed = model.base_model(input_ids=torch.tensor(ids), position_ids=torch.tensor(pos),
                                  attention_mask=None, use_cache=False).last_hidden_state[r, c:c + len(x)]
        alone = model.base_model(input_ids=torch.tensor([x])).last_hidden_state[0]
    torch.testing.assert_close(packed, alone, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError):
        pack([([1] * 200, 5)], 128, 0)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_loss_decreases_and_interrupted_training_resumes_exactly(tiny_tok, examples, tmp_path):
    cfg = dict(epochs=2, lr=3e-3, batch_size=8, row_len=128, seed=1, progress=False)
    a = build_model("tiny", tiny_tok, n_positions=128, seed=5)
    res = train_lm(a, examples, TrainConfig(**cfg), pad_id=tiny_tok.eos_token_id, device="cpu")
    assert res.steps == 2 * int(np.ceil(len(examples) / 8))
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    # interrupted after 2 steps (mid-epoch), then resumed from the checkpoint in a fresh model
    b = build_model("tiny", tiny_tok, n_positions=128, seed=5)
    part = train_lm(b, examples, TrainConfig(**cfg, checkpoint_dir=str(tmp_path), max_steps=2),
                    pad_id=tiny_tok.eos_token_id, device="cpu")
    assert part.stop_reason == "max_steps" and part.steps == 2 and (tmp_path / CHECKPOINT_FILE).is_file()
    c = build_model("tiny", tiny_tok, n_positions=128, seed=99)  # different init: all state comes from disk
    done = train_lm(c, examples, TrainConfig(**cfg, checkpoint_dir=str(tmp_path)),
                    pad_id=tiny_tok.eos_token_id, device="cpu")
    assert done.steps == res.steps
    sa, sc = _state(a), _state(c)
    for k in sa:
        torch.testing.assert_close(sa[k], sc[k], atol=1e-6, rtol=1e-5)


def test_best_epoch_is_kept_and_checkpointed_in_a_new_folder(tiny_tok, examples, tmp_path):
    model = build_model("tiny", tiny_tok, n_positions=128, seed=0)
    scores = iter([0.5, 0.9, 0.1])
    snapshots = []

    def eval_fn(m):
        snapshots.append(_state(m))
        return next(scores)

    folder = tmp_path / "not" / "yet" / "there"
    res = train_lm(model, examples, TrainConfig(epochs=3, lr=3e-3, batch_size=12, row_len=128, progress=False,
                                                checkpoint_dir=str(folder)),
                   pad_id=tiny_tok.eos_token_id, device="cpu", eval_fn=eval_fn)
    assert res.best_epoch == 2 and [h["valid"] for h in res.history] == [0.5, 0.9, 0.1]
    final = _state(model)
    best = torch.load(folder / BEST_FILE, weights_only=True)
    for k in final:
        torch.testing.assert_close(final[k], snapshots[1][k])
        torch.testing.assert_close(best[k], snapshots[1][k])


def test_bf16_auto_only_where_it_pays(monkeypatch):
    from genrec.torch_utils import BF16_MIN_SPEEDUP, bf16_matmul_speedup, bf16_pays, cpu_has_fast_bf16, resolve_bf16

    assert resolve_bf16(False, "cpu") is False and resolve_bf16(True, "cpu") is True
    assert resolve_bf16("auto", "cuda") is True and resolve_bf16(None, torch.device("cuda:1")) is True
    assert resolve_bf16("auto", "mps") is False

    def never():
        raise AssertionError("the flags decide; no probe")

    assert bf16_pays({"avx2", "amx_bf16", "avx512_bf16"}, never) is True
    assert bf16_pays({"avx2", "fma"}, never) is False
    assert bf16_pays({"avx512_bf16"}, lambda: BF16_MIN_SPEEDUP + 0.5) is True
    assert bf16_pays({"avx512_bf16"}, lambda: 0.5) is False
    speedup = bf16_matmul_speedup(n=256, reps=1)  # the real probe runs on any CPU
    assert 0 < speedup < 1000
    for value, expected in (("1", True), ("0", False)):
        monkeypatch.setenv("GENREC_BF16", value)
        cpu_has_fast_bf16.cache_clear()
        try:
            assert resolve_bf16("auto", "cpu") is expected
        finally:
            cpu_has_fast_bf16.cache_clear()
