"""Zero-shot rating prediction by an LLM (Chat-Rec's rating task), through genrec's LLM backends.

The prompt (a chat message, :data:`RATING`) lists the user's last ``history_items`` rated items,
oldest first, each title cleaned by the template and quoted, with its rating, then asks for the
target's rating as one digit. One forward pass per prompt: the backend's ``next_token_scores``
over the tokens "1".."5" gives a distribution over the five ratings (renormalised over them);
the prediction is its expectation (``expected``) or its most likely digit (``argmax``).

Only the ratings of the history's items are shown (for a ``loo`` case: the user's earlier
interactions), never the target's. Titles are untrusted data: :data:`RATING` cleans them
(control characters, the tokenizer's special tokens and the template's own phrases removed) and
quotes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from genrec.data.ratings import RatingCase
from genrec.prompts import PromptTemplate, cut_to_tokens

DIGITS = ("1", "2", "3", "4", "5")
RATING = PromptTemplate(
    "rating-zero-shot",
    "A user rated these movies from 1 (worst) to 5 (best), oldest first:{history}\n"
    "The movie to rate next: {target}\n"
    "How would this user rate it? Answer with a single digit from 1 (worst) to 5 (best).",
    lists={"history": "\n{item}"}, data=("target",), quote='"')


@dataclass
class LLMRater:
    """Predicts ratings with ``backend`` (a :class:`genrec.llm.types.LLMBackend`, e.g.
    ``HFBackend.load("smollm2-135m")``); ``ratings`` is the split's ``{user: {item: rating}}`` and
    ``catalog`` gives the titles."""

    backend: Any
    catalog: Any
    ratings: dict[str, dict[str, float]]
    history_items: int = 10
    max_title_tokens: int = 24
    batch_size: int = 8
    _special: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        tok = getattr(self.backend, "tokenizer", None)
        self._special = [s for s in getattr(tok, "all_special_tokens", None) or [] if s]

    def _title(self, item: str) -> str:
        tok = getattr(self.backend, "tokenizer", None)
        raw = self.catalog[item].title if item in self.catalog else ""
        t = RATING.clean(cut_to_tokens(RATING.clean(raw, self._special), self.max_title_tokens, tok), self._special)
        return t or "untitled"

    def prompt(self, case: RatingCase) -> list[dict]:
        """The chat for one case (one user message)."""
        mine = self.ratings.get(case.user, {})
        rated = [i for i in case.history if i in mine and i != case.item][-self.history_items:]
        q = RATING.quote
        lines = [f"{q}{self._title(i)}{q}: {mine[i]:g}" for i in rated]  # titles cleaned, then quoted
        text = RATING.render(self._special, history=lines, target=self._title(case.item))
        return [{"role": "user", "content": text}]

    def distributions(self, cases: Sequence[RatingCase], progress: bool = True) -> np.ndarray:
        """``(len(cases), 5)``: the probabilities of ratings 1..5, renormalised over the digits."""
        from tqdm.auto import tqdm

        out = np.zeros((len(cases), len(DIGITS)))
        bar = tqdm(total=len(cases), desc="LLM ratings", unit="rating", disable=not progress, mininterval=2.0)
        for s in range(0, len(cases), self.batch_size):
            batch = cases[s:s + self.batch_size]
            logp = np.asarray(self.backend.next_token_scores([self.prompt(c) for c in batch], list(DIGITS)))
            p = np.exp(logp - logp.max(axis=1, keepdims=True))
            out[s:s + len(batch)] = p / p.sum(axis=1, keepdims=True)
            bar.update(len(batch))
        bar.close()
        return out


def expected_rating(dist: np.ndarray) -> np.ndarray:
    """The mean rating of each row's distribution over 1..5."""
    return np.asarray(dist) @ np.arange(1, len(DIGITS) + 1, dtype=np.float64)


def argmax_rating(dist: np.ndarray) -> np.ndarray:
    """The most likely rating of each row (ties: the lower rating)."""
    return np.argmax(np.asarray(dist), axis=1).astype(np.float64) + 1.0
