"""Fine-tuning through the one trainer: :class:`genrec.lm.train.LMModule` (packed examples, loss on
the response only, AdamW with linear warm-up) under a :class:`~genrec.training.TrainerConfig` that
adds what long runs here need: a time budget, validation every ``eval_every`` steps, checkpoints
every ``checkpoint_every`` steps (a later fit with the same folder resumes exactly).

Validation is the response loss on a seeded sample of validation cases (teacher-forced, one
forward pass per packed batch: no generation), reported as ``valid = -loss`` so that higher is
better; the best state is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class FitSettings:
    epochs: int
    lr: float
    batch_size: int
    grad_accum: int
    row_len: int
    warmup_ratio: float
    seed: int
    precision: bool | str | None
    device: str | None
    checkpoint_dir: str | None
    checkpoint_every: int
    eval_every: int | None
    time_budget: float | None
    patience: int | None
    progress: bool


def response_loss(net, examples: Sequence[tuple], row_len: int, pad_id: int, batch_size: int = 64) -> float:
    """Mean cross-entropy of the responses (the tokens after each prompt, EOS included)."""
    import torch

    from genrec.lm.train import pack, packed_loss

    if not examples:
        return float("nan")
    device = next(net.parameters()).device
    total, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(examples), batch_size):
            chunk = list(examples[s:s + batch_size])
            ids, pos, lab = pack(chunk, row_len, pad_id, True)
            count = int((lab != -100).sum())
            loss = packed_loss(net, *(torch.from_numpy(a).to(device) for a in (ids, pos, lab)))
            total += float(loss) * count
            n += count
    return total / max(n, 1)


def train(model, examples: list[tuple], valid_examples: list[tuple], s: FitSettings, pad_id: int):
    """Train ``model`` in place; returns the trainer's :class:`~genrec.training.config.FitResult`."""
    from genrec.lm.train import LMModule, TrainConfig
    from genrec.training import TrainerConfig
    from genrec.training.trainer import Trainer

    cfg = TrainConfig(epochs=s.epochs, lr=s.lr, warmup_ratio=s.warmup_ratio, batch_size=s.batch_size,
                      grad_accum=s.grad_accum, row_len=s.row_len, target_only_loss=True, seed=s.seed)
    eval_fn = (lambda net: -response_loss(net, valid_examples, s.row_len, pad_id)) if valid_examples else None
    module = LMModule(model, examples, cfg, pad_id, eval_fn)
    tc = TrainerConfig(max_epochs=s.epochs, patience=s.patience, valid_metric="valid", grad_accum=s.grad_accum,
                       max_grad_norm=1.0, precision=s.precision, device=s.device, seed=s.seed,
                       checkpoint_dir=s.checkpoint_dir, checkpoint_every=s.checkpoint_every,
                       eval_every=s.eval_every, time_budget=s.time_budget, progress=s.progress, desc="genrec-llm")
    _, res = Trainer(tc).fit(module)
    return res


def sample(items: list, n: int | None, seed: int) -> list:
    """``n`` of ``items`` drawn with a local generator (all when ``n`` is None or larger), in order."""
    if n is None or len(items) <= n:
        return list(items)
    rng = np.random.default_rng(seed)
    return [items[i] for i in sorted(rng.choice(len(items), n, replace=False))]
