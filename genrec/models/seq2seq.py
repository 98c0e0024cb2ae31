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
    entropy over the item tokens (special tokens can never be generated). AdamW, gradient clipping,
    bf16 autocast where it beats fp32 (``bf16=None``: CUDA, or a CPU where
    :func:`genrec.torch_utils.cpu_has_fast_bf16` says so; ``bf16=True/False`` forces it). The benchmark runs before 2026-12-01 used an
    AVX2-only AMD EPYC, where bf16 matmuls measured 10-100x slower than fp32, so they trained in
    fp32; later runs used an AVX512-BF16 EPYC and bf16. After every fine-tuning epoch NDCG@10 on a
    seeded sample of ``split.valid`` selects the best epoch; ``patience`` epochs without improvement stop early. With
    ``checkpoint_dir`` a checkpoint is written (atomically) after every epoch and ``fit`` resumes
    from it; data order and dropout are seeded per epoch, so a resumed run equals an uninterrupted one.
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

import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from genrec.errors import GenrecError
from genrec.models.base import ScoringRecommender

PAD, BOS, EOS, MASK = 0, 1, 2, 3
N_SPECIAL = 4
CHECKPOINT_FILE = "genrec_seq2seq.ckpt"
WEIGHTS_FILE = "seq2seq_weights.pt"
STATE_FILE = "seq2seq_state.json"


