"""Shared machinery of the PyTorch sequence models (SASRec, BERT4Rec).

- Tokens: catalog index ``i`` is token ``i + 1``; token 0 is padding. Sequences are left-padded,
  and positions count from the most recent item (0 = newest), so a sequence's encoding does not
  depend on how much padding its batch needed (attention never looks at padding either).
- :class:`SeqEncoder`: item + learned position embeddings, transformer blocks (causal or not),
  the output layer shared with the item embeddings.
- :class:`SeqTorchRecommender`: the training loop (epochs, tqdm bar with the loss, bf16 autocast,
  a checkpoint every epoch and resume from it, early stopping on validation NDCG@10/Recall@10
  over a seeded sample of ``split.valid``, the best epoch's weights kept), scoring, save/load.

Subclasses define the network (``_build_net``), the training loss of a batch (``_batch_loss``)
and whether inference appends a [MASK] token (``_append_mask``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any, Collection, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genrec.errors import GenrecError
from genrec.models.base import Recommendations, ScoringRecommender
from genrec.torch_utils import (autocast, load_checkpoint, pick_device, resolve_bf16, save_checkpoint,
                                seed_everything, set_threads)

CHECKPOINT_FILE = "checkpoint.pt"
WEIGHTS_FILE = "weights.pt"
FIT_LOG_FILE = "fit_log.json"


# -- padding / batching ------------------------------------------------------------------------------

def left_pad(seqs: Sequence[np.ndarray], length: int | None = None) -> np.ndarray:
    """Stack token arrays into a ``(n, length)`` int64 array, left-padded with 0 (token 0)."""
    length = max((len(s) for s in seqs), default=0) if length is None else length
    out = np.zeros((len(seqs), max(length, 1)), dtype=np.int64)
    for r, s in enumerate(seqs):
        s = s[-length:] if length else s[:0]
        if len(s):
            out[r, out.shape[1] - len(s):] = s
    return out


def length_buckets(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                   bucket: int = 32) -> list[np.ndarray]:
    """Shuffled batches of similar-length sequences (less padding): shuffle, sort each run of
    ``bucket`` batches by length, cut into batches, shuffle the batch order."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * bucket
    batches = []
    for s in range(0, len(order), chunk):
        part = order[s:s + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def precision(device: torch.device, bf16: bool | None):
    """The autocast context for ``bf16`` (forced bf16 on CPU even where it is emulated)."""
    if not resolve_bf16(bf16, device):
        return contextlib.nullcontext()
    if device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return autocast(device, True)


# -- network -----------------------------------------------------------------------------------------

class Attention(nn.Module):
    """Multi-head attention; queries and keys/values may come from different inputs."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        if d % heads:
            raise ValueError(f"hidden size {d} is not divisible by heads={heads}")
        self.heads, self.dropout = heads, dropout
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, q_in: torch.Tensor, kv_in: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, n, d = q_in.shape
        h = self.heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, n, h, d // h).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.q(q_in)), split(self.k(kv_in)), split(self.v(kv_in)),
                                             attn_mask=allowed, dropout_p=self.dropout if self.training else 0.0)
        return self.o(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """A transformer block. ``pre_norm=True`` is SASRec's (the PyTorch port's) layout: the
    attention residual adds the normalised query; ``False`` is BERT's post-norm layout."""

    def __init__(self, d: int, heads: int, dropout: float, ffn: int, act: str, pre_norm: bool) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.attn = Attention(d, heads, dropout)
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-8), nn.LayerNorm(d, eps=1e-8)
        self.ff = nn.Sequential(nn.Linear(d, ffn), nn.ReLU() if act == "relu" else nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(ffn, d), nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            q = self.ln1(x)
            x = q + self.drop(self.attn(q, x, allowed))
            x = self.ln2(x)
            return x + self.ff(x)
        x = self.ln1(x + self.drop(self.attn(x, x, allowed)))
        return self.ln2(x + self.ff(x))


class SeqEncoder(nn.Module):
    """Item tokens -> hidden states; ``logits`` scores hidden states against every item.

    ``n_tokens`` counts padding (0), the items (1..n_items) and any special tokens after them.
    """

    def __init__(self, n_items: int, n_tokens: int, max_len: int, d: int, layers: int, heads: int,
                 dropout: float, *, causal: bool, pre_norm: bool, ffn: int, act: str, scale_emb: bool,
                 head: bool) -> None:
        super().__init__()
        self.n_items, self.causal, self.pre_norm = n_items, causal, pre_norm
        self.scale = math.sqrt(d) if scale_emb else 1.0
        self.item = nn.Embedding(n_tokens, d, padding_idx=0)
        self.pos = nn.Embedding(max_len, d)
        self.drop = nn.Dropout(dropout)
        self.emb_ln = nn.LayerNorm(d, eps=1e-8)  # pre-norm: final norm; post-norm: embedding norm
        self.blocks = nn.ModuleList(Block(d, heads, dropout, ffn, act, pre_norm) for _ in range(layers))
        # BERT4Rec's output head: dense + GELU + LayerNorm, then the tied embeddings + a bias.
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d, eps=1e-8)) if head else None
        self.out_bias = nn.Parameter(torch.zeros(n_items)) if head else None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, n = tokens.shape
        keep = tokens != 0
        rev = torch.arange(n - 1, -1, -1, device=tokens.device)  # 0 = most recent position
        x = self.item(tokens) * self.scale + self.pos(rev)[None]
        if not self.pre_norm:
            x = self.emb_ln(x)
        x = self.drop(x) * keep[..., None]
        allowed = keep[:, None, None, :].expand(b, 1, n, n)
        if self.causal:
            allowed = allowed & torch.ones(n, n, dtype=torch.bool, device=tokens.device).tril()
        # Every query may see itself, so padded rows are never fully masked (no NaN).
        allowed = allowed | torch.eye(n, dtype=torch.bool, device=tokens.device)
        for blk in self.blocks:
            x = blk(x, allowed) * keep[..., None]
        return self.emb_ln(x) if self.pre_norm else x

    def item_weights(self) -> torch.Tensor:
        return self.item.weight[1:self.n_items + 1]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Scores of every item (column j = catalog index j) for hidden states ``h``."""
        if self.head is not None:
            return self.head(h) @ self.item_weights().T + self.out_bias
        return h @ self.item_weights().T


def init_weights(net: nn.Module, kind: str) -> None:
    """``xavier``: the SASRec PyTorch port's init; ``trunc_normal``: BERT's (std 0.02)."""
    for name, p in net.named_parameters():
        if p.dim() < 2:
            continue
        if kind == "xavier":
            nn.init.xavier_normal_(p)
        else:
            nn.init.trunc_normal_(p, std=0.02, a=-0.04, b=0.04)
    emb = getattr(net, "item", None)
    if isinstance(emb, nn.Embedding):
        with torch.no_grad():
            emb.weight[0].zero_()


# -- the recommender -----------------------------------------------------------------------------

class SeqTorchRecommender(ScoringRecommender):
    """Base of SASRec and BERT4Rec: training loop, checkpoints, scoring, persistence.

    Subclass constructors set the shared parameters:

    - ``max_len``: items of a sequence seen (the most recent); ``hidden``, ``layers``, ``heads``,
      ``dropout``: the transformer; ``lr``, ``weight_decay``, ``batch_size``: Adam training.
    - ``epochs``: the most epochs; ``patience``: stop after this many epochs without a better
      validation ``valid_metric`` ("ndcg@10" or "recall@10", full ranking over a seeded sample
      of ``valid_cases`` validation cases; None = all); the best epoch's weights are kept.
    - ``seed``: same seed, same data, same thread count -> same weights.
    - ``device``: None = CUDA when present, else CPU. ``bf16``: autocast to bfloat16; None (auto)
      = on for CUDA and for CPUs where bf16 beats fp32 (``genrec.torch_utils.cpu_has_fast_bf16``),
      off otherwise (emulated bf16 is ~5x slower than fp32 on an AVX2-only CPU).
    - ``checkpoint_dir``: a checkpoint is written there after every epoch and ``fit`` resumes from
      it (same model, catalog, training data and parameters; ``epochs`` may grow).
    - ``progress``: a tqdm bar per epoch with the running loss. ``threads``: torch intra-op
      threads (process-wide; None = leave as is).
    """

    name = "seqtorch"
    capabilities = ScoringRecommender.capabilities.with_(trains_with_torch=True)
    _append_mask = False  # BERT4Rec appends [MASK] after the history at inference
    _fingerprint_params: tuple[str, ...] = ("max_len", "hidden", "layers", "heads", "dropout", "lr",
                                           "weight_decay", "batch_size", "seed")

    # -- subclass hooks -----------------------------------------------------------------------------
    def _build_net(self, n_items: int) -> SeqEncoder:  # pragma: no cover - abstract
        raise NotImplementedError

    def _batch_loss(self, net: SeqEncoder, seqs: list[np.ndarray], rng: np.random.Generator,
                    device: torch.device) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- fit -------------------------------------------------------------------------------------
    def fit(self, split) -> "SeqTorchRecommender":
        """Train on ``split.train`` (every position of every sequence), selecting the epoch by
        validation on ``split.valid``; resumes from ``checkpoint_dir`` when it holds a checkpoint."""
        if self.valid_metric not in ("ndcg@10", "recall@10"):
            raise ValueError("valid_metric must be 'ndcg@10' or 'recall@10'")
        if self.threads:
            set_threads(self.threads)
        catalog = split.catalog
        n_items = len(catalog)
        if n_items == 0:
            raise GenrecError("cannot fit on an empty catalog")
        device = pick_device(self.device)
        index = catalog._index
        train = [np.asarray([index[i] + 1 for i in s if i in index], dtype=np.int64)
                 for s in split.train.items.values()]
        train = [s for s in train if len(s) >= 2]
        if not train:
            raise GenrecError(f"{type(self).__name__} needs training sequences of at least 2 items")
        lengths = np.fromiter((min(len(s), self.max_len + 1) for s in train), dtype=np.int64, count=len(train))
        pop = np.zeros(n_items, dtype=np.float32)
        for s in train:
            np.add.at(pop, s - 1, 1.0)

        seed_everything(self.seed)
        net = self._build_net(n_items).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, betas=(0.9, 0.98), weight_decay=self.weight_decay)
        st: dict[str, Any] = {"epoch": 0, "best": -1.0, "best_epoch": 0, "best_state": None, "bad": 0,
                              "log": [], "stopped": False}
        fingerprint = self._fingerprint(catalog, train)
        ckpt = Path(self.checkpoint_dir) / CHECKPOINT_FILE if self.checkpoint_dir else None
        if ckpt is not None and ckpt.is_file():
            found = torch.load(ckpt, map_location="cpu", weights_only=False).get("extra", {}).get("fingerprint")
            if found != fingerprint:
                raise GenrecError(f"{ckpt} was written by a different model, catalog or parameters "
                                  f"({found} != {fingerprint}); use another checkpoint_dir")
            info = load_checkpoint(ckpt, model=net, optimizer=opt)
            extra = info["extra"]
            st.update(extra["train_state"])
            st["epoch"] = info["epoch"]

        valid = self._valid_sample(split)
        self.catalog, self.n_items_, self.pop_, self.net_ = catalog, n_items, pop, net
        from tqdm.auto import tqdm

        for epoch in range(st["epoch"], self.epochs):
            if st["stopped"]:
                break
            net.train()
            rng = np.random.default_rng([self.seed, epoch])
            batches = length_buckets(lengths, self.batch_size, rng)
            n_batches = len(batches)
            bar = tqdm(total=n_batches, desc=f"{self.name} epoch {epoch + 1}/{self.epochs}", unit="batch",
                       disable=not self.progress, mininterval=1.0, leave=False)
            t0, total, count = time.perf_counter(), 0.0, 0
            for b in range(n_batches):
                idx = batches[b]
                with precision(device, self.bf16):
                    loss = self._batch_loss(net, [train[i] for i in idx], rng, device)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total, count = total + float(loss.detach()), count + 1
                bar.update(1)
                if b % 10 == 0:
                    bar.set_postfix(loss=f"{total / count:.4f}")
            bar.close()
            secs = time.perf_counter() - t0
            row: dict[str, Any] = {"epoch": epoch + 1, "loss": total / count, "train_seconds": round(secs, 3),
                                   "sequences_per_second": round(len(train) / secs, 1)}
            if valid:
                tv = time.perf_counter()
                metrics = self._valid_metrics(valid)
                row.update(metrics, valid_seconds=round(time.perf_counter() - tv, 3))
                value = metrics[self.valid_metric]
                if value > st["best"]:
                    st.update(best=value, best_epoch=epoch + 1, bad=0,
                              best_state={k: v.detach().cpu().clone() for k, v in net.state_dict().items()})
                else:
                    st["bad"] += 1
                    if self.patience is not None and st["bad"] >= self.patience:
                        st["stopped"] = True
            st["log"].append(row)
            if self.progress:
                bar.write(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            if ckpt is not None:
                save_checkpoint(ckpt, model=net, optimizer=opt, epoch=epoch + 1,
                                extra={"fingerprint": fingerprint, "train_state": st})
        if st["best_state"] is not None:
            net.load_state_dict(st["best_state"])
        net.eval()
        self.fit_log_ = {"epochs_run": len(st["log"]), "best_epoch": st["best_epoch"],
                         "best_valid": st["best"] if valid else None, "valid_metric": self.valid_metric,
                         "valid_cases": len(valid), "stopped_early": st["stopped"], "epochs": st["log"]}
        return self

    def _fingerprint(self, catalog, train: list[np.ndarray]) -> dict:
        """What a checkpoint must match to be resumed: model, catalog, training data, parameters."""
        h = hashlib.blake2b("\n".join(catalog.ids).encode(), digest_size=8)
        data = hashlib.blake2b(digest_size=8)
        for s in train:
            data.update(s.tobytes() + b"|")
        params = self.get_params()
        return {"model": self.name, "catalog": h.hexdigest(), "n_items": len(catalog), "train": data.hexdigest(),
                **{k: params[k] for k in self._fingerprint_params if k in params}}

    def _valid_sample(self, split) -> list:
        cases = list(split.valid)
        if self.valid_cases is not None and len(cases) > self.valid_cases:
            rng = np.random.default_rng(self.seed)
            cases = [cases[i] for i in sorted(rng.choice(len(cases), self.valid_cases, replace=False))]
        return cases

    @torch.no_grad()
    def _valid_metrics(self, cases: list, batch: int = 1024) -> dict[str, float]:
        """Full-ranking Recall@10 / NDCG@10 of ``cases``, history items excluded (as evaluate())."""
        index = self.catalog._index
        ranks = []
        for s in range(0, len(cases), batch):
            part = cases[s:s + batch]
            hists = [np.asarray([index[i] for i in c.history if i in index], dtype=np.int64) for c in part]
            scores = self._score_tensor(hists).float()
            rows = torch.as_tensor(np.repeat(np.arange(len(hists)), [len(h) for h in hists]))
            cols = torch.as_tensor(np.concatenate(hists) if hists else np.empty(0, np.int64))
            scores[rows, cols] = -torch.inf
            tgt = torch.as_tensor([index.get(c.target, -1) for c in part])
            t_score = scores.gather(1, tgt.clamp(min=0)[:, None])
            r = (scores > t_score).sum(1) + 1
            r[(tgt < 0) | torch.isinf(t_score[:, 0])] = 10**9
            ranks.append(r)
        rank = torch.cat(ranks).double()
        hit = rank <= 10
        return {"recall@10": float(hit.double().mean()),
                "ndcg@10": float((hit.double() / torch.log2(rank + 1)).mean())}

    # -- scoring ---------------------------------------------------------------------------------
    def _tokens(self, histories: list[np.ndarray]) -> np.ndarray:
        """Inference input: the most recent items (+ [MASK] for BERT4Rec), left-padded to max_len."""
        keep = self.max_len - 1 if self._append_mask else self.max_len
        mask_tok = self.n_items_ + 1
        seqs = []
        for h in histories:
            t = h[h < self.n_items_][-keep:] + 1 if keep > 0 else h[:0]
            seqs.append(np.append(t, mask_tok) if self._append_mask else t)
        return left_pad(seqs, self.max_len)

    @torch.no_grad()
    def _score_tensor(self, histories: list[np.ndarray], batch: int = 1024) -> torch.Tensor:
        net = self.net_
        net.eval()
        device = next(net.parameters()).device
        out = []
        for s in range(0, len(histories), batch):
            tokens = torch.as_tensor(self._tokens(histories[s:s + batch]), device=device)
            with precision(device, self.bf16):
                logits = net.logits(net(tokens)[:, -1])
            out.append(logits.float().cpu())
        return torch.cat(out) if out else torch.empty(0, self.n_items_)

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        """Last position's output dot every item embedding. Histories that are empty once unknown
        items and items added after fit are dropped get training popularity instead."""
        self._require_fitted()
        scores = self._score_tensor(histories).numpy()
        for n, h in enumerate(histories):
            if not np.any(h < self.n_items_):
                scores[n] = self.pop_
        return scores

    def recommend(self, histories: Sequence[Sequence[str]], k: int = 10, *,
                  exclude_history: bool = True, exclude: Collection[str] = ()) -> Recommendations:
        recs = super().recommend(histories, k, exclude_history=exclude_history, exclude=exclude)
        index, n = self.catalog._index, getattr(self, "n_items_", 0)
        for r, h in enumerate(histories):
            idx = [index[i] for i in h if i in index]
            new = sum(1 for i in idx if i >= n)
            if new:
                recs.notes[r].append(f"ignored {new} item(s) added after training (no learned embedding)")
            if len(idx) - new == 0:
                recs.notes[r].append("no usable history: ranked by training popularity")
            elif len(idx) - new > (self.max_len - 1 if self._append_mask else self.max_len):
                recs.notes[r].append(f"long history: only the most recent {self.max_len} items were used")
        return recs

    # -- persistence -----------------------------------------------------------------------------
    def _require_net(self):
        if getattr(self, "net_", None) is None:
            self._require_fitted()
            raise GenrecError(f"{type(self).__name__} has no trained network")
        return self.net_

    def _save_state(self, path: Path) -> None:
        net = self._require_net()
        torch.save({"net": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                    "n_items": self.n_items_, "pop": torch.as_tensor(self.pop_)}, path / WEIGHTS_FILE)
        (path / FIT_LOG_FILE).write_text(json.dumps(getattr(self, "fit_log_", {}), indent=1))

    def _load_state(self, path: Path) -> None:
        state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        self.n_items_ = int(state["n_items"])
        self.pop_ = state["pop"].numpy().astype(np.float32)
        net = self._build_net(self.n_items_)
        net.load_state_dict(state["net"])
        self.net_ = net.to(pick_device(self.device)).eval()
        log = path / FIT_LOG_FILE
        self.fit_log_ = json.loads(log.read_text()) if log.is_file() else {}

    def _state(self) -> dict:  # pragma: no cover - not used: _save_state is overridden
        return {}

