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
- ``gen_batch_size=4`` users per ``generate`` call: on CPU, beam search time is dominated by
  copying the KV cache (beam reordering), and small batches keep it in cache (48 demo users:
  4.4 users/s at 4 vs 1.6 at 48 on the shared 2-core VM). Raise it on a GPU.
- The best epoch is chosen by validation Recall@``valid_k`` through the whole pipeline.
- BM25 k1/b are grid-searched on validation users (as the paper) over a small grid; generated
  queries are cached so the grid does not regenerate them.
- ``checkpoint_dir``: checkpoints every epoch; a later ``fit`` with the same folder RESUMES from
  its ``last.pt`` (after a crash or interruption), so use a fresh folder for a new experiment.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from genrec.data.catalog import Item
from genrec.errors import GenrecError
from genrec.models.base import Recommendations, Recommender

K1_GRID = (0.3, 0.6, 1.2, 2.0, 3.0)
B_GRID = (0.25, 0.5, 0.75, 0.9)
STATE_FILE = "gpt4rec_state.json"
LM_DIR = "lm"


class GPT4Rec(Recommender):
    """Generative queries + BM25 + rank-based merge. See the module docstring."""

    name = "gpt4rec"

    def __init__(self, lm: str = "tiny", num_queries: int = 10, epochs: int = 8, lr: float | None = None,
                 batch_size: int = 32, grad_accum: int = 1, max_new_tokens: int = 20, k1: float = 1.2,
                 b: float = 0.75, tune_bm25: bool = True, augment_prefixes: bool = False,
                 target_only_loss: bool = False, decode: str = "beam", max_title_tokens: int = 24,
                 max_prompt_tokens: int = 200, vocab_size: int = 4096, domain: str = "products",
                 valid_users: int = 50, valid_k: int = 10, patience: int | None = 3,
                 warmup_ratio: float = 0.05, gen_batch_size: int = 4, seed: int = 0,
                 device: str | None = None, checkpoint_dir: str | None = None, progress: bool = True) -> None:
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

    # -- fitting ----------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.num_queries < 1:
            raise ValueError("num_queries must be >= 1")
        if self.decode not in ("beam", "greedy", "sample"):
            raise ValueError("decode must be 'beam', 'greedy' or 'sample'")
        if self.epochs < 0:
            raise ValueError("epochs must be >= 0")

    def fit(self, split) -> "GPT4Rec":
        from genrec.lm.prompts import PromptBuilder, PromptTemplate
        from genrec.lm.scratch import build_model, is_scratch, train_tokenizer
        from genrec.lm.train import TrainConfig, build_examples, train_lm
        from genrec.torch_utils import pick_device, seed_everything

        self._check_params()
        t0 = time.perf_counter()
        seed_everything(self.seed)
        self.catalog = split.catalog.copy()
        self._device = pick_device(self.device)
        template = PromptTemplate.for_domain(self.domain)
        scratch = is_scratch(self.lm)
        if scratch:
            # Prompt words repeated so BPE merges them into few tokens.
            texts = self.catalog.titles + [template.words()] * 50
            tok = train_tokenizer(texts, vocab_size=self.vocab_size)
            n_pos = self.max_prompt_tokens + max(self.max_title_tokens + 1, self.max_new_tokens) + 8
            model = build_model(self.lm, tok, n_positions=n_pos,
                                seed=self.seed)
        else:
            model, tok = _load_pretrained(self.lm, self._device)
        self._model, self._tok = model.to(self._device), tok
        self._builder = PromptBuilder(tok, template, max_title_tokens=self.max_title_tokens,
                                      max_prompt_tokens=self.max_prompt_tokens)
        self._title_ids = self._builder.titles_ids(self.catalog.titles)
        counts = split.train.item_counts()
        self.popular_ = [i for i, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:1000]
        self._build_index(self.k1, self.b)
        seqs = [[self._title_ids[j] for j in self.catalog.indices(s, skip_unknown=True)]
                for s in split.train.items.values()]
        examples = build_examples(self._builder, seqs, augment_prefixes=self.augment_prefixes)
        valid = _sample(split.valid, self.valid_users, self.seed)
        eval_fn = (lambda _m: self._recall(valid, self.valid_k)) if valid else None
        cfg = TrainConfig(epochs=self.epochs, lr=self.lr or (2e-3 if scratch else 1e-4), weight_decay=0.01,
                          warmup_ratio=self.warmup_ratio, batch_size=self.batch_size, grad_accum=self.grad_accum,
                          row_len=self._model.config.n_positions if scratch else 512,
                          target_only_loss=self.target_only_loss, seed=self.seed,
                          checkpoint_dir=self.checkpoint_dir, patience=self.patience, progress=self.progress)
        if self.epochs > 0:
            res = train_lm(self._model, examples, cfg, pad_id=tok.eos_token_id, device=self._device, eval_fn=eval_fn)
            self.train_history_ = res.history
            self.best_epoch_ = res.best_epoch
            self.train_tokens_per_s_ = res.tokens_per_s
        else:
            self.train_history_, self.best_epoch_ = [], None
        self._model.eval()
        self.k1_, self.b_ = float(self.k1), float(self.b)
        self.bm25_grid_ = []
        if self.tune_bm25 and valid:
            self._tune_bm25(valid)
        self.fit_info_ = {"train_examples": len(examples), "valid_users": len(valid), "scratch": scratch,
                          "fit_seconds": round(time.perf_counter() - t0, 2)}
        return self

    def _build_index(self, k1: float, b: float) -> None:
        from genrec.retrieval.bm25 import BM25Index

        self._bm25 = BM25Index(k1, b).build(self.catalog.ids, self.catalog.titles)

    def _recall(self, cases, k: int, queries=None) -> float:
        recs = self._recommend([list(c.history) for c in cases], k, queries=queries)
        return float(np.mean([c.target in items for c, items in zip(cases, recs.items)]))

    def _tune_bm25(self, valid) -> None:
        """Grid-search k1, b on validation users with the queries generated once."""
        queries = self._generate([list(c.history) for c in valid])
        best = (-1.0, self.k1_, self.b_)
        for k1 in K1_GRID:
            for b in B_GRID:
                self._bm25.set_params(k1, b)
                r = self._recall(valid, self.valid_k, queries)
                self.bm25_grid_.append({"k1": k1, "b": b, f"recall@{self.valid_k}": r})
                if r > best[0] + 1e-12:
                    best = (r, k1, b)
        _, self.k1_, self.b_ = best
        self._bm25.set_params(self.k1_, self.b_)

    # -- recommending -----------------------------------------------------------------------------
    def _generate(self, histories: Sequence[Sequence[str]]) -> list[list[tuple[str, float]]]:
        from genrec.lm.generate import generate_queries

        prompts = []
        for h in histories:
            idx = self.catalog.indices(h, skip_unknown=True)
            prompts.append(self._builder.prompt_ids([self._title_ids[j] for j in idx]))
        return generate_queries(self._model, self._tok, prompts, self.num_queries, mode=self.decode,
                                max_new_tokens=self.max_new_tokens, batch_size=self.gen_batch_size,
                                device=self._device, seed=self.seed)

    def recommend(self, histories: Sequence[Sequence[str]], k: int = 10, *,
                  exclude_history: bool = True) -> Recommendations:
        self._require_fitted()
        if k <= 0:
            raise ValueError("k must be positive")
        return self._recommend(histories, k, exclude_history=exclude_history)

    def _recommend(self, histories, k: int, *, exclude_history: bool = True, queries=None) -> Recommendations:
        from genrec.retrieval.merge import rank_merge

        encoded, notes = self.encode_histories(histories)
        if not encoded:
            return Recommendations([], [], [], [])
        known = [[self.catalog.id_at(j) for j in e] for e in encoded]
        if queries is None:
            queries = self._generate(known)
        flat = [q for qs in queries for q, _ in qs]
        n = k + max((len(h) for h in known), default=0) if exclude_history else k
        found, _ = self._bm25.search(flat, n)
        items, scores, whys = [], [], []
        pos = 0
        for u, qs in enumerate(queries):
            res = found[pos:pos + len(qs)]
            pos += len(qs)
            merged = rank_merge(res, k, exclude=set(known[u]) if exclude_history else (), popular=self.popular_)
            items.append(merged.items)
            scores.append(merged.scores)
            whys.append({"queries": [{"query": q, "score": float(s), "items": c}
                                     for (q, s), c in zip(qs, merged.contributions)],
                         "filled_by_popularity": merged.filled_by_popularity})
            if not known[u]:
                notes[u].append("empty history: the queries come from the prompt words alone")
            if len(qs) < self.num_queries:
                notes[u].append(f"{len(qs)} distinct queries generated (asked for {self.num_queries})")
            if merged.filled_from_queries:
                notes[u].append(f"{merged.filled_from_queries} item(s) filled from later query results "
                                "(some queries found fewer than their share)")
            if merged.filled_by_popularity:
                notes[u].append(f"{merged.filled_by_popularity} item(s) filled by popularity "
                                "(the queries found too few items)")
        return Recommendations(items, scores, whys, notes)

    def generate_queries(self, histories: Sequence[Sequence[str]]) -> list[list[tuple[str, float]]]:
        """The queries the LM writes for each history (unknown ids ignored), best first."""
        self._require_fitted()
        return self._generate(histories)

    # -- cold start -------------------------------------------------------------------------------
    def add_items(self, items: Iterable[Item]) -> list[int]:
        """Add items after fitting; they are searchable (and recommendable) at once."""
        catalog = self._own_catalog()
        items = list(items)
        new = catalog.add(items)
        new_items = [catalog.item_at(j) for j in new]
        self._title_ids.extend(self._builder.titles_ids([it.title for it in new_items]))
        self._bm25.add([it.id for it in new_items], [it.title for it in new_items])
        return new

    def update_items(self, items: Iterable[Item]) -> None:
        """Change items' titles (or other fields) after fitting; search uses the new titles at once."""
        super().update_items(items)
        self._title_ids = self._builder.titles_ids(self.catalog.titles)
        self._bm25.build(self.catalog.ids, self.catalog.titles)

    # -- persistence ------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def _save_state(self, path: Path) -> None:
        self._model.save_pretrained(path / LM_DIR)
        self._tok.save_pretrained(path / LM_DIR)
        (path / STATE_FILE).write_text(json.dumps(self._state(), indent=1))

    def _load_state(self, path: Path) -> None:
        from genrec.lm.prompts import PromptBuilder, PromptTemplate
        from genrec.lm.scratch import load_saved
        from genrec.torch_utils import pick_device

        f = path / STATE_FILE
        if not f.is_file() or not (path / LM_DIR).is_dir():
            raise GenrecError(f"{path} has no GPT4Rec state ({STATE_FILE} and {LM_DIR}/)")
        vars(self).update(json.loads(f.read_text()))
        self._device = pick_device(self.device)
        self._model, self._tok = load_saved(path / LM_DIR, self._device)
        self._builder = PromptBuilder(self._tok, PromptTemplate.for_domain(self.domain),
                                      max_title_tokens=self.max_title_tokens, max_prompt_tokens=self.max_prompt_tokens)
        self._title_ids = self._builder.titles_ids(self.catalog.titles)
        self._build_index(self.k1_, self.b_)


def _sample(cases, n: int, seed: int) -> list:
    if n <= 0 or not cases:
        return []
    if len(cases) <= n:
        return list(cases)
    rng = np.random.default_rng(seed)
    return [cases[i] for i in sorted(rng.choice(len(cases), n, replace=False))]


def _load_pretrained(name: str, device):
    try:
        from genrec.lm.load import load_causal_lm
    except ImportError as e:  # the loader is a separate module; scratch sizes work without it
        raise GenrecError(f"lm={name!r} needs genrec.lm.load (pre-trained LM loading), which is not "
                          f"available ({e}); use a scratch size: tiny, small, base") from e
    model, tok = load_causal_lm(name, device=str(device))
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok
