"""GenRec (Cao & Lio, 2024): sequential recommendation as sequence-to-sequence generation.

Model
    A BART encoder-decoder (``transformers`` ``BartConfig`` + ``BartForConditionalGeneration``,
    built from a config with random weights: no pretrained checkpoint exists offline, and the paper
    itself uses BART). BART rather than a hand-written ``torch.nn.Transformer`` because it is the
    paper's architecture, gives learned positions, tied input/output embeddings and a tested
    ``generate`` (beam search) for free, which the tests use to check our fast path.

Vocabulary
    ``[PAD]=0, [BOS]=1`` (the decoder start token), ``[EOS]=2, [MASK]=3``, then one token per catalog
    item known at fit time (token ``4 + catalog index``). The paper feeds BART text such as
    "user_12 item_7 item_9" and adds whole-word user-id and item-id embeddings because the BART
    tokenizer splits those words into sub-word pieces. Here every item is one token, so the item-id
    embedding *is* the token embedding (plus BART's learned positional embedding). We use no user-id
    embedding: ``recommend`` receives histories, not user ids (the same call serves unseen users of
    the ``user`` split and the HTTP service), so a user is represented by their history alone
    (fold-in); a user-id embedding would be untrained for every unseen user.

Input
    The history, oldest first, truncated from the OLDEST end to its last ``max_len - 1`` items (a
    note says so), then ``[MASK]``; right-padded to the batch's longest input. Unknown item ids are
    dropped with a note (never a crash); items added to the catalog after ``fit`` are outside the
    vocabulary: dropped from histories with a note, and never recommended.

Training
    Pretraining (masked item prediction, ``pretrain_epochs``): each epoch, every training sequence
    (a random window of ``max_len`` items when longer) has one random item replaced by ``[MASK]``;
    the decoder generates the masked item. Fine-tuning (``finetune_epochs``): ``[MASK]`` appended
    after every prefix of every training sequence; the decoder generates the next item. Loss: cross
    entropy over the item tokens (special tokens can never be generated). Both phases run through
    :class:`genrec.training.trainer.Trainer`: AdamW, gradient clipping, the precision policy
    (``bf16=None``: bf16 on CUDA, or on a CPU where :func:`genrec.torch_utils.cpu_has_fast_bf16`
    says it beats fp32; ``True``/``False`` force it), NDCG@10 on a seeded sample of ``valid_users``
    validation cases after every fine-tuning epoch selecting the best epoch, ``patience`` epochs
    without improvement stopping early (0 or None: never). With ``checkpoint_dir`` each phase
    writes a checkpoint (atomically) after every epoch under ``checkpoint_dir/{pretrain,finetune}``
    and ``fit`` resumes from it exactly. ``fit_info_`` says what happened (the fine-tuning phase's
    epochs_run, best_epoch, stop_reason; precision; steps and train_seconds of both phases).
    ``finetune_sample < 1`` draws that fraction of the prefixes afresh each epoch (for time budgets).
    ``init_std`` (default 0.1, BART's own is 0.02): measured on the demo shop, 10 epochs, recall@10
    0.33 with 0.1 against 0.14 with 0.02, which sits for ~6 epochs on the popularity plateau.
    ``threads`` sets torch's intra-op threads (on a CPU shared by many jobs, 1 thread measured ~30x
    faster per batch than 2 on this 2-core machine: OpenMP workers wait on each other).

Inference: why scoring equals beam search here
    The target is one item, i.e. one token, so the decoder generates exactly one step after
    ``[BOS]``. Beam search with N beams starts from the single hypothesis ``[BOS]``, expands it with
    every allowed token and keeps the N best by log-probability; with one step there is nothing more
    to do, so its N hypotheses are exactly the top-N tokens of the first-step distribution, ranked by
    their log-probabilities, distinct by construction. We therefore compute the first decoder step's
    item log-probabilities once (a :class:`ScoringRecommender`) and let the shared top-k do the rest:
    special tokens are excluded from the vocabulary slice, history items optionally banned (as
    ``bad_words_ids`` would), and any N is free (no N-times beam expansion). Scores are log-softmax
    over the item tokens. ``tests/models/test_seq2seq.py`` checks this against ``generate``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from genrec.errors import GenrecError
from genrec.models.base import ScoringRecommender
from genrec.training.module import TrainableModule

PAD, BOS, EOS, MASK = 0, 1, 2, 3
N_SPECIAL = 4
WEIGHTS_FILE = "seq2seq_weights.pt"
STATE_FILE = "seq2seq_state.json"


class GenRecSeq2Seq(ScoringRecommender):
    """GenRec: BART over item tokens, masked-item pretraining, next-item fine-tuning."""

    name = "genrec-seq2seq"
    capabilities = ScoringRecommender.capabilities.with_(trains_with_torch=True)

    def __init__(self, pretrain_epochs: int = 5, finetune_epochs: int = 10, lr: float = 3e-3,
                 weight_decay: float = 0.01, batch_size: int = 256, d_model: int = 64, layers: int = 1,
                 heads: int = 2, dropout: float = 0.2, max_len: int = 20, patience: int = 3,
                 valid_users: int = 1000, seed: int = 0, device: str | None = None, bf16: bool | None = None,
                 checkpoint_dir: str | None = None, progress: bool = True, eval_batch_size: int = 512,
                 threads: int | None = None, init_std: float = 0.1, finetune_sample: float = 1.0) -> None:
        self.pretrain_epochs = pretrain_epochs
        self.finetune_epochs = finetune_epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.d_model = d_model
        self.layers = layers
        self.heads = heads
        self.dropout = dropout
        self.max_len = max_len
        self.patience = patience
        self.valid_users = valid_users
        self.seed = seed
        self.device = device
        self.bf16 = bf16
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress
        self.eval_batch_size = eval_batch_size
        self.threads = threads
        self.init_std = init_std
        self.finetune_sample = finetune_sample

    # -- network ------------------------------------------------------------------------------------
    def _build(self, n_items: int):
        from transformers import BartConfig, BartForConditionalGeneration

        if self.max_len < 2:
            raise ValueError("max_len must be at least 2 (one item and [MASK])")
        if self.d_model % self.heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by heads={self.heads}")
        cfg = BartConfig(
            vocab_size=N_SPECIAL + n_items, max_position_embeddings=self.max_len, d_model=self.d_model,
            encoder_layers=self.layers, decoder_layers=self.layers,
            encoder_attention_heads=self.heads, decoder_attention_heads=self.heads,
            encoder_ffn_dim=4 * self.d_model, decoder_ffn_dim=4 * self.d_model,
            dropout=self.dropout, attention_dropout=self.dropout, activation_dropout=0.0,
            pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS, decoder_start_token_id=BOS,
            forced_eos_token_id=None, scale_embedding=False, init_std=self.init_std,
            tie_word_embeddings=True, use_cache=False)
        return BartForConditionalGeneration(cfg)

    def _item_logits(self, net, input_ids, attention_mask):
        """First decoder step's logits over the item tokens only: shape (batch, n_items)."""
        import torch

        dec = torch.full((input_ids.shape[0], 1), BOS, dtype=torch.long, device=input_ids.device)
        out = net(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=dec, use_cache=False)
        return out.logits[:, 0, N_SPECIAL:]

    def _batch(self, seqs: Sequence[np.ndarray], *, append_mask: bool = True):
        """Token ids and attention mask, right-padded to the longest input of the batch."""
        import torch

        keep = self.max_len - 1 if append_mask else self.max_len
        rows = [np.asarray(s[len(s) - keep:] if len(s) > keep else s, dtype=np.int64) + N_SPECIAL for s in seqs]
        if append_mask:
            rows = [np.append(r, MASK) for r in rows]
        width = max(1, max(len(r) for r in rows))
        ids = np.full((len(rows), width), PAD, dtype=np.int64)
        for n, r in enumerate(rows):
            ids[n, :len(r)] = r
        ids_t = torch.from_numpy(ids).to(self.device_)
        return ids_t, (ids_t != PAD).long()

    # -- training examples --------------------------------------------------------------------------
    def _finetune_examples(self, seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(sequence number, prefix length) for every prefix with at least one item."""
        long = [(u, len(s)) for u, s in enumerate(seqs) if len(s) > 1]
        if not long:
            raise GenrecError(f"genrec-seq2seq fine-tuning needs training sequences of 2 or more items; all "
                              f"{len(seqs)} training sequences of this split have fewer (use a split or "
                              "preprocessing that keeps longer sequences, or finetune_epochs=0)")
        users = np.concatenate([np.full(n - 1, u, dtype=np.int64) for u, n in long])
        ends = np.concatenate([np.arange(1, n, dtype=np.int64) for _, n in long])
        return users, ends

    def _batches(self, n: int, lengths: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """Shuffled batches of example numbers, similar lengths together (less padding)."""
        order = rng.permutation(n)
        chunk = self.batch_size * 50
        out = []
        for start in range(0, n, chunk):
            part = order[start:start + chunk]
            part = part[np.argsort(lengths[part], kind="stable")]
            out += [part[i:i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        return [out[i] for i in rng.permutation(len(out))]

    def _epoch_data(self, phase: str, seqs: list[np.ndarray], rng: np.random.Generator):
        """One epoch's batches: (input sequences, append [MASK]?, target item indices)."""
        if phase == "finetune":
            users, ends = self._finetune_examples(seqs)
            if self.finetune_sample < 1.0:
                pick = rng.random(len(users)) < self.finetune_sample
                users, ends = users[pick], ends[pick]
            lengths = np.minimum(ends, self.max_len - 1)
            for b in self._batches(len(users), lengths, rng):
                yield ([seqs[users[j]][:ends[j]] for j in b], True,
                       np.array([seqs[users[j]][ends[j]] for j in b], dtype=np.int64))
            return
        cand = [s for s in seqs if len(s) > 1]
        lengths = np.array([min(len(s), self.max_len) for s in cand])
        for b in self._batches(len(cand), lengths, rng):
            inputs, targets = [], []
            for j in b:
                s = cand[j]
                if len(s) > self.max_len:
                    start = int(rng.integers(len(s) - self.max_len + 1))
                    s = s[start:start + self.max_len]
                p = int(rng.integers(len(s)))
                targets.append(int(s[p]))
                masked = s.copy()
                masked[p] = MASK - N_SPECIAL  # becomes MASK after the +N_SPECIAL shift in _batch
                inputs.append(masked)
            yield inputs, False, np.array(targets, dtype=np.int64)

    # -- fit ----------------------------------------------------------------------------------------
    def _trainer_config(self, phase: str):
        from genrec.training import TrainerConfig

        folder = str(Path(self.checkpoint_dir) / phase) if self.checkpoint_dir else None
        return TrainerConfig(
            max_epochs=self.pretrain_epochs if phase == "pretrain" else self.finetune_epochs,
            valid_metric="ndcg@10", patience=(self.patience or None) if phase == "finetune" else None,
            max_grad_norm=5.0, precision=self.bf16, device=self.device, seed=self.seed, checkpoint_dir=folder,
            progress=self.progress, desc=f"genrec-seq2seq {phase}")

    def fit(self, split) -> "GenRecSeq2Seq":
        """Pretrain, then fine-tune keeping the best fine-tuning epoch on validation, each phase
        through :class:`genrec.training.trainer.Trainer`; resumes from ``checkpoint_dir``."""
        import torch

        from genrec.torch_utils import pick_device, resolve_precision
        from genrec.training.trainer import Trainer

        self.catalog = split.catalog
        self.n_items_ = len(split.catalog)
        self.device_ = pick_device(self.device)
        self.precision_ = resolve_precision(self.bf16, self.device_)
        self.bf16_ = self.precision_ != "fp32"
        if self.threads:
            torch.set_num_threads(self.threads)
        seqs = [split.catalog.indices(s) for s in split.train.items.values()]
        if self.finetune_epochs:
            self._finetune_examples(seqs)  # fail before pretraining if nothing can be fine-tuned
        valid = self._valid_sample(split)
        fingerprint = self._fingerprint(split)
        self.net_ = None
        self.history_, results = [], {}
        for phase in ("pretrain", "finetune"):
            module = _Seq2SeqModule(self, phase, seqs, valid if phase == "finetune" else None, fingerprint)
            self.net_, res = Trainer(self._trainer_config(phase)).fit(module)
            results[phase] = res
            self.history_ += [{"phase": phase, **row} for row in res.history]
        pre, ft = results["pretrain"], results["finetune"]
        main = ft if self.finetune_epochs else pre
        resumed = [f"{ph} step {r.resumed_from_step}" for ph, r in results.items() if r.resumed_from_step]
        self.fit_info_ = {**main.fit_info(), "steps": pre.steps + ft.steps,
                          "train_seconds": round(pre.train_seconds + ft.train_seconds, 2),
                          "pretrain_epochs_run": pre.epochs_run, "best_valid": ft.best_metric,
                          "valid_metric": "ndcg@10", "valid_users": len(valid[0]) if valid else 0,
                          "resumed_from": resumed[-1] if resumed else None}
        return self

    def _valid_sample(self, split):
        """A seeded sample of ``valid_users`` validation cases, encoded; None without any."""
        from genrec.training.validation import sample_valid

        cases = sample_valid(split.valid, self.valid_users, self.seed)
        if not cases:
            return None
        hist, _ = self.encode_histories([list(c.history) for c in cases])
        index = self._require_fitted()._index
        targets = np.array([index.get(c.target, -1) for c in cases])
        ok = targets >= 0
        return [h for h, k in zip(hist, ok) if k], targets[ok]

    def _fingerprint(self, split) -> str:
        """What a checkpoint must match to be resumed: architecture, optimiser, data, split."""
        keys = ("lr", "weight_decay", "batch_size", "d_model", "layers", "heads", "dropout", "max_len", "seed",
                "pretrain_epochs", "init_std", "finetune_sample")
        h = hashlib.sha256(json.dumps({k: getattr(self, k) for k in keys}, sort_keys=True).encode())
        h.update("\n".join(split.catalog.ids).encode())
        h.update(str(sorted((u, len(s)) for u, s in split.train.items.items())).encode())
        return h.hexdigest()[:16]

    # -- inference ----------------------------------------------------------------------------------
    def encode_histories(self, histories):
        """As the base, and items added after fit (outside the vocabulary) are dropped with a note."""
        encoded, notes = super().encode_histories(histories)
        catalog = self._require_fitted()
        n_items = getattr(self, "n_items_", None)
        if n_items is not None and n_items < len(catalog):
            for n, h in enumerate(encoded):
                new = h >= n_items
                if new.any():
                    ids = [catalog.id_at(int(i)) for i in h[new][:5]]
                    notes[n].append(f"ignored {int(new.sum())} item(s) added after training, unknown to the "
                                    f"model's vocabulary: {', '.join(ids)}")
                    encoded[n] = h[~new]
        keep = self.max_len - 1
        for n, h in enumerate(encoded):
            if len(h) > keep:
                notes[n].append(f"long history: only the most recent {keep} items were used")
        return encoded, notes

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        """Log-probability of every item as the first (only) generated token: (n, n_items)."""
        import torch

        from genrec.torch_utils import autocast_for

        net = self._require_net()
        net.eval()
        out = np.empty((len(histories), self.n_items_), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(histories), self.eval_batch_size):
                chunk = histories[start:start + self.eval_batch_size]
                ids, attn = self._batch(chunk)
                with autocast_for(self.precision_, self.device_):
                    logits = self._item_logits(net, ids, attn)
                out[start:start + len(chunk)] = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        return out

    def _require_net(self) -> Any:
        net = getattr(self, "net_", None)
        if net is None:
            self._require_fitted()
            raise GenrecError("model has no network: fit or load it")
        return net

    # -- persistence --------------------------------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        import torch

        torch.save({k: v.detach().cpu() for k, v in self._require_net().state_dict().items()}, path / WEIGHTS_FILE)
        (path / STATE_FILE).write_text(json.dumps({"n_items": self.n_items_, "history": self.history_,
                                                   "fit_info": getattr(self, "fit_info_", {})}, indent=1))

    def _load_state(self, path: Path) -> None:
        import torch

        from genrec.torch_utils import pick_device, resolve_precision

        meta = json.loads((path / STATE_FILE).read_text())
        self.n_items_ = int(meta["n_items"])
        self.history_ = meta.get("history", [])
        self.fit_info_ = meta.get("fit_info", {})
        self.device_ = pick_device(self.device)
        self.precision_ = resolve_precision(self.bf16, self.device_)
        self.bf16_ = self.precision_ != "fp32"
        if self.threads:
            torch.set_num_threads(self.threads)
        net = self._build(self.n_items_)
        net.load_state_dict(torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        self.net_ = net.to(self.device_).eval()


class _Seq2SeqModule(TrainableModule):
    """One training phase of :class:`GenRecSeq2Seq` for the trainer (the network is built once,
    by the first phase, and trained further by the second)."""

    def __init__(self, rec: GenRecSeq2Seq, phase: str, seqs: list[np.ndarray], valid, fingerprint: str) -> None:
        self.rec, self.phase, self.seqs, self.valid, self.fp = rec, phase, seqs, valid, fingerprint

    def build(self):
        return self.rec.net_ if self.rec.net_ is not None else self.rec._build(self.rec.n_items_)

    def optimizer(self, net):
        import torch

        return torch.optim.AdamW(net.parameters(), lr=self.rec.lr, weight_decay=self.rec.weight_decay)

    def batches(self, epoch: int, rng: np.random.Generator) -> list:
        return list(self.rec._epoch_data(self.phase, self.seqs, rng))

    def loss(self, net, batch, rng: np.random.Generator):
        import torch
        import torch.nn.functional as F

        inputs, append_mask, targets = batch
        ids, attn = self.rec._batch(inputs, append_mask=append_mask)
        logits = self.rec._item_logits(net, ids, attn)
        return F.cross_entropy(logits.float(), torch.from_numpy(targets).to(ids.device))

    def validate(self, net) -> dict[str, float] | None:
        from genrec.training.validation import rank_metrics

        if self.valid is None:
            return None
        self.rec.net_ = net
        return rank_metrics(self.rec.score, *self.valid)

    def fingerprint(self) -> dict:
        return {"model": "genrec-seq2seq", "phase": self.phase, "config_and_data": self.fp}

    def count(self, batch) -> int:
        return len(batch[2])
