"""Fine-tuning loop for GPT4Rec's language model: packed (padding-free) batches, bf16 autocast,
AdamW with linear warm-up, gradient accumulation, loss on the target title only (option),
checkpoints that resume exactly, and per-epoch validation that keeps the best epoch.

Packing: each batch of examples is packed first-fit-decreasing into rows of ``row_len`` tokens;
``position_ids`` restart at 0 for every example and ``attention_mask`` is left ``None``, so
transformers builds a block-diagonal causal mask (its packed-sequence detection) and no example
attends to another. Only the tail of each row is padding. With ``target_only_loss`` the LM head
(the largest matmul of a small model: vocab x dim per token) runs on the target positions only.
We write this loop instead of using ``transformers.Trainer`` for these two savings, for exact
resume mid-epoch, and for the recommendation-metric validation; benchmarks/gpt4rec_speed.py
compares the two.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

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
    patience: int | None = None   # stop when validation has not improved for this many epochs
    progress: bool = True


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None
    steps: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    tokens_per_s: float = 0.0


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


def _groups(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def packed_loss(model, ids, pos, lab):
    """Mean cross-entropy over labelled positions; the LM head runs only there."""
    import torch

    # use_cache=False matters: with a cache transformers skips its packed-sequence mask.
    hidden = model.base_model(input_ids=ids, position_ids=pos, attention_mask=None, use_cache=False).last_hidden_state
    sel = lab != -100
    logits = model.get_output_embeddings()(hidden[sel])
    return torch.nn.functional.cross_entropy(logits.float(), lab[sel])


def train_lm(model, examples: Sequence[Example], cfg: TrainConfig, *, pad_id: int, device=None,
             eval_fn: Callable[[object], float] | None = None, resume: bool = True) -> TrainResult:
    """Train ``model`` in place on ``examples``; returns the per-epoch history.

    ``eval_fn(model) -> float`` (higher is better) runs after each epoch; the best epoch's weights
    are restored at the end. With ``cfg.checkpoint_dir`` a checkpoint (``last.pt``) is written every
    ``checkpoint_every`` steps and at each epoch end, and a later call resumes from it exactly
    (same batches, same RNG), e.g. after ``max_steps`` or an interruption.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from genrec.torch_utils import autocast, load_checkpoint, pick_device, resolve_bf16, save_checkpoint

    if not examples:
        raise ValueError("no training examples (every training sequence needs at least 2 items with titles)")
    device = pick_device(device) if not isinstance(device, torch.device) else device
    model.to(device)
    n_groups = math.ceil(len(examples) / cfg.batch_size)
    steps_per_epoch = math.ceil(n_groups / cfg.grad_accum)
    total_steps = steps_per_epoch * cfg.epochs
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup_ratio * total_steps), max(total_steps, 1))
    res = TrainResult()
    step, epoch, group_pos = 0, 0, 0
    best_state = None
    ckpt = Path(cfg.checkpoint_dir) / "last.pt" if cfg.checkpoint_dir else None
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
    if ckpt is not None and resume and ckpt.is_file():
        info = load_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched)
        step, epoch = info["step"], info["epoch"]
        ex = info["extra"]
        group_pos = ex.get("group_pos", 0)
        res.history = ex.get("history", [])
        res.best_epoch, res.best_metric = ex.get("best_epoch"), ex.get("best_metric")
        best_file = Path(cfg.checkpoint_dir) / "best.pt"
        if best_file.is_file():
            best_state = torch.load(best_file, map_location="cpu", weights_only=True)

    def checkpoint(ep: int, gpos: int) -> None:
        if ckpt is None:
            return
        save_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched, step=step, epoch=ep,
                        extra={"group_pos": gpos, "history": res.history, "best_epoch": res.best_epoch,
                               "best_metric": res.best_metric})

    use_bf16 = resolve_bf16(cfg.bf16, device)
    t_start = time.perf_counter()
    tokens_total = 0
    stale = 0
    while epoch < cfg.epochs:
        groups = _groups(len(examples), cfg.batch_size, cfg.seed, epoch)
        model.train()
        bar = tqdm(total=len(groups), initial=group_pos, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not cfg.progress, mininterval=1.0, leave=False)
        ep_loss, ep_n, ep_tokens, t_ep = 0.0, 0, 0, time.perf_counter()
        opt.zero_grad(set_to_none=True)
        g = group_pos
        while g < len(groups):
            micro = groups[g:g + cfg.grad_accum]
            for grp in micro:
                ids, pos, lab = pack([examples[i] for i in grp], cfg.row_len, pad_id, cfg.target_only_loss)
                ids_t, pos_t, lab_t = (torch.from_numpy(a).to(device) for a in (ids, pos, lab))
                with autocast(device, use_bf16):
                    loss = packed_loss(model, ids_t, pos_t, lab_t)
                (loss / len(micro)).backward()
                ep_loss += float(loss.detach())
                ep_n += 1
                ntok = int(sum(len(examples[i][0]) for i in grp))
                ep_tokens += ntok
                tokens_total += ntok
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            g += len(micro)
            bar.update(len(micro))
            el = time.perf_counter() - t_ep
            bar.set_postfix(loss=f"{ep_loss / max(ep_n, 1):.3f}", tok_s=f"{ep_tokens / max(el, 1e-9):,.0f}")
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                checkpoint(epoch, g)
            if cfg.max_steps is not None and step >= cfg.max_steps:
                checkpoint(epoch, g)
                bar.close()
                res.steps, res.stopped_early = step, True
                res.seconds = time.perf_counter() - t_start
                res.tokens_per_s = tokens_total / max(res.seconds, 1e-9)
                return res
        bar.close()
        secs = time.perf_counter() - t_ep
        row = {"epoch": epoch + 1, "loss": ep_loss / max(ep_n, 1), "tokens_per_s": ep_tokens / max(secs, 1e-9),
               "seconds": secs}
        if eval_fn is not None:
            model.eval()
            metric = float(eval_fn(model))
            model.train()
            row["valid"] = metric
            if res.best_metric is None or metric > res.best_metric:
                res.best_metric, res.best_epoch, stale = metric, epoch + 1, 0
                best_state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
                if cfg.checkpoint_dir:
                    best_file = Path(cfg.checkpoint_dir) / "best.pt"
                    torch.save(best_state, best_file.with_suffix(".tmp"))
                    best_file.with_suffix(".tmp").replace(best_file)  # atomic: never a torn best.pt
            else:
                stale += 1
        res.history.append(row)
        if cfg.progress:
            tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        epoch += 1
        group_pos = 0
        checkpoint(epoch, 0)
        if cfg.patience is not None and stale >= cfg.patience:
            res.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    res.steps = step
    res.seconds = time.perf_counter() - t_start
    res.tokens_per_s = tokens_total / max(res.seconds, 1e-9)
    return res

