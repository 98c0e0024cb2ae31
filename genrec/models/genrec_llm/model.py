"""GenRec (Ji et al., 2023; rutgerswiselab/GenRec): a causal LM instruction-tuned to write the
title of the user's next item, with decoding that always names a real item.

- Prompts: alpaca-style instruction / input / response (:mod:`.prompting`): the last
  ``history_items`` titles in, the next title out; the loss covers the response only.
- Base LM: ``lm="tiny"``/``"small"``/``"base"`` is a GPT-2 built from a config with a BPE
  tokenizer trained on the catalog's titles (:mod:`genrec.lm.scratch`), fully fine-tuned; any
  other value (``"smollm2-135m"``, an HF id or folder) is a pre-trained LM
  prepared by :func:`genrec.lm.adapt.prepare_pretrained` (``keep_layers``: its first n blocks
  only) and fine-tuned with LoRA (``lora=True/False`` overrides). Training runs through the one
  trainer (:mod:`.training`).
- Decoding (``decoding``, read at ``recommend`` time, so one fitted model serves both):
  ``constrained`` beam search over the prefix tree of catalog titles (every output is a catalog
  item) or ``grounded`` free beam search mapped to items by MiniLM embeddings (BIGRec), with
  invalid generations (texts that are no catalog title) flagged in ``why.extra["valid"]``.
  Full ranking: the beams' items first, in beam order, then every other item by embedding
  similarity to the top beam's text (:mod:`.decoding`). Shared titles: :mod:`.titles`.
- ``why``: one query per beam: the generated title, its score and the listed items it stands for.

Deviations from the paper, on purpose: one instruction wording per domain (GenRec paraphrases
it); a small LM instead of LLaMA-7B; the catalog-constrained and grounded decodings, where the
paper scores raw beams by exact title match (that protocol is reported beside ours by
``benchmarks/genrec_llm.py``). The history titles and the response use the catalog as of
``fit``: items added later are never recommended and edits reach the model after a refit.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Sequence

import numpy as np

from genrec.core.capabilities import Capabilities
from genrec.core.why import Query, Why
from genrec.errors import GenrecError
from genrec.models.base import Recommendations, Recommender
from genrec.models.genrec_llm.decoding import DECODINGS, generate_beams, rank
from genrec.models.genrec_llm.prompting import DOMAINS

if TYPE_CHECKING:
    from genrec.llm.local import HFBackend
    from genrec.models.genrec_llm.grounding import Grounder

STATE_FILE, LM_DIR, ADAPTER_DIR, VECTORS_FILE = "genrec_llm_state.json", "lm", "adapter", "title_vectors.npy"


class GenRecLLM(Recommender):
    """Instruction-tuned next-title generation (see the module docstring)."""

    name = "genrec-llm"
    capabilities = Capabilities(takes_exclude=True, explains=True, trains_with_torch=True)
    _backend: HFBackend | None = None
    _grounder: Grounder | None = None
    _vectors: Any = None
    _peft: Any = None
    param_help = {
        "lm": "base LM: tiny/small/base (a GPT-2 built here, tokenizer trained on the titles) or a pre-trained "
              "name/path such as smollm2-135m (fine-tuned with LoRA)",
        "lora": "LoRA adapters instead of full fine-tuning; null = LoRA for pre-trained LMs only",
        "keep_layers": "pre-trained LM: keep only its first n transformer blocks (null = all)",
        "lora_r": "LoRA rank", "lora_alpha": "LoRA scaling alpha", "lora_dropout": "dropout on the LoRA input",
        "epochs": "passes over the training examples", "lr": "peak learning rate; null = 1e-3 scratch, 3e-4 LoRA",
        "batch_size": "examples per micro-batch (packed into rows)", "grad_accum": "micro-batches per optimizer step",
        "history_items": "the last n history titles in the prompt",
        "max_title_tokens": "each history title is cut to this many tokens",
        "max_target_tokens": "response titles (and so generations) are cut to this many tokens",
        "max_prompt_tokens": "prompts keep the most recent titles that fit this many tokens",
        "examples_per_user": "training examples per user: the most recent n target positions; null = all",
        "vocab_size": "BPE vocabulary of a scratch LM's tokenizer",
        "domain": "prompt wording: products or movies",
        "decoding": "constrained (prefix tree of catalog titles) or grounded (free text, nearest title by MiniLM); "
                    "read at recommend time",
        "num_beams": "beams per user (the generated part of the list)",
        "beam_width": "beams searched, of which the best num_beams distinct live ones are kept; null = num_beams "
                      "(a wider search fills the list when the title tree leaves few live beams)",
        "embedder": "sentence-transformers model for grounding; null = packaged all-MiniLM-L6-v2",
        "valid_users": "validation cases whose response loss picks the best state",
        "eval_every": "validate every this many optimizer steps; null = each epoch",
        "checkpoint_every": "checkpoint every this many optimizer steps (with checkpoint_dir); 0 = each epoch",
        "time_budget": "stop training after this many seconds",
        "gen_batch_size": "users per generate call",
        "warmup_ratio": "fraction of training steps with a rising learning rate",
        "bf16": "bf16 autocast in training and generation; null = where it pays",
    }

    def __init__(self, lm: str = "tiny", lora: bool | None = None, keep_layers: int | None = None, lora_r: int = 8, lora_alpha: int = 16,
                 lora_dropout: float = 0.05, epochs: int = 3, lr: float | None = None, batch_size: int = 32,
                 grad_accum: int = 1, history_items: int = 10, max_title_tokens: int = 24,
                 max_target_tokens: int = 48, max_prompt_tokens: int = 256, examples_per_user: int | None = None,
                 vocab_size: int = 4096, domain: str = "products", decoding: str = "constrained",
                 num_beams: int = 10, beam_width: int | None = None, embedder: str | None = None, valid_users: int = 200,
                 eval_every: int | None = None, checkpoint_every: int = 0, time_budget: float | None = None,
                 patience: int | None = None, warmup_ratio: float = 0.05, gen_batch_size: int = 16,
                 seed: int = 0, device: str | None = None, bf16: bool | None = None, threads: int | None = None,
                 checkpoint_dir: str | None = None, progress: bool = True) -> None:
        self.lm = lm
        self.lora = lora
        self.keep_layers = keep_layers
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.history_items = history_items
        self.max_title_tokens = max_title_tokens
        self.max_target_tokens = max_target_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.examples_per_user = examples_per_user
        self.vocab_size = vocab_size
        self.domain = domain
        self.decoding = decoding
        self.num_beams = num_beams
        self.beam_width = beam_width
        self.embedder = embedder
        self.valid_users = valid_users
        self.eval_every = eval_every
        self.checkpoint_every = checkpoint_every
        self.time_budget = time_budget
        self.patience = patience
        self.warmup_ratio = warmup_ratio
        self.gen_batch_size = gen_batch_size
        self.seed = seed
        self.device = device
        self.bf16 = bf16
        self.threads = threads
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress
        self._check()

    def _check(self) -> None:
        if self.decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {', '.join(DECODINGS)}; got {self.decoding!r}")
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {', '.join(DOMAINS)}; got {self.domain!r}")
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1; got {self.num_beams}")
        if self.beam_width is not None and self.beam_width < self.num_beams:
            raise ValueError(f"beam_width must be >= num_beams ({self.num_beams}); got {self.beam_width}")

    @property
    def uses_lora(self) -> bool:
        from genrec.lm.scratch import is_scratch

        return (not is_scratch(self.lm)) if self.lora is None else bool(self.lora)

    # -- fitting ----------------------------------------------------------------------------------
    def fit(self, split) -> "GenRecLLM":
        from genrec.models.genrec_llm import training
        from genrec.models.genrec_llm.prompting import build_examples, popularity
        from genrec.torch_utils import pick_device, seed_everything, set_threads

        self._check()
        t0 = time.perf_counter()
        if self.threads:
            set_threads(self.threads)
        seed_everything(self.seed)
        catalog = self.catalog = split.catalog
        self.item_ids_, self.titles_ = list(catalog.ids), list(catalog.titles)
        self._device = pick_device(self.device)
        base, tok = self._base_lm()
        train_items = {u: [int(j) for j in catalog.indices(s, skip_unknown=True)] for u, s in split.train.items.items()}
        self.popularity_ = popularity(train_items, len(self.item_ids_)).tolist()
        self._setup_text(tok)
        examples, _ = build_examples(self._prompts, train_items, self._hist_ids, self._resp_ids, self.examples_per_user)
        if not examples:
            raise GenrecError("genrec-llm: no training examples (training sequences need 2+ items with titles)")
        valid = [self._case_example(c) for c in training.sample(list(split.valid), self.valid_users, self.seed)]
        valid = [e for e in valid if e is not None]
        model = base
        if self.uses_lora and not hasattr(model, "merge_and_unload"):  # a scratch LM asked to use LoRA
            from genrec.training.lora import apply_lora

            model = apply_lora(base, r=self.lora_r, alpha=self.lora_alpha, dropout=self.lora_dropout)
        if self.uses_lora:
            from genrec.training.lora import trainable_fraction

            self.trainable_fraction_ = round(trainable_fraction(model), 6)
        row_len = max(len(e[0]) for e in examples + valid)
        settings = training.FitSettings(
            epochs=self.epochs, lr=self.lr or (3e-4 if self.uses_lora else 1e-3), batch_size=self.batch_size,
            grad_accum=self.grad_accum, row_len=row_len, warmup_ratio=self.warmup_ratio, seed=self.seed,
            precision=self.bf16, device=str(self._device), checkpoint_dir=self.checkpoint_dir,
            checkpoint_every=self.checkpoint_every, eval_every=self.eval_every, time_budget=self.time_budget,
            patience=self.patience, progress=self.progress)
        res = training.train(model, examples, valid, settings, pad_id=int(tok.pad_token_id))
        self._set_lm(model, tok)
        self.fit_info_ = {**res.fit_info(), "train_examples": len(examples), "train_tokens": int(sum(len(e[0]) for e in examples)),
                          "tokens_per_s": round(res.samples_per_s, 1), "valid_cases": len(valid),
                          "valid_history": [{k: v for k, v in r.items() if k in ("step", "epoch", "loss", "valid")}
                                            for r in res.history],
                          "lora": self.uses_lora, "fit_seconds": round(time.perf_counter() - t0, 2)}
        self._grounder = None
        self._vectors = None
        return self

    def _base_lm(self):
        from genrec.lm.scratch import build_model, is_scratch, train_tokenizer
        from genrec.models.genrec_llm.prompting import genrec_template

        if is_scratch(self.lm):
            words = genrec_template(self.domain).words()
            tok = train_tokenizer(self.titles_ + [words] * 50, vocab_size=self.vocab_size)
            n_pos = self.max_prompt_tokens + self.max_target_tokens + 8
            return build_model(self.lm, tok, n_positions=n_pos, seed=self.seed), tok
        from genrec.lm.adapt import LoraSpec, prepare_pretrained

        spec = LoraSpec(r=self.lora_r, alpha=self.lora_alpha, dropout=self.lora_dropout) if self.uses_lora else None
        return prepare_pretrained(self.lm, keep_layers=self.keep_layers, lora=spec, precision=self.bf16,
                                  device=str(self._device))

    def _setup_text(self, tok) -> None:
        from genrec.models.genrec_llm.prompting import GenRecPrompts
        from genrec.models.genrec_llm.titles import TitleIndex

        self._tok = tok
        self._prompts = GenRecPrompts(tok, self.domain, history_items=self.history_items,
                                      max_title_tokens=self.max_title_tokens, max_target_tokens=self.max_target_tokens,
                                      max_prompt_tokens=self.max_prompt_tokens)
        self._hist_ids, self._resp_ids = self._prompts.titles(self.titles_)
        texts = [tok.decode(r).strip() if r else "" for r in self._resp_ids]
        self.response_texts_ = texts
        self._titles = TitleIndex(self._resp_ids, texts, np.asarray(self.popularity_), int(tok.eos_token_id))

    def _case_example(self, case):
        idx = {i: n for n, i in enumerate(self.item_ids_)}
        j = idx.get(case.target)
        if j is None or not self._resp_ids[j]:
            return None
        hist = [self._hist_ids[idx[i]] for i in case.history if i in idx]
        return self._prompts.example(hist, self._resp_ids[j])

    def _set_lm(self, model, tok) -> None:
        """The trained LM for inference (LoRA merged into a copy; the adapter is kept for ``save``)."""
        self._peft = None
        if hasattr(model, "merge_and_unload"):  # LoRA: keep the adapter, generate with a merged copy
            from genrec.lm.adapt import finish

            self._peft = model
            model = finish(copy.deepcopy(model))
        self._model = model.to(self._device).eval()
        self._tok = tok
        self._backend = None

    # -- recommending -----------------------------------------------------------------------------
    @property
    def backend(self) -> HFBackend:
        """The local LLM backend over the fine-tuned LM."""
        if self._backend is None:
            from genrec.llm.local import HFBackend

            self._backend = HFBackend(self._model, self._tok, model_id=f"genrec-llm:{self.lm}", device=self._device,
                                      batch_size=self.gen_batch_size, bf16="auto" if self.bf16 is None else self.bf16)
        return self._backend

    @property
    def grounder(self) -> Grounder:
        """MiniLM vectors of the titles known at fit time (built once, saved with the model)."""
        if self._grounder is None:
            from genrec.models.genrec_llm.grounding import Grounder

            self._grounder = Grounder(self.item_ids_, self.titles_, self.embedder, vectors=self._vectors)
        return self._grounder

    def prompt_ids(self, history: Sequence[str]) -> list[int]:
        """The prompt token ids for a history of item ids (unknown and post-fit items skipped)."""
        idx = {i: n for n, i in enumerate(self.item_ids_)}
        return self._prompts.prompt([self._hist_ids[idx[i]] for i in history if i in idx])

    def recommend(self, histories: Sequence[Sequence[str]], k: int = 10, *, exclude_history: bool = True,
                  exclude: Collection[str] = ()) -> Recommendations:
        catalog = self._require_fitted()
        if k <= 0:
            raise ValueError("k must be positive")
        self._check()
        encoded, notes = self.encode_histories(histories)
        if not encoded:
            return Recommendations([], [], [], [])
        n_fit = len(self.item_ids_)
        prompts = [self._prompts.prompt([self._hist_ids[j] for j in h if j < n_fit]) for h in encoded]
        beams = generate_beams(self.backend, prompts, self._titles, self.grounder, decoding=self.decoding,
                               num_beams=self.num_beams, max_new_tokens=self.max_target_tokens + 1, seed=self.seed,
                               beam_width=self.beam_width)
        ranked = rank(beams, self.grounder)
        banned = {catalog._index[i] for i in exclude if i in catalog._index}
        items, scores, whys = [], [], []
        for h, r, note in zip(encoded, ranked, notes):
            drop = banned | (set(h.tolist()) if exclude_history else set())
            keep = [n for n, j in enumerate(r.order.tolist()) if j not in drop][:k] if drop else list(range(min(k, len(r.order))))
            top = [int(r.order[n]) for n in keep]
            listed = set(top)
            items.append([self.item_ids_[j] for j in top])
            scores.append([float(r.scores[n]) for n in keep])
            queries = tuple(Query(b.text, b.score, tuple(self.item_ids_[j] for j in b.items if j in listed)) for b in r.beams)
            whys.append(Why(queries=queries, extra={"decoding": self.decoding, "valid": [b.valid for b in r.beams]}))
            note.extend(r.notes)
        return Recommendations(items, scores, whys, notes)

    # -- persistence ------------------------------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        if self._peft is not None:
            self._peft.save_pretrained(path / ADAPTER_DIR)
            self._tok.save_pretrained(path / ADAPTER_DIR)
        else:
            self._model.save_pretrained(path / LM_DIR)
            self._tok.save_pretrained(path / LM_DIR)
        np.save(path / VECTORS_FILE, self.grounder.vectors)
        (path / STATE_FILE).write_text(json.dumps(self._state(), default=float))

    def _load_state(self, path: Path) -> None:
        from genrec.torch_utils import pick_device

        f = path / STATE_FILE
        if not f.is_file():
            raise GenrecError(f"{path} has no genrec-llm state ({STATE_FILE})")
        vars(self).update(json.loads(f.read_text()))
        self._device = pick_device(self.device)
        if (path / ADAPTER_DIR).is_dir():
            from peft import PeftModel
            from transformers import AutoTokenizer

            from genrec.lm.scratch import build_model, is_scratch

            if is_scratch(self.lm):  # a scratch LM trained with LoRA: its base is rebuilt from the seed
                base = build_model(self.lm, AutoTokenizer.from_pretrained(str(path / ADAPTER_DIR)),
                                   n_positions=self.max_prompt_tokens + self.max_target_tokens + 8, seed=self.seed)
            else:
                from genrec.lm.adapt import keep_first_layers
                from genrec.lm.load import load_causal_lm

                base, _ = load_causal_lm(self.lm, device=str(self._device))
                if self.keep_layers is not None:
                    keep_first_layers(base, self.keep_layers)

            tok = AutoTokenizer.from_pretrained(str(path / ADAPTER_DIR))
            tok.padding_side = "left"
            model = PeftModel.from_pretrained(base, str(path / ADAPTER_DIR))
        elif (path / LM_DIR).is_dir():
            from genrec.lm.scratch import load_saved

            model, tok = load_saved(path / LM_DIR, self._device)
        else:
            raise GenrecError(f"{path} has neither {LM_DIR}/ nor {ADAPTER_DIR}/ (the genrec-llm language model)")
        self._setup_text(tok)
        self._set_lm(model, tok)
        self._vectors = np.load(path / VECTORS_FILE) if (path / VECTORS_FILE).is_file() else None
        self._grounder = None
