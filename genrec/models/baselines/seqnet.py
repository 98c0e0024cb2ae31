"""The network pieces of the PyTorch sequence models (SASRec, BERT4Rec): padding and length
buckets, attention, transformer blocks, :class:`SeqEncoder` and weight initialisation.

Tokens: catalog index ``i`` is token ``i + 1``; token 0 is padding. Sequences are left-padded, and
positions count from the most recent item (0 = newest), so a sequence's encoding does not depend on
how much padding its batch needed (attention never looks at padding either). Training, scoring and
persistence are in :mod:`genrec.models.baselines.seqtorch`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


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


# -- what the trainer needs ----------------------------------------------------------------------
