"""One process of the DDP tests (tests/training/test_ddp.py), also importable for the
single-process reference. ``python tests/training/ddp_worker.py OUT_DIR CASE...`` with the rank
variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) in the environment trains each case
through the one trainer and writes ``OUT_DIR/<case>_rank<r>.pt`` (the final parameters).

Cases, with dropout off and fixed-size examples, so that the mean loss of a batch of 2B equals
the mean of two batches of B: ``sasrec`` (the real SASRec loss, full softmax), ``gpt2`` (the
real packed LM loss of GPT4Rec on a scratch GPT-2) and ``lora`` (the same under peft LoRA).
Epoch e's batches are ``world`` times smaller than one process's and in the order the trainer
shards them (rank r takes batches r, r + world, ...), so the union of step j's per-rank batches
is the one-process batch j.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

STEPS, BATCH, N = 3, 8, 48  # optimizer steps, one-process batch, examples


def _order(world: int, rng: np.random.Generator) -> list[np.ndarray]:
    perm = rng.permutation(N)
    size = BATCH // world
    return [perm[i:i + size] for i in range(0, N, size)]


def _sgd(net):
    """Plain SGD: parameters move linearly in the gradients. Adam divides by the root of the squared
    gradients, which turns the float noise of a mathematically zero gradient (an attention key's
    bias) into a full-size step, so it could not be compared within a tolerance."""
    return torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)


def _config(world: int, ckpt: str | None):
    from genrec.training import TrainerConfig

    return TrainerConfig(max_epochs=None, max_steps=STEPS, precision=False, device="cpu", seed=0,
                         checkpoint_dir=ckpt, checkpoint_every=STEPS, progress=False, desc=f"ddp-test-{world}")


def run_sasrec(world: int, ckpt: str | None = None) -> dict:
    from genrec.models.baselines.sasrec import SASRec
    from genrec.models.baselines.seqtorch import _SeqModule
    from genrec.training.trainer import Trainer

    rec = SASRec(max_len=8, hidden=16, layers=1, heads=1, dropout=0.0, loss="ce", lr=1e-2, seed=0, progress=False)
    rec.n_items_ = 30
    data = np.random.default_rng(1)
    train = [data.integers(1, 31, size=9) for _ in range(N)]  # all 9 long: 8 predicted positions each

    class Module(_SeqModule):
        def batches(self, epoch, rng):
            return _order(world, rng)

        def optimizer(self, net):
            return _sgd(net)

    net, _ = Trainer(_config(world, ckpt)).fit(Module(rec, train, None, {"case": "sasrec"}))
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _gpt2(lora: bool):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=1, n_head=2,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(cfg)
    if lora:
        from genrec.training.lora import apply_lora

        torch.manual_seed(1)
        model = apply_lora(model, r=4, alpha=8)
        for n, p in model.named_parameters():  # lora_B starts at 0; move it so both factors train
            if "lora_B" in n:
                torch.nn.init.normal_(p, std=0.1)
    return model


def run_lm(world: int, ckpt: str | None = None, lora: bool = False) -> dict:
    from genrec.lm.train import LMModule, TrainConfig
    from genrec.training.trainer import Trainer

    model = _gpt2(lora)
    data = np.random.default_rng(2)
    examples = [(data.integers(3, 64, size=12).tolist(), 8) for _ in range(N)]  # 4 target tokens each
    cfg = TrainConfig(lr=1e-2, batch_size=BATCH, row_len=24, progress=False, seed=0, bf16=False)

    class Module(LMModule):
        def batches(self, epoch, rng):
            return _order(world, rng)

        def optimizer(self, net):
            return _sgd(net)

    net, _ = Trainer(_config(world, ckpt)).fit(Module(model, examples, cfg, pad_id=0))
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


CASES = {"sasrec": run_sasrec, "gpt2": run_lm, "lora": lambda w, c=None: run_lm(w, c, lora=True)}


def main(out: Path, cases: list[str]) -> None:
    from genrec.training import distributed

    torch.set_num_threads(1)
    world, rank = distributed.world_size(), distributed.rank()
    for case in cases:
        ckpt = str(out / f"ckpt_{case}_rank{rank}")  # one folder per rank: the test checks who wrote
        state = CASES[case](world, ckpt)
        torch.save(state, out / f"{case}_rank{rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
    os._exit(0)  # skip interpreter teardown (torch + gloo threads): the results are on disk
