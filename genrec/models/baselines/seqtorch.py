"""Shared machinery of the PyTorch sequence models (SASRec, BERT4Rec).

- The network (tokens, padding, :class:`~genrec.models.baselines.seqnet.SeqEncoder`) is in
  :mod:`genrec.models.baselines.seqnet`.
- :class:`SeqTorchRecommender`: training through :class:`genrec.training.trainer.Trainer`
  (counted in steps, validation on a seeded sample of ``split.valid``, early stopping, the best
  state kept, checkpoints with exact resume), scoring, save/load.

Subclasses define the network (``_build_net``), the training loss of a batch (``_batch_loss``)
and whether inference appends a [MASK] token (``_append_mask``).
"""

from __future__ import annotations

import hashlib
import json
import math
import typing
from pathlib import Path
from typing import Collection, Sequence

import numpy as np
import torch
from torch import nn

from genrec.errors import GenrecError
from genrec.models.baselines.seqnet import SeqEncoder, left_pad, length_buckets
from genrec.models.base import Recommendations, ScoringRecommender
from genrec.training.module import TrainableModule
from genrec.torch_utils import autocast_for, pick_device, resolve_precision, set_threads

WEIGHTS_FILE = "weights.pt"
FIT_LOG_FILE = "fit_log.json"
# Validate at most this often (in optimizer steps) when an epoch is shorter: small data sets
# have a few batches per epoch, and validating after each one makes early stopping noisy.
MIN_EVAL_EVERY = 50


