"""GPT4Rec (Li et al., eCom'23): a language model writes m search queries from the titles a user
bought; BM25 over item titles retrieves for each; a rank-based merge makes the top-K list.

Deviations from the paper, on purpose:
- ``lm`` defaults to a small GPT-2 trained from scratch on the catalog (no download needed);
  pass an HF id or path (e.g. ``lm="smollm2-135m"`` or ``"gpt2"``) to fine-tune a pre-trained LM
  as the paper does (GPT-2, 117M).
- Training is packed and padding-free. The loss covers the whole prompt + target by default: in
  "bought: T1. T2. ... T_n." predicting each title from the ones before it is the next-item task
  for every prefix at no extra cost (on the demo shop, 4 epochs: test Recall@10 0.06 vs 0.03 and
  Recall@20 0.13 vs 0.05 with ``target_only_loss=True``). ``augment_prefixes`` adds every prefix
  as its own example (quadratic cost; off by default).
- Defaults (``tiny``, 8 epochs, lr 2e-3) are sized for the quickstart on a 2-core CPU (~3 min idle); real
  catalogs want ``lm="small"`` and more epochs (the best epoch is kept by validation).
- ``gen_batch_size=16`` users per ``generate`` call: on CPU, small batches pay Python overhead per
  decoding step and large ones pay for copying the KV cache (beam reordering). Demo shop, m=10,
  2-core Xeon, five runs: 19-32 users/s at 16, 5-22 at 4, 14-17 at 64 (the last run is in
  benchmarks/results/gpt4rec_speed_xeon.json).
  Raise it on a GPU.
- ``template_loss=False`` leaves the prompt's fixed words out of the full-sequence loss (titles
  only); ``no_repeat_ngram=n`` stops a query repeating its own n-grams (prompt n-grams stay
  allowed). Both are off by default: on the demo shop neither changed test Recall beyond noise
  (benchmarks/results/gpt4rec_ablation_demo.json).
- ``decode="branch"`` (ours, not the paper's): the m queries start with the m most likely first
  tokens, each continued greedily, against beams that all become variants of one product
  (see :func:`genrec.lm.generate.generate_sequences`). The paper's beam search is the default.
- Queries are generated through the LLM backend layer (:class:`genrec.llm.local.HFBackend`,
  :attr:`GPT4Rec.backend`; beam search with m return sequences is a local-backend capability),
  and the prompt is the ``gpt4rec`` template of :mod:`genrec.prompts`, built at the token level.
- The best epoch is chosen by validation Recall@``valid_k`` through the whole pipeline. By default
  every one of ``epochs`` is trained (``patience=None``): Recall@10 over the 50 default validation
  users moves by several points between epochs, so stopping on it cut the quickstart at epoch 6
  with epoch 3 kept (test Recall@10 0.060), where training all 8 and keeping the best (epoch 7)
  gives 0.210 (demo shop, seed 0, `genrec evaluate -d demo -s user -m gpt4rec`, 2026-12-02).
- BM25 k1/b are grid-searched on validation users (as the paper) over a small grid; generated
  queries are cached so the grid does not regenerate them.
- Pre-trained LM levers (:mod:`genrec.lm.adapt`; all off by default, so the scratch default is
  unchanged): ``keep_layers`` keeps n transformer blocks (the first n, or with ``keep_last=k`` the
  first n - k and the final k), ``lora_r > 0`` trains LoRA
  adapters (merged into the weights after training), ``max_history`` keeps the last n titles in
  a prompt (besides ``max_title_tokens``/``max_prompt_tokens``), ``time_budget`` stops training
  after that many seconds (validated and checkpointed). benchmarks/gpt4rec_pretrained.py
  measures them.
- ``checkpoint_dir``: checkpoints every epoch; a later ``fit`` with the same folder RESUMES from
  its ``last.pt`` (after a crash or interruption), so use a fresh folder for a new experiment.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from genrec.data.catalog import Item
from genrec.errors import GenrecError
from genrec.models.query_search import QuerySearchRecommender, sample_cases

STATE_FILE = "gpt4rec_state.json"
LM_DIR = "lm"


if TYPE_CHECKING:
    from genrec.llm.local import HFBackend
    from genrec.llm.types import Generation


class GPT4Rec(QuerySearchRecommender):
    """Generative queries + BM25 + rank-based merge (search and merge live in
    :class:`~genrec.models.query_search.QuerySearchRecommender`). See the module docstring."""

    name = "gpt4rec"
    capabilities = QuerySearchRecommender.capabilities.with_(trains_with_torch=True)
    _backend: HFBackend | None = None

    def __init__(self, lm: str = "tiny", num_queries: int = 10, epochs: int = 8, lr: float | None = None,
                 batch_size: int = 32, grad_accum: int = 1, max_new_tokens: int = 20, k1: float = 1.2,
                 b: float = 0.75, tune_bm25: bool = True, augment_prefixes: bool = False,
                 target_only_loss: bool = False, template_loss: bool = True, no_repeat_ngram: int = 0,
                 decode: str = "beam", max_title_tokens: int = 24,
                 max_prompt_tokens: int = 200, vocab_size: int = 4096, domain: str = "products",
                 valid_users: int = 50, valid_k: int = 10, patience: int | None = None,
                 warmup_ratio: float = 0.05, gen_batch_size: int = 16, seed: int = 0,
                 device: str | None = None, checkpoint_dir: str | None = None, progress: bool = True,
                 keep_layers: int | None = None, keep_last: int = 0, lora_r: int = 0, lora_alpha: int = 16,
                 lora_targets: str | None = None, max_history: int | None = None,
                 time_budget: float | None = None, checkpoint_every: int = 0) -> None:
        self.lm = lm
        self.num_queries = num_queries
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.max_new_tokens = max_new_tokens
        self.k1 = k1
        self.b = b
        self.tune_bm25 = tune_bm25
        self.augment_prefixes = augment_prefixes
        self.target_only_loss = target_only_loss
        self.template_loss = template_loss
        self.no_repeat_ngram = no_repeat_ngram
        self.decode = decode
        self.max_title_tokens = max_title_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.vocab_size = vocab_size
        self.domain = domain
        self.valid_users = valid_users
        self.valid_k = valid_k
        self.patience = patience
        self.warmup_ratio = warmup_ratio
        self.gen_batch_size = gen_batch_size
        self.seed = seed
        self.device = device
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress
        self.keep_layers = keep_layers
        self.keep_last = keep_last
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_targets = lora_targets
        self.max_history = max_history
        self.time_budget = time_budget
        self.checkpoint_every = checkpoint_every

    # -- fitting ----------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.num_queries < 1:
            raise ValueError("num_queries must be >= 1")
        from genrec.lm.generate import MODES

        if self.decode not in MODES:
            raise ValueError(f"decode must be one of {', '.join(MODES)}; got {self.decode!r}")
        if self.epochs < 0:
            raise ValueError("epochs must be >= 0")
        from genrec.lm.scratch import is_scratch

        if is_scratch(self.lm) and (self.keep_layers is not None or self.lora_r or self.keep_last):
            raise ValueError(f"keep_layers and lora_r apply to a pre-trained lm, not the scratch size {self.lm!r}")
        if self.lora_r < 0 or (self.keep_layers is not None and self.keep_layers < 1):
            raise ValueError("lora_r must be >= 0 and keep_layers >= 1 (or null)")

    def fit(self, split) -> "GPT4Rec":
        from genrec.lm.scratch import build_model, is_scratch, train_tokenizer
        from genrec.lm.train import TrainConfig, build_examples, train_lm
        from genrec.prompts import gpt4rec_template
        from genrec.prompts.tokens import PromptBuilder
        from genrec.torch_utils import pick_device, seed_everything

        self._check_params()
        t0 = time.perf_counter()
        seed_everything(self.seed)
        self._setup_search(split)
        self._device = pick_device(self.device)
        template = gpt4rec_template(self.domain)
        scratch = is_scratch(self.lm)
        if scratch:
            # Prompt words repeated so BPE merges them into few tokens.
            texts = self._require_fitted().titles + [template.words()] * 50
            tok = train_tokenizer(texts, vocab_size=self.vocab_size)
            n_pos = self.max_prompt_tokens + max(self.max_title_tokens + 1, self.max_new_tokens) + 8
            model = build_model(self.lm, tok, n_positions=n_pos,
                                seed=self.seed)
        else:
            model, tok = _load_pretrained(self.lm, self._device, keep_layers=self.keep_layers,
                                          keep_last=self.keep_last, lora=self._lora_spec())
        self._model, self._tok = model.to(self._device), tok
        self._backend = None
        self._builder = PromptBuilder(tok, template, max_title_tokens=self.max_title_tokens,
                                      max_prompt_tokens=self.max_prompt_tokens, max_items=self.max_history)
        self._title_ids = self._builder.titles_ids(self._require_fitted().titles)
        seqs = [[self._title_ids[j] for j in self._require_fitted().indices(s, skip_unknown=True)]
                for s in split.train.items.values()]
        examples = build_examples(self._builder, seqs, augment_prefixes=self.augment_prefixes,
                                  template_loss=self.template_loss)
        valid = sample_cases(split.valid, self.valid_users, self.seed)
        eval_fn = (lambda _m: self._recall(valid, self.valid_k)) if valid else None
        default_lr = 2e-3 if scratch else (5e-4 if self.lora_r else 1e-4)
        cfg = TrainConfig(epochs=self.epochs, lr=self.lr or default_lr, weight_decay=0.01, time_budget=self.time_budget,
                          warmup_ratio=self.warmup_ratio, batch_size=self.batch_size, grad_accum=self.grad_accum,
                          row_len=self._model.config.n_positions if scratch else 512,
                          target_only_loss=self.target_only_loss, seed=self.seed,
                          checkpoint_dir=self.checkpoint_dir, checkpoint_every=self.checkpoint_every, patience=self.patience, progress=self.progress)
        if self.epochs > 0:
            res = train_lm(self._model, examples, cfg, pad_id=tok.eos_token_id, device=self._device, eval_fn=eval_fn)
            self.train_history_ = res.history
            self.best_epoch_ = res.best_epoch
            self.train_tokens_per_s_ = res.tokens_per_s
            lm_info = res.fit_info  # the trainer's contract: epochs_run, best_epoch, stop_reason, ...
        else:
            self.train_history_, self.best_epoch_, lm_info = [], None, {}
        if not scratch:
            from genrec.lm.adapt import adapt_info, finish

            self.adapt_info_ = {k: v for k, v in adapt_info(self._model).items() if k != "source"}
            self._model = finish(self._model)  # LoRA merged: a plain model to generate with and save
            self._backend = None
        self._model.eval()
        self.k1_, self.b_ = float(self.k1), float(self.b)
        self.bm25_grid_ = []
        if self.tune_bm25 and valid:
            self._tune_bm25(valid)
        self.fit_info_ = {**lm_info, "train_examples": len(examples), "valid_users": len(valid), "scratch": scratch,
                          "fit_seconds": round(time.perf_counter() - t0, 2)}
        return self

    def _lora_spec(self):
        if not self.lora_r:
            return None
        from genrec.lm.adapt import LoraSpec

        t = self.lora_targets
        targets = None if not t else (t if t == "all-linear" else tuple(x.strip() for x in t.split(",") if x.strip()))
        return LoraSpec(r=self.lora_r, alpha=self.lora_alpha, target_modules=targets)

    # -- recommending -----------------------------------------------------------------------------
    @property
    def backend(self) -> HFBackend:
        """The local LLM backend over the fitted LM (its ``usage()`` counts the generation calls)."""
        if self._backend is None:
            from genrec.llm.local import HFBackend

            self._backend = HFBackend(self._model, self._tok, model_id=f"gpt4rec:{self.lm}", device=self._device,
                                      batch_size=self.gen_batch_size)
        return self._backend

    def gen_params(self):
        """The generation settings of the m queries (:class:`genrec.llm.types.GenParams`)."""
        from genrec.llm.types import GenParams

        sample = self.decode == "sample"
        return GenParams(max_new_tokens=self.max_new_tokens, n=self.num_queries, num_beams=self.num_queries,
                         decoding=self.decode, temperature=1.0 if sample else 0.0, top_p=0.95 if sample else 1.0,
                         seed=self.seed, no_repeat_ngram=self.no_repeat_ngram)

    def _generate(self, histories: Sequence[Sequence[str]]) -> list[list[tuple[str, float]]]:
        from genrec.lm.generate import distinct_queries

        prompts = []
        for h in histories:
            idx = self._require_fitted().indices(h, skip_unknown=True)
            prompts.append(self._builder.prompt_ids([self._title_ids[j] for j in idx]))
        gens = self.backend.generate(prompts, self.gen_params())
        return [distinct_queries([_scored(g) for g in row], self.num_queries) for row in gens]

    def _empty_history_note(self) -> str:
        return "empty history: the queries come from the prompt words alone"

    # -- cold start -------------------------------------------------------------------------------
    def add_items(self, items: Iterable[Item]) -> list[int]:
        """Add items after fitting; they are searchable (and recommendable) at once."""
        new = super().add_items(items)
        # a new list, not extend(): a copy_for_edit() copy shares this one with the served model
        catalog = self._require_fitted()
        self._title_ids = self._title_ids + self._builder.titles_ids([catalog.item_at(j).title for j in new])
        return new

    def update_items(self, items: Iterable[Item]) -> None:
        """Change items' titles (or other fields) after fitting; search and prompts use them at once."""
        super().update_items(items)
        self._title_ids = self._builder.titles_ids(self._require_fitted().titles)

    # -- persistence ------------------------------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        self._model.save_pretrained(path / LM_DIR)
        self._tok.save_pretrained(path / LM_DIR)
        (path / STATE_FILE).write_text(json.dumps(self._state(), indent=1))

    def _load_state(self, path: Path) -> None:
        from genrec.lm.scratch import load_saved
        from genrec.prompts import gpt4rec_template
        from genrec.prompts.tokens import PromptBuilder
        from genrec.torch_utils import pick_device

        f = path / STATE_FILE
        if not f.is_file() or not (path / LM_DIR).is_dir():
            raise GenrecError(f"{path} has no GPT4Rec state ({STATE_FILE} and {LM_DIR}/)")
        vars(self).update(json.loads(f.read_text()))
        self._device = pick_device(self.device)
        self._model, self._tok = load_saved(path / LM_DIR, self._device)
        self._backend = None
        self._builder = PromptBuilder(self._tok, gpt4rec_template(self.domain),
                                      max_title_tokens=self.max_title_tokens, max_prompt_tokens=self.max_prompt_tokens,
                                      max_items=getattr(self, "max_history", None))
        self._title_ids = self._builder.titles_ids(self._require_fitted().titles)
        self._build_index(self.k1_, self.b_)


def _load_pretrained(name: str, device, *, keep_layers: int | None = None, keep_last: int = 0, lora=None):
    from genrec.lm.adapt import prepare_pretrained

    model, tok = prepare_pretrained(name, keep_layers=keep_layers, keep_last=keep_last, lora=lora, device=str(device))
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def _scored(g: Generation) -> tuple[str, float]:
    """A query and its score; the local backend always scores what it generates."""
    if g.score is None:
        raise GenrecError(f"GPT4Rec: the LLM backend gave the query {g.text!r} without a score")
    return g.text, g.score
