"""The three ways an LLM orders one user's candidates, each through the backend protocol only.

- ``verbalizer`` (LlamaRec): one prompt with the candidates labelled by letters; the next-token
  log-probabilities of the letters (``next_token_scores``, one forward pass) are the scores.
- ``likelihood``: the length-normalised log-likelihood of each candidate's title after the prompt
  (``score``; the prompt's work is shared across candidates by the local backend).
- ``listwise`` (LLMRank): the model writes the letters best first (``generate``, greedy); parsed
  by :mod:`genrec.models.rerank.listwise`, failures counted.

Position bias: with ``bootstrap = B > 0`` the candidates are shown in B seeded shuffles (the
seed and the candidate ids fix them, so a user's list does not depend on the batch), each pass's
ranking gives ``n - position`` points, and the points are summed (LLMRank's merge). The likelihood
mode shows no candidate list, so it has no position to bias and makes one pass.
Ties (in scores or points) keep the retriever's order.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from genrec.models.rerank.listwise import ListwiseStats, note_for, parse_ranking
from genrec.models.rerank.prompts import PromptMaker, labels

MODES = ("verbalizer", "likelihood", "listwise")


@dataclass
class Task:
    """One user's re-ranking job: history titles (oldest first) and candidate ids and titles in
    retriever order, the profile sentence (when shown); ``order`` and ``notes`` are filled by :func:`rank_tasks`."""

    history: list[str]
    candidate_ids: list[str]
    candidates: list[str]
    order: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: str = ""


def shuffles(candidate_ids: Sequence[str], bootstrap: int, seed: int) -> list[list[int]]:
    """The orders the candidates are shown in: the retriever's, or ``bootstrap`` seeded shuffles."""
    n = len(candidate_ids)
    if bootstrap <= 0:
        return [list(range(n))]
    rng = np.random.default_rng([int(seed), zlib.crc32("\x1f".join(candidate_ids).encode())])
    return [rng.permutation(n).tolist() for _ in range(bootstrap)]


def order_by_scores(scores: Sequence[float], perm: Sequence[int]) -> list[int]:
    """Candidate indices (into the retriever's order) best first, from scores per shown position;
    ties and non-finite scores (last) keep the retriever's order (also the chat ranking step)."""
    def key(p: int) -> tuple[float, int]:
        s = scores[p]
        return (-s if math.isfinite(s) else math.inf, perm[p])
    return [perm[p] for p in sorted(range(len(perm)), key=key)]


def rank_tasks(backend, maker: PromptMaker, tasks: Sequence[Task], *, bootstrap: int = 0, seed: int = 0,
               stats: ListwiseStats | None = None, max_new_tokens: int | None = None) -> None:
    """Fill ``task.order`` (a permutation of ``range(len(task.candidates))``) for every task."""
    mode = maker.mode
    todo = [t for t in tasks if len(t.candidates) > 1]
    for t in tasks:
        if len(t.candidates) <= 1:
            t.order = list(range(len(t.candidates)))
    if not todo:
        return
    if mode == "likelihood":
        for t in todo:
            prompt = maker.render(t.history, profile=t.profile)
            got = backend.score(prompt, [maker.continuation(c) for c in t.candidates])
            t.order = order_by_scores([s.mean for s in got], list(range(len(t.candidates))))
        return
    jobs = [(t, perm) for t in todo for perm in shuffles(t.candidate_ids, bootstrap, seed)]
    prompts = [maker.render(t.history, [t.candidates[i] for i in perm], t.profile) for t, perm in jobs]
    passes: list[list[int]] = []
    if mode == "verbalizer":
        letters = labels(max(len(t.candidates) for t in todo))
        rows = backend.next_token_scores(prompts, letters)
        for (t, perm), row in zip(jobs, rows):
            row = row[:len(perm)]
            unlisted = sum(1 for s in row if not math.isfinite(s))
            if unlisted:
                t.notes.append(f"verbalizer: the backend gave no score for {unlisted} candidate letter(s); "
                               f"they keep the retriever's order at the end")
            passes.append(order_by_scores(row, perm))
    elif mode == "listwise":
        from genrec.llm.types import GenParams

        n_max = max(len(t.candidates) for t in todo)
        params = GenParams(max_new_tokens=max_new_tokens or 3 * n_max + 8, temperature=0.0, stop=("\n\n",))
        gens = backend.generate(prompts, params)
        for (t, perm), g in zip(jobs, gens):
            text = g[0].text if g else ""
            parsed = parse_ranking(text, labels(len(perm)))
            if stats is not None:
                stats.add(parsed, text)
            note = note_for(parsed)
            if note:
                t.notes.append(note)
            passes.append([perm[p] for p in parsed.order])
    else:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    points: dict[int, np.ndarray] = {}
    for (t, _), ranking in zip(jobs, passes):
        pts = points.setdefault(id(t), np.zeros(len(t.candidates)))
        pts[ranking] += np.arange(len(ranking), 0, -1)
    for t in todo:
        pts = points[id(t)]
        t.order = sorted(range(len(t.candidates)), key=lambda i: (-pts[i], i))
