"""P5's other tasks on a fitted model: direct recommendation among candidates, the yes/no
question scored by P(Yes), rating prediction, and explanation generation.

Each takes ``template`` (a template name of the task, seen or held out; default: the task's
first seen template), so evaluation can compare seen and held-out wordings.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from genrec.prompts.tasks import NO, RATINGS, YES


class P5TasksMixin:
    """Needs the fitted attributes of :class:`genrec.models.p5.model.P5`."""

    _tok: Any
    _prompts: Any
    _answer_ids: list[list[int]]
    _bf16: bool
    n_items_: int

    def _require_lm(self) -> Any:  # pragma: no cover - provided by P5
        raise NotImplementedError

    def _indices(self, items: Sequence[str]) -> list[int | None]:
        index = self._require_fitted()._index  # type: ignore[attr-defined]
        return [j if j is not None and j < self.n_items_ else None for j in (index.get(i) for i in items)]

    def _history(self, history: Sequence[str]) -> list[int]:
        return [j for j in self._indices(history) if j is not None]

    def _answer_token(self, word: str) -> int:
        """The first token of `` word`` (the answer follows the prompt after a space)."""
        from genrec.models.p5.lm import encode

        return encode(self._tok, " " + word)[0]

    # -- direct recommendation ----------------------------------------------------------------------
    def score_candidates(self, histories: Sequence[Sequence[str]], candidates: Sequence[Sequence[str]],
                         template: str | None = None, batch_size: int = 64) -> list[list[float]]:
        """Per history, the log-likelihood of each candidate's identifier as the answer of the
        direct task (all candidates listed in the prompt, in the order given). An unknown
        candidate scores ``-inf``."""
        from genrec.models.p5.scoring import continuation_logprobs

        model = self._require_lm()
        eos = self._tok.eos_token_id
        pairs, where = [], []
        for n, (h, cands) in enumerate(zip(histories, candidates)):
            idx = self._indices(cands)
            known = [j for j in idx if j is not None]
            prompt = self._prompts.direct(self._history(h), known, template)
            for c, j in enumerate(idx):
                if j is not None:
                    pairs.append((prompt, self._answer_ids[j] + [eos]))
                    where.append((n, c))
        out = [[-np.inf] * len(c) for c in candidates]
        scores = continuation_logprobs(model, pairs, pad_id=self._tok.pad_token_id, batch_size=batch_size,
                                       bf16=self._bf16)
        for (n, c), s in zip(where, scores):
            out[n][c] = float(s)
        return out

    # -- yes / no -----------------------------------------------------------------------------------
    def prob_yes(self, histories: Sequence[Sequence[str]], items: Sequence[str], template: str | None = None,
                 batch_size: int = 64) -> np.ndarray:
        """P(Yes) of "will the user like this item?", normalised over the answers Yes and No
        (TALLRec's score). An unknown item gets NaN."""
        from genrec.models.p5.scoring import next_token_logprobs

        model = self._require_lm()
        idx = self._indices(items)
        rows = [n for n, j in enumerate(idx) if j is not None]
        prompts = [self._prompts.yesno(self._history(histories[n]), idx[n], template) for n in rows]
        toks = [self._answer_token(YES), self._answer_token(NO)]
        lp = next_token_logprobs(model, prompts, toks, pad_id=self._tok.pad_token_id, batch_size=batch_size,
                                 bf16=self._bf16)
        out = np.full(len(items), np.nan)
        if rows:
            out[rows] = 1.0 / (1.0 + np.exp(lp[:, 1] - lp[:, 0]))
        return out

    # -- rating ---------------------------------------------------------------------------------------
    def rating_distribution(self, histories: Sequence[Sequence[str]], history_ratings: Sequence[Sequence[float]],
                            items: Sequence[str], template: str | None = None, batch_size: int = 64) -> np.ndarray:
        """``(n, 5)``: P(rating = 1..5), normalised over the five answers."""
        from genrec.models.p5.scoring import next_token_logprobs

        model = self._require_lm()
        idx = self._indices(items)
        prompts = []
        for h, r, j in zip(histories, history_ratings, idx):
            known = [(i, x) for i, x in zip(self._indices(h), r) if i is not None]
            prompts.append(self._prompts.rating([i for i, _ in known], [x for _, x in known],
                                                j if j is not None else 0, template))
        toks = [self._answer_token(r) for r in RATINGS]
        lp = next_token_logprobs(model, prompts, toks, pad_id=self._tok.pad_token_id, batch_size=batch_size,
                                 bf16=self._bf16)
        p = np.exp(lp - lp.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[[n for n, j in enumerate(idx) if j is None]] = np.nan
        return p

    def rate(self, histories: Sequence[Sequence[str]], history_ratings: Sequence[Sequence[float]],
             items: Sequence[str], template: str | None = None) -> np.ndarray:
        """The expected rating under :meth:`rating_distribution` (NaN for an unknown item)."""
        p = self.rating_distribution(histories, history_ratings, items, template)
        return p @ np.arange(1, len(RATINGS) + 1, dtype=np.float64)

    def predict_ratings(self, users: Sequence[str], items: Sequence[str], template: str | None = None) -> np.ndarray:
        """:mod:`genrec.eval.rating`'s predictor protocol: each user's prompt holds their last
        ``max_history`` rated training items (kept at fit); a user without any gets an empty one."""
        table = getattr(self, "train_ratings_", None) or {}
        hist = [[i for i, _ in table.get(u, [])] for u in users]
        rats = [[r for _, r in table.get(u, [])] for u in users]
        return self.rate(hist, rats, items, template)

    # -- explanation ----------------------------------------------------------------------------------
    def explain(self, histories: Sequence[Sequence[str]], items: Sequence[str], template: str | None = None,
                max_new_tokens: int = 32) -> list[str]:
        """A generated review of each item for each history (greedy). Meaningful only when the
        model was trained on review text (``"explanation" in tasks_trained_``)."""
        from genrec.lm.generate import generate_sequences

        model = self._require_lm()
        idx = self._indices(items)
        prompts = [self._prompts.explanation(self._history(h), j if j is not None else 0, template)
                   for h, j in zip(histories, idx)]
        rows = generate_sequences(model, self._tok, prompts, mode="greedy", max_new_tokens=max_new_tokens,
                                  batch_size=16, bf16=self._bf16, device=next(model.parameters()).device)
        return [r[0][0].strip() if j is not None else "" for r, j in zip(rows, idx)]