class GenRecSeq2Seq(ScoringRecommender):
    """GenRec: BART over item tokens, masked-item pretraining, next-item fine-tuning."""

    name = "genrec-seq2seq"
    capabilities = ScoringRecommender.capabilities.with_(trains_with_torch=True)

    def __init__(self, pretrain_epochs: int = 5, finetune_epochs: int = 10, lr: float = 3e-3,
                 weight_decay: float = 0.01, batch_size: int = 256, d_model: int = 64, layers: int = 1,
                 heads: int = 2, dropout: float = 0.2, max_len: int = 20, patience: int = 3,
                 valid_sample: int = 1000, seed: int = 0, device: str | None = None, bf16: bool | None = None,
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
        self.valid_sample = valid_sample
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
    def _use_bf16(self) -> bool:
        """``bf16`` if set, else :func:`genrec.torch_utils.resolve_bf16` (CUDA, or a CPU where bf16 pays)."""
        from genrec.torch_utils import resolve_bf16

        return resolve_bf16(self.bf16, self.device_)

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
            forced_bos_token_id=None, forced_eos_token_id=None, scale_embedding=False, init_std=self.init_std,
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
    def fit(self, split) -> "GenRecSeq2Seq":
        """Pretrain, fine-tune and select the best fine-tuning epoch; resumes from ``checkpoint_dir``."""
        import torch

        from genrec.torch_utils import pick_device, save_checkpoint, seed_everything

        self.catalog = split.catalog
        self.n_items_ = len(split.catalog)
        self.device_ = pick_device(self.device)
        self.bf16_ = self._use_bf16()
        if self.threads:
            torch.set_num_threads(self.threads)
        seed_everything(self.seed)
        net = self._build(self.n_items_).to(self.device_)
        self.net_ = net
        seqs = [split.catalog.indices(s) for s in split.train.items.values()]
        if self.finetune_epochs:
            self._finetune_examples(seqs)  # fail before pretraining if nothing can be fine-tuned
        valid = self._valid_sample(split)
        self.history_: list[dict] = []
        fingerprint = self._fingerprint(split)
        ckpt = Path(self.checkpoint_dir) / CHECKPOINT_FILE if self.checkpoint_dir else None
        state = {"phase": "pretrain", "epoch": 0, "best_score": -1.0, "best_epoch": 0, "bad": 0,
                 "stopped": False, "history": []}
        best_state = None
        resumed_from = None
        phases = [("pretrain", self.pretrain_epochs), ("finetune", self.finetune_epochs)]
        opt_state = None
        if ckpt is not None and ckpt.is_file():
            probe = torch.load(ckpt, map_location="cpu", weights_only=False)
            if probe["extra"].get("fingerprint") != fingerprint:
                raise GenrecError(f"{ckpt} was written for another model configuration or split; "
                                  "delete it or pass another checkpoint_dir")
            net.load_state_dict(probe["model"])
            state = probe["extra"]["state"]
            best_state = probe["extra"].get("best_state")
            opt_state = probe["optimizer"]
            resumed_from = f"{state['phase']} epoch {state['epoch']}"
            del probe
        self.history_ = list(state["history"])
        start_t = time.perf_counter()
        for phase, epochs in phases:
            if phase == "pretrain" and state["phase"] == "finetune":
                continue
            if phase == "finetune" and state["phase"] == "pretrain":
                state.update(phase="finetune", epoch=0)
                opt_state = None
            optimizer = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            if opt_state is not None:
                optimizer.load_state_dict(opt_state)
                opt_state = None
            while state["epoch"] < epochs and not (phase == "finetune" and state["stopped"]):
                epoch = state["epoch"] + 1
                rng = np.random.default_rng([self.seed, 0 if phase == "pretrain" else 1, epoch])
                torch.manual_seed(self.seed * 100003 + (0 if phase == "pretrain" else 50000) + epoch)
                loss, n_ex, secs = self._train_epoch(net, optimizer, phase, epoch, seqs, rng)
                score = self._valid_ndcg(valid) if valid else None
                row = {"phase": phase, "epoch": epoch, "loss": round(loss, 5), "examples": n_ex,
                       "seconds": round(secs, 2), "valid_ndcg@10": None if score is None else round(score, 5)}
                self.history_.append(row)
                if self.progress:
                    from tqdm.auto import tqdm

                    tqdm.write(f"genrec-seq2seq {json.dumps(row)}")
                state["epoch"] = epoch
                if phase == "finetune":
                    if score is None or score > state["best_score"]:
                        state.update(best_score=-1.0 if score is None else score, best_epoch=epoch, bad=0)
                        best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                    else:
                        state["bad"] += 1
                        if self.patience and state["bad"] >= self.patience:
                            state["stopped"] = True
                state["history"] = list(self.history_)
                if ckpt is not None:
                    save_checkpoint(ckpt, model=net, optimizer=optimizer, epoch=epoch,
                                    extra={"fingerprint": fingerprint, "state": copy.deepcopy(state),
                                           "best_state": best_state})
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self.fit_info_ = {"best_finetune_epoch": state["best_epoch"] if best_state is not None else None,
                          "best_valid_ndcg@10": state["best_score"] if best_state is not None else None,
                          "stopped_early": bool(state["stopped"]), "resumed_from": resumed_from,
                          "valid_cases": len(valid[0]) if valid else 0,
                          "train_seconds_this_run": round(time.perf_counter() - start_t, 2)}
        return self

    def _train_epoch(self, net, optimizer, phase: str, epoch: int, seqs, rng) -> tuple[float, int, float]:
        import torch
        import torch.nn.functional as F
        from tqdm.auto import tqdm

        from genrec.torch_utils import autocast

        net.train()
        t0 = time.perf_counter()
        total, n = 0.0, 0
        batches = list(self._epoch_data(phase, seqs, rng))
        bar = tqdm(batches, desc=f"genrec-seq2seq {phase} {epoch}", unit="batch",
                   disable=not self.progress, mininterval=2.0, leave=False)
        for inputs, append_mask, targets in bar:
            ids, attn = self._batch(inputs, append_mask=append_mask)
            y = torch.from_numpy(targets).to(self.device_)
            with autocast(self.device_, self.bf16_):
                logits = self._item_logits(net, ids, attn)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimizer.step()
            total += loss.item() * len(targets)
            n += len(targets)
            if self.progress:
                bar.set_postfix(loss=f"{total / max(n, 1):.3f}", refresh=False)
        bar.close()
        net.eval()
        return total / max(n, 1), n, time.perf_counter() - t0

    def _valid_sample(self, split):
        cases = list(split.valid)
        if not cases or not self.valid_sample:
            return None
        if len(cases) > self.valid_sample:
            rng = np.random.default_rng(self.seed)
            cases = [cases[i] for i in sorted(rng.choice(len(cases), self.valid_sample, replace=False))]
        hist, _ = self.encode_histories([list(c.history) for c in cases])
        targets = np.array([self.catalog._index.get(c.target, -1) for c in cases])
        ok = targets >= 0
        return [h for h, k in zip(hist, ok) if k], targets[ok]

    def _valid_ndcg(self, valid) -> float:
        hist, targets = valid
        scores = self.score(hist)
        rows = np.arange(len(hist))
        t_score = scores[rows, targets].copy()
        for n, h in enumerate(hist):  # history items are excluded at evaluation time too
            scores[n, h[h != targets[n]]] = -np.inf
        rank = 1 + (scores > t_score[:, None]).sum(axis=1)
        return float(np.where(rank <= 10, 1.0 / np.log2(rank + 1), 0.0).mean())

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
        n_items = getattr(self, "n_items_", None)
        if n_items is not None and n_items < len(self.catalog):
            for n, h in enumerate(encoded):
                new = h >= n_items
                if new.any():
                    ids = [self.catalog.id_at(int(i)) for i in h[new][:5]]
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

        from genrec.torch_utils import autocast

        if getattr(self, "net_", None) is None:
            self._require_fitted()
            raise GenrecError("model has no network: fit or load it")
        self.net_.eval()
        out = np.empty((len(histories), self.n_items_), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(histories), self.eval_batch_size):
                chunk = histories[start:start + self.eval_batch_size]
                ids, attn = self._batch(chunk)
                with autocast(self.device_, self.bf16_):
                    logits = self._item_logits(self.net_, ids, attn)
                out[start:start + len(chunk)] = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        return out

    # -- persistence --------------------------------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        import torch

        torch.save({k: v.detach().cpu() for k, v in self.net_.state_dict().items()}, path / WEIGHTS_FILE)
        (path / STATE_FILE).write_text(json.dumps({"n_items": self.n_items_, "history": self.history_,
                                                   "fit_info": getattr(self, "fit_info_", {})}, indent=1))

    def _load_state(self, path: Path) -> None:
        import torch

        from genrec.torch_utils import pick_device

        meta = json.loads((path / STATE_FILE).read_text())
        self.n_items_ = int(meta["n_items"])
        self.history_ = meta.get("history", [])
        self.fit_info_ = meta.get("fit_info", {})
        self.device_ = pick_device(self.device)
        self.bf16_ = self._use_bf16()
        if self.threads:
            torch.set_num_threads(self.threads)
        net = self._build(self.n_items_)
        net.load_state_dict(torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        self.net_ = net.to(self.device_).eval()