class _SeqModule(TrainableModule):
    """SASRec/BERT4Rec as a :class:`genrec.training.module.TrainableModule`: length-bucketed
    batches of training sequences, the subclass's ``_batch_loss``, full-ranking validation."""

    def __init__(self, rec: "SeqTorchRecommender", train: list[np.ndarray], valid, fingerprint: dict) -> None:
        self.rec, self.train, self.valid, self.fp = rec, train, valid, fingerprint
        self.lengths = np.fromiter((min(len(s), rec.max_len + 1) for s in train), dtype=np.int64, count=len(train))

    def build(self) -> nn.Module:
        return self.rec._build_net(self.rec.n_items_)

    def optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(net.parameters(), lr=self.rec.lr, betas=(0.9, 0.98), weight_decay=self.rec.weight_decay)

    def scheduler(self, optimizer, total_steps: int) -> None:
        return None

    def batches(self, epoch: int, rng: np.random.Generator) -> list[np.ndarray]:
        return length_buckets(self.lengths, self.rec.batch_size, rng)

    def loss(self, net: nn.Module, batch: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        device = next(net.parameters()).device
        seq_net = typing.cast(SeqEncoder, net)  # the network build() made
        return self.rec._batch_loss(seq_net, [self.train[i] for i in batch], rng, device)

    def validate(self, net: nn.Module) -> dict[str, float] | None:
        from genrec.training.validation import rank_metrics

        if self.valid is None:
            return None
        self.rec.net_ = net
        return rank_metrics(lambda h: self.rec._score_tensor(h).numpy(), *self.valid)

    def fingerprint(self) -> dict:
        return self.fp

    def count(self, batch: np.ndarray) -> int:
        return len(batch)


# -- the recommender -----------------------------------------------------------------------------

class SeqTorchRecommender(ScoringRecommender):
    """Base of SASRec and BERT4Rec: training loop, checkpoints, scoring, persistence.

    Subclass constructors set the shared parameters:

    - ``max_len``: items of a sequence seen (the most recent); ``hidden``, ``layers``, ``heads``,
      ``dropout``: the transformer; ``lr``, ``weight_decay``, ``batch_size``: Adam training.
    - Training runs through :class:`genrec.training.trainer.Trainer`, counted in optimizer steps
      so that small data sets get enough of them: at most ``epochs`` epochs and ``max_steps``
      steps (None: no step limit) and ``time_budget`` seconds; validation every ``eval_every``
      steps (None: each epoch, but no more often than every 50 steps); early stopping after
      ``patience`` validations (None: never) in which ``valid_metric`` ("ndcg@10" or
      "recall@10", full ranking over a seeded sample of ``valid_users`` validation cases; None =
      all; smoothed by ``smoothing``, the weight of the past in a moving average) rose by no more
      than ``min_delta``, never before ``min_steps`` steps; the best validated state is kept.
      ``fit_info_`` says what happened (epochs_run, best_epoch, stop_reason, precision, steps,
      train_seconds), ``fit_history_`` holds one row per validation.
    - ``seed``: same seed, same data, same thread count -> same weights.
    - ``device``: None = CUDA when present, else CPU. ``bf16``: autocast to bfloat16; None (auto)
      = on for CUDA and for CPUs where bf16 beats fp32 (``genrec.torch_utils.cpu_has_fast_bf16``),
      off otherwise (emulated bf16 is ~5x slower than fp32 on an AVX2-only CPU).
    - ``checkpoint_dir``: a checkpoint is written there after every epoch and ``fit`` resumes from
      it exactly (same model, catalog, training data and parameters; the limits may grow).
    - ``progress``: a tqdm bar per epoch with the running loss. ``threads``: torch intra-op
      threads (process-wide; None = leave as is).
    """

    name = "seqtorch"
    capabilities = ScoringRecommender.capabilities.with_(trains_with_torch=True)
    _append_mask = False  # BERT4Rec appends [MASK] after the history at inference
    _fingerprint_params: tuple[str, ...] = ("max_len", "hidden", "layers", "heads", "dropout", "lr",
                                           "weight_decay", "batch_size", "seed")
    # The shared constructor parameters (set by SASRec's and BERT4Rec's __init__), for the type checker.
    max_len: int
    lr: float
    weight_decay: float
    batch_size: int
    epochs: int
    max_steps: int | None
    min_steps: int
    eval_every: int | None
    patience: int | None
    min_delta: float
    smoothing: float
    time_budget: float | None
    valid_metric: str
    valid_users: int | None
    seed: int
    device: str | None
    bf16: bool | None
    checkpoint_dir: str | None
    progress: bool
    threads: int | None

    # -- subclass hooks -----------------------------------------------------------------------------
    def _build_net(self, n_items: int) -> SeqEncoder:  # pragma: no cover - abstract
        raise NotImplementedError

    def _batch_loss(self, net: SeqEncoder, seqs: list[np.ndarray], rng: np.random.Generator,
                    device: torch.device) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- fit -------------------------------------------------------------------------------------
    def _trainer_config(self, n_train: int):
        """The trainer's settings from this model's parameters (see the class docstring)."""
        from genrec.training import TrainerConfig

        per_epoch = math.ceil(n_train / self.batch_size)
        every = self.eval_every if self.eval_every is not None else max(per_epoch, MIN_EVAL_EVERY)
        return TrainerConfig(
            max_epochs=self.epochs, max_steps=self.max_steps, min_steps=self.min_steps,
            time_budget=self.time_budget, eval_every=None if every == per_epoch else every,
            valid_metric=self.valid_metric, patience=self.patience, min_delta=self.min_delta,
            smoothing=self.smoothing, precision=self.bf16, device=self.device, seed=self.seed,
            checkpoint_dir=self.checkpoint_dir, progress=self.progress, desc=self.name)

    def fit(self, split) -> "SeqTorchRecommender":
        """Train on ``split.train`` (every position of every sequence) through the trainer,
        keeping the state with the best validation ``valid_metric`` on ``split.valid``; resumes
        from ``checkpoint_dir`` when it holds a checkpoint of the same model and data."""
        from genrec.training.trainer import Trainer
        from genrec.training.validation import encode_cases, sample_valid

        if self.valid_metric not in ("ndcg@10", "recall@10"):
            raise ValueError("valid_metric must be 'ndcg@10' or 'recall@10'")
        if self.threads:
            set_threads(self.threads)
        catalog = split.catalog
        n_items = len(catalog)
        if n_items == 0:
            raise GenrecError("cannot fit on an empty catalog")
        index = catalog._index
        train = [np.asarray([index[i] + 1 for i in s if i in index], dtype=np.int64)
                 for s in split.train.items.values()]
        train = [s for s in train if len(s) >= 2]
        if not train:
            raise GenrecError(f"{type(self).__name__} needs training sequences of at least 2 items")
        pop = np.zeros(n_items, dtype=np.float32)
        for s in train:
            np.add.at(pop, s - 1, 1.0)
        self.catalog, self.n_items_, self.pop_ = catalog, n_items, pop
        valid = sample_valid(split.valid, self.valid_users, self.seed)
        module = _SeqModule(self, train, encode_cases(valid, index) if valid else None,
                            self._fingerprint(catalog, train))
        net, res = Trainer(self._trainer_config(len(train))).fit(module)
        self.net_ = net
        self.fit_info_ = {**res.fit_info(), "best_valid": res.best_metric, "valid_metric": self.valid_metric,
                          "valid_users": len(valid), "sequences_per_s": round(res.samples_per_s, 1)}
        self.fit_history_ = res.history
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

    def _precision(self, device: torch.device) -> str:
        """Inference precision: the policy for ``bf16`` (the probe behind it runs once per process)."""
        return resolve_precision(self.bf16, device)

    @torch.no_grad()
    def _score_tensor(self, histories: list[np.ndarray], batch: int = 1024) -> torch.Tensor:
        net = self.net_
        net.eval()
        device = next(net.parameters()).device
        out = []
        for s in range(0, len(histories), batch):
            tokens = torch.as_tensor(self._tokens(histories[s:s + batch]), device=device)
            with autocast_for(self._precision(device), device):
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
        index, n = self._require_fitted()._index, getattr(self, "n_items_", 0)
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
        (path / FIT_LOG_FILE).write_text(json.dumps({"fit_info": getattr(self, "fit_info_", {}),
                                                     "history": getattr(self, "fit_history_", [])}, indent=1))

    def _load_state(self, path: Path) -> None:
        state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        self.n_items_ = int(state["n_items"])
        self.pop_ = state["pop"].numpy().astype(np.float32)
        net = self._build_net(self.n_items_)
        net.load_state_dict(state["net"])
        self.net_ = net.to(pick_device(self.device)).eval()
        log = path / FIT_LOG_FILE
        saved = json.loads(log.read_text()) if log.is_file() else {}
        self.fit_info_, self.fit_history_ = saved.get("fit_info", {}), saved.get("history", [])

    def _state(self) -> dict:  # pragma: no cover - not used: _save_state is overridden
        return {}

