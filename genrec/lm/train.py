"""Fine-tuning GPT4Rec's language model through :class:`genrec.training.trainer.Trainer`:
packed (padding-free) batches, AdamW with linear warm-up, loss on the target title only (option);
the trainer gives precision, gradient accumulation, exact resume and best-epoch selection.

Packing: each batch of examples is packed first-fit-decreasing into rows of ``row_len`` tokens;
``position_ids`` restart at 0 for every example and ``attention_mask`` is left ``None``, so
transformers builds a block-diagonal causal mask (its packed-sequence detection) and no example
attends to another. Only the tail of each row is padding. With ``target_only_loss`` the LM head
(the largest matmul of a small model: vocab x dim per token) runs on the target positions only.
We use genrec's trainer rather than ``transformers.Trainer`` for these two savings, exact resume
mid-epoch and the recommendation-metric validation; benchmarks/gpt4rec_speed.py compares the two.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from genrec.training.module import TrainableModule

if TYPE_CHECKING:  # pragma: no cover
    from genrec.training import TrainerConfig

# (prompt + target + EOS ids, prompt length[, spans of tokens never predicted: the prompt's fixed words])
Example = tuple


@dataclass
class TrainConfig:
    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    batch_size: int = 64          # examples per micro-batch (packed into rows)
    grad_accum: int = 1           # micro-batches per optimizer step
    row_len: int = 256            # tokens per packed row (<= the model's context)
    target_only_loss: bool = True
    max_grad_norm: float = 1.0
    bf16: bool | str = "auto"    # True, False or "auto" (CUDA, or a CPU where bf16 beats fp32)
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0     # optimizer steps between checkpoints (0: at each epoch end only)
    max_steps: int | None = None  # stop (with a checkpoint) after this many optimizer steps in total
    time_budget: float | None = None  # stop (validated, with a checkpoint) after this many seconds
    patience: int | None = None   # stop when validation has not improved for this many epochs
    progress: bool = True


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None
    steps: int = 0
    stopped_early: bool = False   # stopped before the last epoch (early stopping, max_steps, time)
    seconds: float = 0.0
    tokens_per_s: float = 0.0
    stop_reason: str = "max_epochs"
    fit_info: dict = field(default_factory=dict)  # the trainer's fit_info() contract


def build_examples(builder, sequences: Sequence[Sequence[Sequence[int]]], *, augment_prefixes: bool = False,
                   template_loss: bool = True) -> list[Example]:
    """Training examples from sequences of title ids (oldest first).

    As the paper: the whole sequence with its last item as the target. ``augment_prefixes`` adds
    every prefix (each item predicted from the items before it). ``template_loss=False`` marks
    the prompt's fixed words (prefix and suffix) as never predicted, so a full-sequence loss
    trains on titles only.
    """
    out: list[Example] = []
    for seq in sequences:
        seq = [t for t in seq if t]
        if len(seq) < 2:
            continue
        targets = range(1, len(seq)) if augment_prefixes else [len(seq) - 1]
        for t in targets:
            ids, p = builder.example(seq[:t], seq[t])
            out.append((ids, p) if template_loss else (ids, p, builder.template_spans(p)))
    return out


def pack(examples: Sequence[Example], row_len: int, pad_id: int, target_only: bool = True):
    """Pack examples into rows (first-fit decreasing). Returns numpy arrays
    ``input_ids, position_ids, labels`` of shape (rows, width) with labels already shifted
    (``labels[r, t]`` is the token to predict at position t, or -100)."""
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i][0]))
    rows: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = len(examples[i][0])
        if n > row_len:
            raise ValueError(f"an example of {n} tokens does not fit row_len={row_len}")
        for r, f in enumerate(free):
            if f >= n:
                rows[r].append(i)
                free[r] -= n
                break
        else:
            rows.append([i])
            free.append(row_len - n)
    width = max((row_len - f for f in free), default=0)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    pos = np.zeros((len(rows), width), dtype=np.int64)
    lab = np.full((len(rows), width), -100, dtype=np.int64)
    for r, members in enumerate(rows):
        c = 0
        for i in members:
            x, p, *rest = examples[i]
            n = len(x)
            ids[r, c:c + n] = x
            pos[r, c:c + n] = np.arange(n)
            start = max(p - 1, 0) if target_only else 0
            lab[r, c + start:c + n - 1] = x[start + 1:]
            for a, b in (rest[0] if rest else ()):  # token j is predicted at position j - 1
                lab[r, c + max(a - 1, 0):c + max(b - 1, 0)] = -100
            c += n
        if c < width:  # padding tail: its own segment (positions restart), no labels
            pos[r, c:] = np.arange(width - c)
    return ids, pos, lab


def packed_loss(model, ids, pos, lab):
    """Mean cross-entropy over labelled positions; the LM head runs only there."""
    import torch

    # A peft (LoRA) wrapper: its base_model is the adapter layer, the transformer is one further in.
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    # use_cache=False matters: with a cache transformers skips its packed-sequence mask.
    hidden = inner.base_model(input_ids=ids, position_ids=pos, attention_mask=None, use_cache=False).last_hidden_state
    sel = lab != -100
    logits = inner.get_output_embeddings()(hidden[sel])
    return torch.nn.functional.cross_entropy(logits.float(), lab[sel])


class LMModule(TrainableModule):
    """A causal LM on packed examples, for the trainer (also used by the LoRA wrapper)."""

    def __init__(self, model, examples: Sequence[Example], cfg: TrainConfig, pad_id: int,
                 eval_fn: Callable[[object], float] | None = None) -> None:
        if not examples:
            raise ValueError("no training examples (every training sequence needs at least 2 items with titles)")
        self.model, self.examples, self.cfg, self.pad_id, self.eval_fn = model, examples, cfg, pad_id, eval_fn

    def build(self):
        return self.model

    def optimizer(self, net):
        import torch

        params = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
        return torch.optim.AdamW([{"params": [p for _, p in params if p.ndim >= 2], "weight_decay": self.cfg.weight_decay},
                                  {"params": [p for _, p in params if p.ndim < 2], "weight_decay": 0.0}], lr=self.cfg.lr)

    def scheduler(self, optimizer, total_steps: int):
        from transformers import get_linear_schedule_with_warmup

        return get_linear_schedule_with_warmup(optimizer, int(self.cfg.warmup_ratio * total_steps), total_steps)

    def batches(self, epoch: int, rng: np.random.Generator) -> list[np.ndarray]:
        perm = rng.permutation(len(self.examples))
        return [perm[i:i + self.cfg.batch_size] for i in range(0, len(perm), self.cfg.batch_size)]

    def loss(self, net, batch: np.ndarray, rng: np.random.Generator):
        import torch

        ids, pos, lab = pack([self.examples[i] for i in batch], self.cfg.row_len, self.pad_id, self.cfg.target_only_loss)
        device = next(net.parameters()).device
        return packed_loss(net, *(torch.from_numpy(a).to(device) for a in (ids, pos, lab)))

    def validate(self, net) -> dict[str, float] | None:
        return None if self.eval_fn is None else {"valid": float(self.eval_fn(net))}

    def fingerprint(self) -> dict:
        h = hashlib.blake2b(digest_size=8)
        for ex in self.examples:
            h.update(np.asarray(ex[0], dtype=np.int64).tobytes() + str(ex[1:]).encode() + b"|")
        cfg = {k: getattr(self.cfg, k) for k in ("lr", "weight_decay", "warmup_ratio", "batch_size", "row_len",
                                                 "target_only_loss")}
        arch = getattr(getattr(self.model, "config", None), "to_json_string", lambda: "")()
        return {"examples": h.hexdigest(), "n_examples": len(self.examples), **cfg,
                "model_config": hashlib.blake2b(arch.encode(), digest_size=8).hexdigest()}

    def count(self, batch: np.ndarray) -> int:
        return int(sum(len(self.examples[i][0]) for i in batch))


def trainer_config(cfg: TrainConfig, device, *, desc: str = "lm") -> "TrainerConfig":
    from genrec.training import TrainerConfig

    return TrainerConfig(max_epochs=cfg.epochs, max_steps=cfg.max_steps, patience=cfg.patience, time_budget=cfg.time_budget,
                         valid_metric="valid", grad_accum=cfg.grad_accum, max_grad_norm=cfg.max_grad_norm or None,
                         precision=cfg.bf16, device=None if device is None else str(device), seed=cfg.seed,
                         checkpoint_dir=cfg.checkpoint_dir, checkpoint_every=cfg.checkpoint_every,
                         progress=cfg.progress, desc=desc)


def train_lm(model, examples: Sequence[Example], cfg: TrainConfig, *, pad_id: int, device=None,
             eval_fn: Callable[[object], float] | None = None, resume: bool = True) -> TrainResult:
    """Train ``model`` in place on ``examples`` through the trainer; returns the history.

    ``eval_fn(model) -> float`` (higher is better) runs after each epoch; the best epoch's weights
    are restored at the end. With ``cfg.checkpoint_dir`` a checkpoint is written every
    ``checkpoint_every`` steps and at each epoch end, and a later call resumes from it exactly
    (same batches, same RNG), e.g. after ``max_steps`` or an interruption; ``resume=False``
    starts afresh (the old checkpoint is replaced).
    """
    from genrec.training.checkpoint import BEST_FILE, CHECKPOINT_FILE
    from genrec.training.trainer import Trainer

    module = LMModule(model, examples, cfg, pad_id, eval_fn)
    if cfg.checkpoint_dir and not resume:
        for name in (CHECKPOINT_FILE, BEST_FILE):
            (Path(cfg.checkpoint_dir) / name).unlink(missing_ok=True)
    net, res = Trainer(trainer_config(cfg, device)).fit(module)
    return TrainResult(history=res.history, best_epoch=res.best_epoch, best_metric=res.best_metric, steps=res.steps,
                       stopped_early=res.stop_reason != "max_epochs", seconds=res.train_seconds,
                       tokens_per_s=res.samples_per_s, stop_reason=res.stop_reason, fit_info=res.fit_info())
