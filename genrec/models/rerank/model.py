"""``llm-rerank``: an LLM re-orders the top N candidates of any registered retriever.

- Candidates: the retriever's top ``candidates`` (N, default 20) for the history; the LLM re-orders
  them (``mode``: verbalizer, likelihood or listwise, :mod:`~genrec.models.rerank.ranking`); the
  retriever's items after the top N follow in its own order, so metrics cover the full catalog.
- The LLM is any :class:`~genrec.llm.types.LLMBackend` named by ``backend``
  (:mod:`~genrec.models.rerank.backends`); prompts: :mod:`~genrec.models.rerank.prompts`.
- ``why``: one :class:`~genrec.core.why.Explanation` per re-ranked item in the list, citing
  history items and catalog attributes only (:mod:`~genrec.models.rerank.evidence`).
- Catalog edits: the retriever and the prompts keep the catalog as of ``fit``; items added later
  are never recommended (no ``cold_start_items``) and an edited title reaches the prompts after a
  refit (no ``text_updates``), as the capability flags promise.
- Listwise parse failures are counted in :attr:`LLMRerank.rerank_stats` and noted per list.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Collection, Sequence

from genrec.core.capabilities import Capabilities
from genrec.core.why import Why
from genrec.errors import GenrecError
from genrec.models.base import Recommendations, Recommender
from genrec.models.rerank.evidence import explain
from genrec.models.rerank.fine_tune import (TRAIN_HELP, check_training, load_adapter, save_adapter,
                                            train_verbalizer)
from genrec.models.rerank.fitting import choose_retriever, draw_examples, retriever_choices
from genrec.models.rerank.listwise import ListwiseStats
from genrec.models.rerank.profile import Profile, build_profile, category_word, check_fields
from genrec.models.rerank.prompts import Example, PromptMaker
from genrec.models.rerank.reasons import CatalogVocabulary, unsupported_citations, write_reasons
from genrec.models.rerank.ranking import MODES, Task, rank_tasks

RETRIEVER_DIR, LM_DIR, STATE_FILE = "retriever", "lm", "rerank_state.json"
MAX_SHOTS, SHOT_CANDIDATES = 8, 5  # examples drawn at fit; candidates shown per example


class LLMRerank(Recommender):
    """A retriever's top N re-ordered by an LLM (see the module docstring)."""

    name = "llm-rerank"
    capabilities = Capabilities(takes_exclude=True, explains=True)
    param_help = {
        "retriever": "registered model whose top N are the candidates (fitted by this model's fit)",
        "retriever_params": "the retriever's constructor parameters, as a JSON object",
        "backend": "the LLM: 'smollm2-135m', 'hf:<hub id or folder>', 'openai:<base_url>#<model>', or "
                   "'scratch' (an untrained tiny GPT-2, for tests)",
        "mode": "ranking: verbalizer (letter scores, one forward pass), likelihood (title log-likelihood) "
                "or listwise (the LLM writes the letters; parse failures counted)",
        "candidates": "N: the retriever's top N items are re-ranked (letters A.., so at most 26)",
        "history_items": "the most recent history titles shown in the prompt",
        "max_title_tokens": "each title is cut to this many tokens in prompts",
        "bootstrap": "position-bias bootstrapping: B seeded shuffles of the candidates, rank points summed (0 = off)",
        "batch_size": "prompts per forward pass of a local backend",
        "max_new_tokens": "listwise: the longest answer, in tokens; null = 3 per candidate + 8",
        "cache": "LLM record-replay cache: null/off, record or replay (genrec.llm.cache)",
        **TRAIN_HELP,
        "profile": "user profile in words in the prompt and in why (Chat-Rec): off or on",
        "profile_fields": "profile facts that may be used, comma-separated: age, gender, occupation (MovieLens "
                          "user data), categories (genres for MovieLens), brands",
        "shots": "in-context examples from training sequences shown before the user (few-shot; 0 = zero-shot)",
        "recency": "add LLMRank's recency line (the item the user chose most recently is X)",
        "chat": "wrap the prompt in the backend's chat template (instruct models), the answer cue after it",
        "retriever_valid_users": "retriever='auto' or a list: validation cases used to choose the retriever",
        "explain": "explanations: grounded (fixed sentences from history and catalog) or llm (plus one "
                   "generated sentence per top item, checked for invented citations)",
        "explain_top": "explain='llm': how many top items per user get a generated sentence",
    }

    def __init__(self, retriever: str = "itemknn", retriever_params: dict | None = None,
                 backend: str = "smollm2-135m", mode: str = "verbalizer", candidates: int = 20,
                 history_items: int = 10, max_title_tokens: int = 32, bootstrap: int = 0, seed: int = 0,
                 batch_size: int = 8, max_new_tokens: int | None = None, cache: str | None = None,
                 device: str | None = None, bf16: bool | None = None, train_users: int = 0,
                 negatives: str = "retriever", label_loss: str = "vocab", lora_r: int = 8, lora_alpha: int = 32,
                 lora_dropout: float = 0.05, lora_layers: int = 0, lr: float = 1e-4, epochs: int = 1,
                 train_batch_size: int = 4, valid_users: int = 50, eval_every: int | None = None,
                 patience: int | None = None, max_steps: int | None = None, time_budget: float | None = None,
                 checkpoint_dir: str | None = None, progress: bool = False, profile: str = "off",
                 profile_fields: str = "age,gender,occupation,categories,brands", shots: int = 0,
                 recency: bool = False, chat: bool = False, retriever_valid_users: int = 300,
                 explain: str = "grounded", explain_top: int = 1) -> None:
        self.retriever = retriever
        self.retriever_params = retriever_params
        self.backend = backend
        self.mode = mode
        self.candidates = candidates
        self.history_items = history_items
        self.max_title_tokens = max_title_tokens
        self.bootstrap = bootstrap
        self.seed = seed
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.cache = cache
        self.device = device
        self.bf16 = bf16
        self.train_users, self.negatives, self.label_loss = train_users, negatives, label_loss
        self.lora_r, self.lora_alpha, self.lora_dropout, self.lora_layers = lora_r, lora_alpha, lora_dropout, lora_layers
        self.lr, self.epochs, self.train_batch_size, self.valid_users = lr, epochs, train_batch_size, valid_users
        self.eval_every, self.patience, self.max_steps, self.time_budget = eval_every, patience, max_steps, time_budget
        self.checkpoint_dir, self.progress = checkpoint_dir, progress
        self.adapter_: dict | None = None
        self.profile = profile
        self.profile_fields = profile_fields
        self.shots = shots
        self.recency = recency
        self.chat = chat
        self.retriever_valid_users = retriever_valid_users
        self.explain = explain
        self.explain_top = explain_top
        self._check()  # cheap, so a bad value fails before any data is loaded

    # -- checks -----------------------------------------------------------------------------------
    def _check(self) -> None:
        from genrec.models.rerank.backends import parse_backend
        from genrec.models.registry import MODELS

        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if not 2 <= int(self.candidates) <= 26:
            raise ValueError(f"candidates must be between 2 and 26 (one letter each), got {self.candidates}")
        names = retriever_choices(self.retriever)
        if not names or any(r == self.name or r not in MODELS for r in names):
            raise ValueError(f"retriever must be 'auto', a registered model other than {self.name} or a "
                             f"comma-separated list of them; got {self.retriever!r}")
        if self.retriever_params is not None and not isinstance(self.retriever_params, dict):
            raise ValueError(f"retriever_params must be a JSON object, got {self.retriever_params!r}")
        if self.history_items < 0 or self.max_title_tokens < 1 or self.bootstrap < 0 or self.batch_size < 1:
            raise ValueError("history_items and bootstrap must be >= 0, max_title_tokens and batch_size >= 1")
        spec = parse_backend(self.backend)
        check_training(self, spec.kind)
        if self.profile not in ("off", "on"):
            raise ValueError(f"profile must be off or on, got {self.profile!r}")
        check_fields(self._profile_fields())
        if self.shots < 0 or self.explain_top < 0 or self.retriever_valid_users < 1:
            raise ValueError("shots and explain_top must be >= 0, retriever_valid_users >= 1")
        if self.explain not in ("grounded", "llm"):
            raise ValueError(f"explain must be grounded or llm, got {self.explain!r}")

    def _profile_fields(self) -> list[str]:
        f = self.profile_fields
        return [x.strip() for x in (f.split(",") if isinstance(f, str) else f) if x.strip()]

    # -- fitting ----------------------------------------------------------------------------------
    def fit(self, split) -> "LLMRerank":
        from genrec.models.registry import create

        self._check()
        self.retriever_, chosen = choose_retriever(retriever_choices(self.retriever), self.retriever_params, split,
                                                   n=int(self.candidates), valid_users=self.retriever_valid_users,
                                                   seed=self.seed)
        self.catalog = split.catalog
        self.user_features_ = {str(u): dict(f) for u, f in (split.user_features or {}).items()}
        self.dataset_ = split.info.get("dataset")
        self.examples_ = [asdict(e) for e in draw_examples(split, MAX_SHOTS, candidates=SHOT_CANDIDATES,
                                                         history_items=min(self.history_items, 5), seed=self.seed)]
        self._open_backend()
        self.fit_info_ = {**chosen, "llm": self.llm.describe().get("model"),
                          "shots_from_training_users": [e["user"] for e in self.examples_[:self.shots]]}
        self.adapter_ = None
        if self.train_users > 0:
            self.fit_info_.update(train_verbalizer(self, split))
        return self

    def _open_backend(self, saved: Path | None = None) -> None:
        from genrec.models.rerank import backends as B

        spec = B.parse_backend(self.backend)
        dev, bf16, bs, cache = self.device, self.bf16, self.batch_size, self.cache
        if spec.kind != "scratch":
            self.llm = B.open_backend(spec, device=dev, bf16=bf16, batch_size=bs, cache=cache)
        elif saved is not None:
            from genrec.lm.scratch import load_saved

            model, tok = load_saved(saved, self.device)
            self.llm = B.wrap_local(model, tok, model_id="scratch:tiny", device=dev, bf16=bf16, batch_size=bs,
                                    cache=cache)
        else:
            from genrec.models.rerank.prompts import TEMPLATES

            words = [t.words() for t in TEMPLATES.values()] * 20 + ["A, B, C, D, E, F, G, H, I, J"] * 20
            self.llm = B.scratch_backend(self.retriever_._require_fitted().titles + words, seed=self.seed, device=dev,
                                         bf16=bf16, batch_size=bs, cache=cache)
        self.reconfigure()
        self._stats = ListwiseStats()
        self._top_from: dict[int, int] = {}

    def reconfigure(self, **params: Any) -> "LLMRerank":
        """Change prompt/ranking parameters (mode, profile, shots, recency, chat, bootstrap,
        history_items, explain...) of a fitted model without refitting the retriever or reloading
        the LLM; the prompts are rebuilt."""
        if "retriever" in params or "retriever_params" in params or "backend" in params:
            raise ValueError("reconfigure changes prompt parameters only; refit for retriever or backend")
        self.set_params(**params)
        self._check()
        known = self.retriever_._require_fitted()
        examples = [Example(tuple(known[i].title for i in e["history"]), tuple(known[i].title for i in e["candidates"]),
                            int(e["answer"])) for e in getattr(self, "examples_", [])[:self.shots]]
        if len(examples) < self.shots:
            raise ValueError(f"shots={self.shots}: only {len(examples)} examples were drawn at fit (at most {MAX_SHOTS})")
        chat = None
        if self.chat:
            chat = getattr(self.llm, "render_chat", None)
            if chat is None:
                raise ValueError(f"chat=true: the backend {self.backend!r} has no chat template here")
        self._maker = PromptMaker(self.mode, self.history_items, self.max_title_tokens,
                                  getattr(self.llm, "tokenizer", None), profile=self.profile == "on",
                                  recency=bool(self.recency), examples=examples, chat=chat)
        return self

    def profile_of(self, history: Sequence[str], user: str | None = None) -> Profile:
        """The profile of a user (features by ``user`` id, preferences from ``history``)."""
        feats = self.user_features_.get(str(user)) if user is not None else None
        return build_profile(history, self.retriever_._require_fitted(), feats, fields=self._profile_fields(),
                             category_word=category_word(self.dataset_))

    @property
    def rerank_stats(self) -> dict:
        """Since the model was fitted or loaded: listwise parse counts (:class:`ListwiseStats`) and
        ``top_from_retriever_rank``: how many re-ranked lists put first the retriever's r-th item
        (r -> count; all 1s means the LLM never moved anything to the top)."""
        return {**self._stats.as_dict(), "top_from_retriever_rank": dict(sorted(self._top_from.items()))}

    # -- recommending -----------------------------------------------------------------------------
    def recommend(self, histories: Sequence[Sequence[str]], k: int = 10, *, exclude_history: bool = True,
                  exclude: Collection[str] = (), users: Sequence[str | None] | None = None) -> Recommendations:
        """Top ``k`` per history: the retriever's top N re-ordered by the LLM, then the retriever's rest.
        ``users`` (optional, one id per history) lets the profile use that user's own features."""
        self._require_fitted()
        if k <= 0:
            raise ValueError("k must be positive")
        _, notes = self.encode_histories(histories)  # notes for ids unknown to the model
        ret = self.retriever_
        known = ret._require_fitted()
        hists = [[i for i in h if i in known] for h in histories]
        banned = set(exclude)
        fetch = max(k, int(self.candidates))
        if ret.capabilities.takes_exclude:
            base = ret.recommend(hists, fetch, exclude_history=exclude_history, exclude=sorted(banned))
        else:
            base = ret.recommend(hists, fetch + len(banned), exclude_history=exclude_history)
        if users is not None and len(users) != len(hists):
            raise ValueError(f"users: {len(users)} ids for {len(hists)} histories")
        profiles = [self.profile_of(h, users[n] if users is not None else None) if self.profile == "on" else None
                    for n, h in enumerate(hists)]
        tasks = []
        for n, h in enumerate(hists):
            items = [i for i in base.items[n] if i not in banned]
            top = items[:int(self.candidates)]
            notes[n] = notes[n] + [x for x in base.notes[n] if "unknown item id" not in x]
            prof = profiles[n]
            tasks.append((Task(self._maker.shown_history([known[i].title for i in h]), top,
                               [known[i].title for i in top], profile=prof.text() if prof else ""), items[len(top):]))
        for s in range(0, len(tasks), self.batch_size):
            rank_tasks(self.llm, self._maker, [t for t, _ in tasks[s:s + self.batch_size]],
                       bootstrap=self.bootstrap, seed=self.seed, stats=self._stats,
                       max_new_tokens=self.max_new_tokens)
        reasons = self._llm_reasons(tasks, hists, profiles, k) if self.explain == "llm" else {}
        out_items, out_scores, whys = [], [], []
        for n, (task, rest) in enumerate(tasks):
            ranked = [task.candidate_ids[i] for i in task.order]
            if len(ranked) > 1:
                self._top_from[task.order[0] + 1] = self._top_from.get(task.order[0] + 1, 0) + 1
            final = (ranked + rest)[:k]
            out_items.append(final)
            out_scores.append([1.0 / (p + 1) for p in range(len(final))])
            shown = self._maker.shown_history(hists[n])
            expl = tuple(explain(ranked[p], shown, known, mode=self.mode, rank=p + 1, of=len(ranked),
                                 retriever_rank=task.order[p] + 1, reason=reasons.get((n, p)))
                         for p in range(min(k, len(ranked))))
            info = {"mode": self.mode, "candidates": len(ranked), "llm": self.llm.model_id,
                    "retriever": (getattr(self, "fit_info_", None) or {}).get("retriever", self.retriever),
                    "shots": self.shots, "recency": bool(self.recency), "chat": bool(self.chat)}
            extra: dict[str, Any] = {"rerank": info}
            if reasons:
                extra["llm_reasons"] = [{"item_id": ranked[p], "text": reasons[(n, p)][0],
                                         "unsupported": reasons[(n, p)][1]}
                                        for p in range(len(ranked)) if (n, p) in reasons]
            prof = profiles[n]
            whys.append(Why(explanations=expl, profile=prof.text() if prof else None, extra=extra))
            notes[n].extend(task.notes)
        return Recommendations(out_items, out_scores, whys, notes)

    def _llm_reasons(self, tasks, hists, profiles, k: int) -> dict[tuple[int, int], tuple[str, list[str]]]:
        """(user index, rank) -> (generated sentence, its unsupported citations) for each user's top
        ``explain_top`` items."""
        known = self.retriever_._require_fitted()
        if not hasattr(self, "_vocab"):
            self._vocab = CatalogVocabulary.of(known)
        keys, hist_titles, item_titles = [], [], []
        for n, (task, _) in enumerate(tasks):
            for p in range(min(self.explain_top, k, len(task.order))):
                keys.append((n, p))
                hist_titles.append(task.history)
                item_titles.append(task.candidates[task.order[p]])
        texts = write_reasons(self.llm, hist_titles, item_titles, max_title_tokens=self.max_title_tokens,
                              tokenizer=getattr(self.llm, "tokenizer", None)) if keys else []
        out = {}
        for (n, p), text in zip(keys, texts):
            task = tasks[n][0]
            item = task.candidate_ids[task.order[p]]
            shown = self._maker.shown_history(hists[n])
            allowed = profiles[n].cited() if profiles[n] else set()
            out[(n, p)] = (text, unsupported_citations(text, item, shown, known, self._vocab, allowed))
        return out

    # -- persistence ------------------------------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        self.retriever_.save(path / RETRIEVER_DIR)
        if self.backend == "scratch":  # the base weights: a trained adapter is saved on its own
            getattr(self, "_base_lm", self.llm.model).save_pretrained(path / LM_DIR)
            self.llm.tokenizer.save_pretrained(path / LM_DIR)
        save_adapter(self, path)
        (path / STATE_FILE).write_text(json.dumps({"llm": self.llm.model_id, "lora": self.adapter_ is not None,
                                                   "fit_info": self.fit_info_,
                                                   "user_features": self.user_features_, "dataset": self.dataset_,
                                                   "examples": self.examples_}))

    def _load_state(self, path: Path) -> None:
        from genrec.models.registry import load_model

        if not (path / STATE_FILE).is_file() or not (path / RETRIEVER_DIR).is_dir():
            raise GenrecError(f"{path} has no llm-rerank state ({STATE_FILE} and {RETRIEVER_DIR}/)")
        self._check()
        self.retriever_ = load_model(path / RETRIEVER_DIR)
        state = json.loads((path / STATE_FILE).read_text())
        self.fit_info_ = state.get("fit_info") or {"retriever": self.retriever}
        self.user_features_ = state.get("user_features") or {}
        self.dataset_ = state.get("dataset")
        self.examples_ = state.get("examples") or []
        self._open_backend(path / LM_DIR if self.backend == "scratch" else None)
        load_adapter(self, path)

    def describe_llm(self) -> dict[str, Any]:
        """The backend's description (model, cache, usage) for a run card."""
        return self.llm.describe()
