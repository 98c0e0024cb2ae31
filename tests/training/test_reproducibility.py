"""Issue 17 item 2: fitting the same model twice in one process gives identical per-case ranks,
for every torch model, even when the global generators are used in between (the bf16 probe used
to draw from torch's global generator after a model had seeded it)."""

from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from genrec.eval.evaluate import evaluate  # noqa: E402


def _disturb_global_generators() -> None:
    from genrec.torch_utils import bf16_matmul_speedup

    torch.randn(5)
    np.random.rand(3)
    random.random()
    bf16_matmul_speedup(n=64, reps=1)


def _ranks(model, split) -> list:
    rep = evaluate(model, split, ks=(10,), progress=False)
    return [c["rank"] for c in rep.per_case]


def _twice(make, split) -> tuple[list, list, dict]:
    torch.set_num_threads(1)
    first = make().fit(split)
    a = _ranks(first, split)
    _disturb_global_generators()
    second = make().fit(split)
    return a, _ranks(second, split), second.fit_info_


SEQ = dict(hidden=16, max_len=10, threads=1, progress=False, seed=0, epochs=2, batch_size=64, valid_users=50)


@pytest.mark.parametrize("name", ["sasrec", "bert4rec"])
def test_seq_models_fit_twice_identically(name, demo_loo):
    from genrec.models.registry import create

    a, b, info = _twice(lambda: create(name, **SEQ), demo_loo)
    assert a == b and len(a) == len(demo_loo.test)
    assert {"epochs_run", "best_epoch", "stop_reason", "precision", "steps", "train_seconds"} <= set(info)


def test_seq2seq_fits_twice_identically(demo_loo):
    from genrec.models.seq2seq import GenRecSeq2Seq

    a, b, info = _twice(lambda: GenRecSeq2Seq(pretrain_epochs=1, finetune_epochs=1, d_model=16, heads=2,
                                              batch_size=128, max_len=8, valid_users=50, threads=1,
                                              progress=False), demo_loo)
    assert a == b and info["stop_reason"] == "max_epochs"


def test_gpt4rec_lm_fits_twice_identically(demo_user):
    from genrec.models.gpt4rec import GPT4Rec

    def make():
        return GPT4Rec(lm="tiny", num_queries=2, epochs=1, batch_size=32, max_new_tokens=8, valid_users=4,
                       valid_k=8, vocab_size=512, max_prompt_tokens=64, max_title_tokens=12, tune_bm25=False,
                       progress=False, seed=0)

    split = demo_user
    torch.set_num_threads(1)
    first = make().fit(split)
    w1 = {k: v.clone() for k, v in first._model.state_dict().items()}
    cases = [list(c.history) for c in split.test[:6]]
    r1 = first.recommend(cases, k=10).items
    _disturb_global_generators()
    second = make().fit(split)
    assert all(torch.equal(w1[k], v) for k, v in second._model.state_dict().items())
    assert second.recommend(cases, k=10).items == r1
    assert second.fit_info_["stop_reason"] == "max_epochs" and second.fit_info_["steps"] >= 1
