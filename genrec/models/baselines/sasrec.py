"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018), in PyTorch.

Causal self-attention over the last ``max_len`` items, learned positional embeddings, item
embeddings shared with the output layer (the score of an item is the last position's hidden state
dot its embedding), trained on every position of every training sequence.

Deviations from the paper, said plainly:
- ``loss="ce"`` (the default) is full softmax cross-entropy over all items, as in "SASRec+CE"
  (Klenitskiy & Vasilev 2023) and gSASRec (Petrov & Macdonald 2023). On Amazon Beauty it had the
  best validation NDCG@10 after the same number of epochs (epoch 7: CE 0.041, sampled softmax 0.033,
  BCE 0.013; benchmarks/results/sasrec_beauty_loo.md).
  ``loss="sce"`` is a sampled softmax: the positive against ``negatives`` uniform items shared by
  the batch, about 5x cheaper per epoch on a CPU with a 12k-item catalog. It gave our best
  Beauty test number within a time budget (Recall@10 0.080, NDCG@10 0.046, 20 epochs).
  ``loss="bce"`` is the paper's binary cross-entropy with one sampled negative per position
  (uniform over the catalog, resampled once when it hits the positive).
- Positions are counted from the most recent item, which equals the port's absolute positions
  when sequences are padded to ``max_len`` but lets training pad batches only to their longest
  sequence; attention never looks at padding.
- An empty history (or one of unknown items only) is ranked by training popularity, with a note.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genrec.models.baselines.seqnet import SeqEncoder, init_weights, left_pad
from genrec.models.baselines.seqtorch import SeqTorchRecommender


class SASRec(SeqTorchRecommender):
    """Causal transformer next-item model. Defaults follow the paper / the PyTorch port
    (hidden 64, 2 blocks, 1 head, lr 1e-3, batch 128, max_len 50); the loss default (full
    cross-entropy) was chosen on Beauty validation; dropout 0.3 sits between the port's 0.2
    (MovieLens) and the paper's 0.5 (sparse Amazon data) and was not tuned."""

    name = "sasrec"
    _fingerprint_params = SeqTorchRecommender._fingerprint_params + ("loss", "negatives")

    def __init__(self, max_len: int = 50, hidden: int = 64, layers: int = 2, heads: int = 1,
                 dropout: float = 0.3, loss: str = "ce", negatives: int = 1024, lr: float = 1e-3,
                 weight_decay: float = 0.0, batch_size: int = 128, epochs: int = 200, max_steps: int | None = None,
                 min_steps: int = 500, eval_every: int | None = None, patience: int | None = 5,
                 min_delta: float = 0.0, smoothing: float = 0.0, time_budget: float | None = None,
                 valid_metric: str = "ndcg@10", valid_users: int | None = 10000, seed: int = 0,
                 device: str | None = None, bf16: bool | None = None, checkpoint_dir: str | None = None,
                 progress: bool = True, threads: int | None = None) -> None:
        self.max_len, self.hidden, self.layers, self.heads, self.dropout = max_len, hidden, layers, heads, dropout
        self.loss, self.negatives, self.lr, self.weight_decay = loss, negatives, lr, weight_decay
        self.batch_size = batch_size
        self.epochs, self.max_steps, self.min_steps, self.eval_every = epochs, max_steps, min_steps, eval_every
        self.patience, self.min_delta, self.smoothing, self.time_budget = patience, min_delta, smoothing, time_budget
        self.valid_metric, self.valid_users = valid_metric, valid_users
        self.seed, self.device, self.bf16, self.checkpoint_dir = seed, device, bf16, checkpoint_dir
        self.progress, self.threads = progress, threads

    def _build_net(self, n_items: int) -> SeqEncoder:
        if self.loss not in ("ce", "sce", "bce"):
            raise ValueError("loss must be 'ce' (full softmax), 'sce' (sampled softmax over `negatives` "
                             "uniform items) or 'bce' (one sampled negative)")
        net = SeqEncoder(n_items, n_items + 1, self.max_len, self.hidden, self.layers, self.heads, self.dropout,
                         causal=True, pre_norm=True, ffn=self.hidden, act="relu", scale_emb=True, head=False)
        init_weights(net, "xavier")
        return net

    def _batch_loss(self, net: SeqEncoder, seqs: list[np.ndarray], rng: np.random.Generator,
                    device: torch.device) -> torch.Tensor:
        """Next-item loss at every position: input s[:-1], target s[1:] (last max_len+1 items)."""
        core = getattr(net, "module", net)  # under DDP, net is the wrapper: forward through it
        seqs = [s[-(self.max_len + 1):] for s in seqs]
        inp = torch.as_tensor(left_pad([s[:-1] for s in seqs]), device=device)
        tgt = torch.as_tensor(left_pad([s[1:] for s in seqs]), device=device)
        keep = tgt > 0
        h = net(inp)[keep]  # (positions, d)
        pos = tgt[keep]
        if self.loss == "ce":
            return F.cross_entropy(core.logits(h).float(), pos - 1)
        w = core.item.weight
        if self.loss == "sce":
            # Sampled softmax: the positive against `negatives` uniform items shared by the batch;
            # a negative equal to the row's positive is masked out.
            neg = torch.as_tensor(rng.integers(1, core.n_items + 1, size=self.negatives), device=device)
            neg_logits = (h @ w[neg].T).float()
            neg_logits = neg_logits.masked_fill(neg[None, :] == pos[:, None], float("-inf"))
            pos_logit = (h * w[pos]).sum(-1, keepdim=True).float()
            logits = torch.cat([pos_logit, neg_logits], 1)
            return F.cross_entropy(logits, torch.zeros(len(pos), dtype=torch.long, device=device))
        neg_np = rng.integers(1, core.n_items + 1, size=int(keep.sum()))
        neg = torch.as_tensor(neg_np, device=device)
        clash = neg == pos
        if bool(clash.any()):  # resample once; a remaining clash is vanishingly rare
            neg[clash] = torch.as_tensor(rng.integers(1, core.n_items + 1, size=int(clash.sum())), device=device)
        pos_logit = (h * w[pos]).sum(-1).float()
        neg_logit = (h * w[neg]).sum(-1).float()
        return (F.binary_cross_entropy_with_logits(pos_logit, torch.ones_like(pos_logit))
                + F.binary_cross_entropy_with_logits(neg_logit, torch.zeros_like(neg_logit)))
