"""Prompt token ids for every P5 task at inference, with the same rendering as training
(:mod:`genrec.models.p5.examples`) and a token budget: the oldest history items are dropped
until the prompt fits, then (only if it still does not fit) the prompt keeps its last tokens."""

from __future__ import annotations

from typing import Callable, Sequence

from genrec.models.p5 import examples as E
from genrec.models.p5.lm import encode
from genrec.prompts.tasks import family
from genrec.prompts.template import PromptTemplate


def fit_prompt(tok, render: Callable[[Sequence[int]], str], history: Sequence[int], budget: int) -> list[int] | None:
    """Token ids of ``render(history)``, dropping the oldest history items until they fit
    ``budget``; ``None`` when even the empty history does not fit."""
    hist = list(history)
    while True:
        ids = encode(tok, render(hist))
        if len(ids) <= budget:
            return ids
        if not hist:
            return None
        hist = hist[max(1, len(hist) // 4):] if len(ids) > 2 * budget else hist[1:]


class PromptMaker:
    """Renders and tokenizes prompts for a fitted model's identifiers."""

    def __init__(self, tok, ident: Sequence[str], max_history: int, budget: int) -> None:
        self.tok, self.ident, self.max_history, self.budget = tok, ident, max_history, budget

    def template(self, task: str, name: str | None) -> PromptTemplate:
        fam = family(task)
        return fam.seen[0] if name is None else fam.get(name)

    def _ids(self, render: Callable[[Sequence[int]], str], history: Sequence[int]) -> list[int]:
        hist = list(history)[-self.max_history:] if self.max_history else []
        ids = fit_prompt(self.tok, render, hist, self.budget)
        return ids if ids is not None else encode(self.tok, render([]))[-self.budget:]

    def sequential(self, history: Sequence[int], template: str | None = None) -> list[int]:
        t = self.template("sequential", template)
        return self._ids(lambda h: E.sequential_prompt(t, self.ident, h), history)

    def direct(self, history: Sequence[int], candidates: Sequence[int], template: str | None = None) -> list[int]:
        t = self.template("direct", template)
        return self._ids(lambda h: E.direct_prompt(t, self.ident, h, candidates), history)

    def yesno(self, history: Sequence[int], item: int, template: str | None = None) -> list[int]:
        t = self.template("yesno", template)
        return self._ids(lambda h: E.item_prompt(t, self.ident, h, item), history)

    def explanation(self, history: Sequence[int], item: int, template: str | None = None) -> list[int]:
        t = self.template("explanation", template)
        return self._ids(lambda h: E.item_prompt(t, self.ident, h, item), history)

    def rating(self, history: Sequence[int], ratings: Sequence[float], item: int,
               template: str | None = None) -> list[int]:
        t = self.template("rating", template)
        pairs = dict(zip(map(int, history), ratings))
        return self._ids(lambda h: E.rating_prompt(t, self.ident, h, [pairs[i] for i in h], item), history)
