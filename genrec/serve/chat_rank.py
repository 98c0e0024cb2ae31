"""The LLM's ranking step of ``POST /chat`` (Chat-Rec; ``genrec serve --chat-llm-rank N``).

The top N fused candidates are shown to the LLM in their fused order, labelled (A), (B), ...
(:func:`genrec.prompts.chat.rank_prompt`), and re-ordered by verbalizer scores in ONE forward
pass: the log-probability of each letter as the next token (``next_token_scores``, LlamaRec; the
same call and ordering as :func:`genrec.models.rerank.ranking.rank_tasks` in mode "verbalizer").
Highest first; ties, and letters the backend gives no finite score (an OpenAI-compatible server
lists only its top logprobs), keep the fused order after the scored ones. A failed call leaves
the fused order. Nothing the LLM writes is shown: only the place it gave each item.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any

from genrec.errors import GenrecError

log = logging.getLogger("genrec.serve")


@dataclass
class LLMOrder:
    """The LLM's order of ``n`` candidates: ``order`` (indices into the fused top ``n``, best
    first), ``scores`` (one per letter; ``-inf`` when the backend gave none), ``error`` (the call
    failed: ``order`` is the fused order)."""

    n: int
    order: list[int]
    scores: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def scored(self) -> int:
        return sum(1 for s in self.scores if math.isfinite(s))

    @property
    def used(self) -> bool:
        """Whether the LLM's scores decided the order (the call worked and scored some letter)."""
        return self.error is None and self.scored > 0

    def place(self, index: int) -> int | None:
        """The place (1 = first) the LLM gave candidate ``index``; None when it gave it no score."""
        if not self.used or not math.isfinite(self.scores[index]):
            return None
        return self.order.index(index) + 1

    def notes(self) -> list[str]:
        if self.error is not None:
            return [f"the LLM could not rank the candidates ({self.error}); they are in the fused order"]
        if self.scored == 0:
            return ["the LLM gave no score for any candidate letter; the candidates are in the fused order"]
        if self.scored < self.n:
            return [f"the LLM gave no score for {self.n - self.scored} of {self.n} candidate letters; those "
                    f"candidates follow the scored ones, in the fused order"]
        return []

    def describe(self) -> str:
        """How the top ``n`` were ordered, for the response's ``ranking``."""
        if not self.used:
            return ""
        part = "" if self.scored == self.n else f"; {self.n - self.scored} unscored kept in fused order below"
        return (f"the LLM re-ordered the top {self.n} by verbalizer scores (the log-probability of each "
                f"candidate's letter as the next token after llm.rank_prompt, one forward pass; ties keep the "
                f"fused order{part}); the fused order before that, and of the items below them: ")


def llm_order(llm: Any, prompt: Any, n: int, lock: threading.Lock) -> LLMOrder:
    """Score the ``n`` letters of ``prompt`` with ``llm.next_token_scores`` (one call, under
    ``lock``) and order the candidates by them; a failed call gives the fused order and the error."""
    from genrec.models.rerank.prompts import labels
    from genrec.models.rerank.ranking import order_by_scores

    fused = list(range(n))
    try:
        with lock:
            row = [float(s) for s in llm.next_token_scores([prompt], labels(n))[0][:n]]
    except (GenrecError, OSError, RuntimeError, ValueError) as e:
        log.warning("chat LLM ranking call failed: %s", e)
        return LLMOrder(n, fused, error=f"{type(e).__name__}: {str(e)[:200]}")
    if len(row) < n:
        return LLMOrder(n, fused, error=f"the backend returned {len(row)} scores for {n} letters")
    scores = [s if math.isfinite(s) else -math.inf for s in row]
    return LLMOrder(n, order_by_scores(scores, fused), scores)
