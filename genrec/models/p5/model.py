"""P5 (Geng et al., RecSys'22): one causal LM trained on several recommendation tasks written as
prompts, several templates per task, some held out to test prompt generalisation.

Deviations from the paper, on purpose:

- A causal LM (scratch GPT-2 by default, or a pre-trained one with LoRA), not T5: the rest of
  genrec's LMs are causal, and a scratch GPT-2 makes full multi-task training feasible on a CPU.
- Items are named by their titles (or random numbers, ``item_ids="random"``), never by ids
  numbered in order of appearance (P5's leak, PR #3); see :mod:`genrec.models.p5.identifiers`.
- Tasks (:mod:`genrec.prompts.tasks`): sequential, direct (choose among candidates), yes/no
  (TALLRec's question, scored by P(Yes)), rating (1-5, trained only when the training sequences
  carry ratings) and explanation (the user's review, trained only when they carry review text:
  none of the shared datasets do). P5's review summarisation is left out (no review text).
- ``recommend`` is the sequential task: beam search constrained to catalog identifiers, then a
  popularity fill so the ranking covers the catalog (:mod:`genrec.models.p5.decoding`).
- Training examples are a seeded sample per user and task (``*_examples``), not every prefix;
  the loss is on the answer only; the best epoch by the validation loss (every trained task) is kept.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Collection, Sequence

import numpy as np

from genrec.errors import GenrecError
from genrec.models.base import Recommendations, Recommender
from genrec.models.p5.tasks_api import P5TasksMixin

STATE_FILE = "p5_state.json"
LM_DIR = "lm"


def pair_field(split, name: str, users: Sequence[str], seqs: Sequence[Sequence[str]]) -> list[list | None] | None:
    """Per training user, the values of ``split.<name>`` (``{user: {item: value}}``: ``ratings``
    from :mod:`genrec.data.ratings`, or ``reviews``) parallel to the user's training items; None
    for a user missing any of them, and None overall when the split has no such table."""
    table = getattr(split, name, None)
    if not table:
        return None
    out: list[list | None] = []
    for u, s in zip(users, seqs):
        mine = table.get(u) or {}
        vals = [mine.get(i) for i in s]
        out.append(None if any(v is None for v in vals) else vals)
    return out if any(v is not None for v in out) else None


class P5(P5TasksMixin, Recommender):
    """Multi-task prompts over one causal LM (see the module docstring)."""

    name = "p5"
    capabilities = Recommender.capabilities.with_(takes_exclude=True, trains_with_torch=True)
    #: How many items of each list of the last ``recommend`` call came from beam search (the rest:
    #: the popularity fill); a diagnostic the benchmark reads.
    beam_counts: list[int]
    _decoder: Any = None

    def __init__(self, lm: str = "tiny", item_ids: str = "title", epochs: int = 4, lr: float | None = None,
                 batch_size: int = 32, grad_accum: int = 1, warmup_ratio: float = 0.05,
                 sequential_examples: int = 20, direct_examples: int = 4, yesno_examples: int = 6,
                 rating_examples: int = 6, explanation_examples: int = 4, max_history: int = 10,
                 candidates: int = 20, beams: int = 20, max_title_tokens: int = 24, max_answer_tokens: int = 48,
                 max_prompt_tokens: int = 768, vocab_size: int = 4096, lora_r: int = 8,
                 keep_layers: int | None = None, keep_last: int = 0, template: str = "seq-1",
                 valid_users: int = 200, time_budget: float | None = None, seed: int = 0,
                 device: str | None = None, bf16: bool | None = None, threads: int | None = None,
                 checkpoint_dir: str | None = None, progress: bool = True) -> None:
        self.lm = lm
        self.item_ids = item_ids
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.warmup_ratio = warmup_ratio
        self.sequential_examples = sequential_examples
        self.direct_examples = direct_examples
        self.yesno_examples = yesno_examples
        self.rating_examples = rating_examples
        self.explanation_examples = explanation_examples
        self.max_history = max_history
        self.candidates = candidates
        self.beams = beams
        self.max_title_tokens = max_title_tokens
        self.max_answer_tokens = max_answer_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.vocab_size = vocab_size
        self.lora_r = lora_r
        self.keep_layers = keep_layers
        self.keep_last = keep_last
        self.template = template
        self.valid_users = valid_users
        self.time_budget = time_budget
        self.seed = seed
        self.device = device
        self.bf16 = bf16
        self.threads = threads
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress
        self.beam_counts = []

    # -- fitting ----------------------------------------------------------------------------------
    def _per_user(self) -> dict[str, int]:
        return {"sequential": self.sequential_examples, "direct": self.direct_examples,
                "yesno": self.yesno_examples, "rating": self.rating_examples,
                "explanation": self.explanation_examples}

    def _check(self) -> None:
        from genrec.models.p5.identifiers import MODES
        from genrec.prompts.tasks import SEQUENTIAL

        if self.item_ids not in MODES:
            raise ValueError(f"item_ids must be one of {', '.join(MODES)}; got {self.item_ids!r}")
        SEQUENTIAL.get(self.template)  # an unknown template fails here, naming the known ones
        if self.candidates < 2:
            raise ValueError(f"candidates must be >= 2; got {self.candidates}")
        if any(v < 0 for v in self._per_user().values()):
            raise ValueError("the *_examples counts must be >= 0")

    def fit(self, split) -> "P5":
        """Build every task's examples from the training sequences and train the LM on them
        (through :class:`genrec.training.trainer.Trainer`)."""
        import torch

        from genrec.lm.scratch import is_scratch
        from genrec.models.p5 import examples as E
        from genrec.models.p5.identifiers import clean_identifier, make_identifiers
        from genrec.models.p5.lm import cut_tokens, pretrained_lm, scratch_lm
        from genrec.torch_utils import pick_device, resolve_bf16

        self._check()
        t0 = time.perf_counter()
        if self.threads:
            torch.set_num_threads(self.threads)
        catalog = split.catalog
        self.catalog = catalog
        self.n_items_ = len(catalog)
        self._device = pick_device(self.device)
        self._bf16 = resolve_bf16(self.bf16, self._device)
        self.scratch_ = is_scratch(self.lm)
        if self.scratch_:
            texts = [clean_identifier(t) for t in catalog.titles] if self.item_ids == "title" else []
            texts += make_identifiers(catalog.ids, catalog.titles, "random", seed=self.seed)[:2000]
            texts += [str(r) for rs in (getattr(split, "reviews", None) or {}).values() for r in rs.values()][:20000]
            model, tok = scratch_lm(self.lm, texts, vocab_size=self.vocab_size, seed=self.seed,
                                    n_positions=self._row_len() + 1)
        else:
            model, tok = pretrained_lm(self.lm, self._device, lora_r=self.lora_r, seed=self.seed,
                                       keep_layers=self.keep_layers, keep_last=self.keep_last)
        specials = [s for s in getattr(tok, "all_special_tokens", []) if s]
        self.identifiers_ = make_identifiers(catalog.ids, catalog.titles, self.item_ids, seed=self.seed,
                                             cut=lambda t: cut_tokens(tok, t, self.max_title_tokens),
                                             special_tokens=specials)
        self._setup(model, tok)
        users = list(split.train.items)
        known = [[i for i in split.train.items[u] if i in catalog] for u in users]
        seqs = [catalog.indices(s) for s in known]
        ratings, reviews = pair_field(split, "ratings", users, known), pair_field(split, "reviews", users, known)
        cfg = E.ExampleConfig(self._per_user(), self.max_history, self.candidates, self.seed)
        exs = E.build_examples(users, seqs, self.identifiers_, self.n_items_, cfg, ratings=ratings, reviews=reviews)
        self.train_ratings_ = {u: [[i, float(r)] for i, r in zip(s, rs)][-self.max_history:]
                               for u, s, rs in zip(users, known, ratings or []) if rs is not None}
        counts = np.bincount(np.concatenate([s for s in seqs if len(s)]) if seqs else np.empty(0, np.int64),
                             minlength=self.n_items_)
        self.popularity_ = [int(j) for j in np.lexsort((np.arange(self.n_items_), -counts))]
        self._decoder = None
        train_ex, dropped = self._tokenize(exs)
        self.tasks_trained_ = sorted({e.task for e in exs})
        self.templates_trained_ = sorted({e.template for e in exs})
        valid_ex = self._valid_examples(split)
        info = self._train(train_ex, valid_ex) if self.epochs > 0 and train_ex else {}
        self._model.eval()
        self.fit_info_ = {**info, "train_examples": len(train_ex), "examples_too_long": dropped,
                          "examples_per_task": {t: sum(e.task == t for e in exs) for t in self.tasks_trained_},
                          "valid_examples": len(valid_ex), "scratch": self.scratch_,
                          "has_ratings": ratings is not None, "has_reviews": reviews is not None,
                          "fit_seconds": round(time.perf_counter() - t0, 2)}
        return self

    def _row_len(self) -> int:
        """The longest example: a prompt, an answer (an identifier or a review) and EOS."""
        return self.max_prompt_tokens + max(self.max_answer_tokens, self.max_title_tokens) + 1

    def _setup(self, model, tok) -> None:
        from genrec.models.p5.lm import encode_many
        from genrec.models.p5.prompts import PromptMaker

        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"
        self._model, self._tok = model.to(self._device), tok
        self._prompts = PromptMaker(tok, self.identifiers_, self.max_history, self.max_prompt_tokens)
        self._answer_ids = encode_many(tok, [" " + i for i in self.identifiers_])
        self._decoder = None

    def _tokenize(self, exs) -> tuple[list[tuple[list[int], int]], int]:
        """``(prompt + answer + EOS ids, prompt length)`` per example; examples over the budget
        are dropped (counted)."""
        from genrec.models.p5.lm import encode_many

        prompts = encode_many(self._tok, [e.prompt for e in exs])
        answers = encode_many(self._tok, [" " + e.answer for e in exs])
        eos = self._tok.eos_token_id
        out, dropped = [], 0
        for e, p, a in zip(exs, prompts, answers):
            if e.task == "explanation":  # identifiers are already cut (max_title_tokens): never cut them again
                a = a[:self.max_answer_tokens]
            if len(p) > self.max_prompt_tokens:
                dropped += 1
                continue
            out.append((p + a + [eos], len(p)))
        return out, dropped

    def _valid_examples(self, split) -> list[tuple[list[int], int]]:
        """Every trained task on a seeded sample of validation cases, the case's target as the
        answer (its rating or review when the split has them): the validation loss picks the epoch."""
        from genrec.models.p5 import examples as E
        from genrec.training.validation import sample_valid

        catalog = self._require_fitted()
        cases = [c for c in sample_valid(split.valid, self.valid_users, self.seed) if c.target in catalog]
        users = [c.user for c in cases]
        known = [[i for i in (*c.history, c.target) if i in catalog] for c in cases]
        per_user = {t: 1 for t in self.tasks_trained_}
        cfg = E.ExampleConfig(per_user, self.max_history, self.candidates, self.seed + 1, last_only=True)
        exs = E.build_examples(users, [catalog.indices(s) for s in known], self.identifiers_, self.n_items_, cfg,
                               ratings=pair_field(split, "ratings", users, known),
                               reviews=pair_field(split, "reviews", users, known))
        return self._tokenize(exs)[0]

    def _train(self, train_ex, valid_ex) -> dict:
        import dataclasses

        from genrec.lm.train import LMModule, TrainConfig, pack, packed_loss, trainer_config
        from genrec.training.trainer import Trainer

        cfg = TrainConfig(epochs=self.epochs, lr=self.lr or (1e-3 if self.scratch_ else 2e-4), weight_decay=0.01,
                          warmup_ratio=self.warmup_ratio, batch_size=self.batch_size, grad_accum=self.grad_accum,
                          row_len=self._row_len(), target_only_loss=True,
                          bf16=self.bf16 if self.bf16 is not None else "auto", seed=self.seed,
                          checkpoint_dir=self.checkpoint_dir, progress=self.progress)
        pad = self._tok.pad_token_id

        def valid_score(net) -> float:
            import torch

            losses = []
            for s in range(0, len(valid_ex), 64):
                ids, pos, lab = pack(valid_ex[s:s + 64], cfg.row_len, pad, True)
                dev = next(net.parameters()).device
                losses.append(float(packed_loss(net, *(torch.from_numpy(a).to(dev) for a in (ids, pos, lab)))))
            return -float(np.mean(losses))

        module = LMModule(self._model, train_ex, cfg, pad, valid_score if valid_ex else None)
        tcfg = dataclasses.replace(trainer_config(cfg, self._device, desc="p5"), time_budget=self.time_budget)
        net, res = Trainer(tcfg).fit(module)
        self._model = net
        self.train_history_ = res.history
        return {**res.fit_info(), "valid_metric": "minus the validation loss (every trained task)",
                "best_valid": res.best_metric, "tokens_per_s": round(res.samples_per_s, 1)}

    # -- recommending -------------------------------------------------------------------------------
    def _require_lm(self):
        self._require_fitted()
        if getattr(self, "_model", None) is None:
            raise GenrecError("P5 has no language model: fit or load it")
        return self._model

    def _encode_known(self, histories: Sequence[Sequence[str]]) -> tuple[list[np.ndarray], list[list[str]]]:
        """As ``encode_histories``, and items added after fit (no identifier) dropped with a note."""
        enc, notes = self.encode_histories(histories)
        for n, h in enumerate(enc):
            new = h >= self.n_items_
            if new.any():
                notes[n].append(f"ignored {int(new.sum())} item(s) added after training (no identifier)")
                enc[n] = h[~new]
        return enc, notes

    @property
    def decoder(self):
        from genrec.models.p5.decoding import CatalogDecoder

        if self._decoder is None:
            self._decoder = CatalogDecoder(self._answer_ids, self._tok.eos_token_id, self.popularity_)
        return self._decoder

    def recommend(self, histories: Sequence[Sequence[str]], k: int = 10, *, exclude_history: bool = True,
                  exclude: Collection[str] = (), template: str | None = None) -> Recommendations:
        """The sequential task: constrained beam search names up to ``beams`` items, then the
        most popular remaining items fill the list to ``k`` (a note says how many)."""
        if k <= 0:
            raise ValueError("k must be positive")
        model = self._require_lm()
        catalog = self._require_fitted()
        enc, notes = self._encode_known(histories)
        banned_all = {j for j in (catalog._index.get(i) for i in set(exclude)) if j is not None and j < self.n_items_}
        items, scores, counts = [], [], []
        for n, h in enumerate(enc):
            banned = banned_all | (set(h.tolist()) if exclude_history else set())
            prompt = self._prompts.sequential(h.tolist(), template or self.template)
            idx, sc, from_beams = self.decoder.rank(model, self._tok, prompt, k, banned, beams=self.beams,
                                                    bf16=self._bf16)
            items.append([catalog.id_at(j) for j in idx])
            scores.append(sc)
            counts.append(from_beams)
            if len(idx) > from_beams:
                notes[n].append(f"ranks {from_beams + 1}-{len(idx)} filled by training popularity "
                                f"(beam search named {from_beams} items)")
        self.beam_counts = counts
        return Recommendations(items, scores, [], notes)

    # -- persistence ------------------------------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        from genrec.models.p5.lm import merged

        model = merged(self._require_lm())
        self._model = model
        model.save_pretrained(path / LM_DIR)
        self._tok.save_pretrained(path / LM_DIR)
        state = {k: getattr(self, k) for k in ("n_items_", "identifiers_", "popularity_", "scratch_",
                                               "tasks_trained_", "templates_trained_", "train_ratings_")}
        state["train_history_"] = getattr(self, "train_history_", [])
        (path / STATE_FILE).write_text(json.dumps(state, default=str))

    def _load_state(self, path: Path) -> None:
        import torch

        from genrec.lm.scratch import load_saved
        from genrec.torch_utils import pick_device, resolve_bf16

        f = path / STATE_FILE
        if not f.is_file() or not (path / LM_DIR).is_dir():
            raise GenrecError(f"{path} has no P5 state ({STATE_FILE} and {LM_DIR}/)")
        vars(self).update(json.loads(f.read_text()))
        if self.threads:
            torch.set_num_threads(self.threads)
        self._device = pick_device(self.device)
        self._bf16 = resolve_bf16(self.bf16, self._device)
        model, tok = load_saved(path / LM_DIR, self._device)
        self._setup(model, tok)

    def _state(self) -> dict[str, Any]:  # pragma: no cover - _save_state writes the state
        return {}
