"""Training examples of every P5 task family, as (prompt text, answer text), from training
sequences only.

Each example draws from its own generator seeded by (seed, user id, task, position), so an
example's template, negatives and candidates never depend on other users, on the order of the
data, or on the identity of its own answer beyond "it is in the user's sequence". Only
``seen`` templates are used; held-out templates never reach a training batch.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from genrec.prompts.tasks import DIRECT, EXPLANATION, NO, QUOTE, RATING, SEQUENTIAL, YES, YESNO, TaskFamily
from genrec.prompts.template import PromptTemplate, strip_control

TASKS = ("sequential", "direct", "yesno", "rating", "explanation")
LIKED_MIN = 4.0  # a rating >= 4 of 5 is "liked" (TALLRec's threshold on MovieLens)


@dataclass(frozen=True)
class Example:
    task: str
    template: str
    prompt: str
    answer: str


@dataclass(frozen=True)
class ExampleConfig:
    """How many examples per training user and task, and the prompt sizes."""

    per_user: dict[str, int]
    max_history: int = 10
    candidates: int = 20
    seed: int = 0
    last_only: bool = False  # one example per task: the last item is the answer (validation cases)


def _rng(seed: int, user: str, task: str, pos: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(user.encode("utf-8")), TASKS.index(task), int(pos)])


def _positions(seed: int, user: str, task: str, n_items: int, n: int) -> list[int]:
    """Up to ``n`` target positions in ``1..n_items-1`` (an item with at least one before it)."""
    if n_items < 2 or n <= 0:
        return []
    rng = _rng(seed, user, task, 10**9)
    pos = np.arange(1, n_items)
    return sorted(int(p) for p in (pos if len(pos) <= n else rng.choice(pos, n, replace=False)))


def sample_others(rng: np.random.Generator, n_items: int, banned: set[int], n: int) -> list[int]:
    """``n`` distinct item indices in ``range(n_items)`` outside ``banned`` (fewer if the catalog
    runs out). Rejection sampling: a history is small next to the catalog."""
    free = n_items - len(banned)
    n = min(n, max(free, 0))
    out: list[int] = []
    seen: set[int] = set()
    if n and free < 4 * n:  # a crowded catalog: draw from the explicit list instead
        rest = np.array([i for i in range(n_items) if i not in banned])
        return [int(x) for x in rng.choice(rest, n, replace=False)]
    while len(out) < n:
        x = int(rng.integers(n_items))
        if x not in banned and x not in seen:
            seen.add(x)
            out.append(x)
    return out


def _pick(rng: np.random.Generator, fam: TaskFamily) -> PromptTemplate:
    return fam.seen[int(rng.integers(len(fam.seen)))]


def sequential_prompt(t: PromptTemplate, ident: Sequence[str], history: Sequence[int]) -> str:
    return t.render(history=[ident[i] for i in history])


def direct_prompt(t: PromptTemplate, ident: Sequence[str], history: Sequence[int], candidates: Sequence[int]) -> str:
    return t.render(history=[ident[i] for i in history], candidates=[ident[i] for i in candidates])


def item_prompt(t: PromptTemplate, ident: Sequence[str], history: Sequence[int], item: int) -> str:
    """A yes/no or explanation prompt: the history and one item."""
    return t.render(history=[ident[i] for i in history], item=ident[item])


def rating_prompt(t: PromptTemplate, ident: Sequence[str], history: Sequence[int], ratings: Sequence[float],
                  item: int) -> str:
    liked = [ident[i] for i, r in zip(history, ratings) if r >= LIKED_MIN]
    disliked = [ident[i] for i, r in zip(history, ratings) if r < LIKED_MIN]
    return t.render(liked=liked, disliked=disliked, item=ident[item])


def rating_answer(r: float) -> str:
    return str(int(min(5, max(1, round(float(r))))))


def build_examples(users: Sequence[str], seqs: Sequence[np.ndarray], ident: Sequence[str], n_items: int,
                   cfg: ExampleConfig, ratings: Sequence[Sequence[float] | None] | None = None,
                   reviews: Sequence[Sequence[str] | None] | None = None) -> list[Example]:
    """Examples of every task in ``cfg.per_user`` (rating needs ``ratings``, explanation needs
    ``reviews``: parallel to ``seqs``, ``None`` for a user without them)."""
    out: list[Example] = []
    h = cfg.max_history
    for n, (user, seq) in enumerate(zip(users, seqs)):
        s = [int(x) for x in seq]
        user_items = set(s)
        r_u = ratings[n] if ratings is not None else None
        v_u = reviews[n] if reviews is not None else None
        for task, k in cfg.per_user.items():
            if task == "rating" and r_u is None or task == "explanation" and v_u is None:
                continue
            positions = ([len(s) - 1] if len(s) > 1 and k > 0 else []) if cfg.last_only else \
                _positions(cfg.seed, user, task, len(s), k)
            for t in positions:
                rng = _rng(cfg.seed, user, task, t)
                hist = s[max(0, t - h):t]
                if task == "sequential":
                    tm = _pick(rng, SEQUENTIAL)
                    out.append(Example(task, tm.name, sequential_prompt(tm, ident, hist), ident[s[t]]))
                elif task == "direct":
                    tm = _pick(rng, DIRECT)
                    cands = [s[t]] + sample_others(rng, n_items, user_items, cfg.candidates - 1)
                    cands = [cands[j] for j in rng.permutation(len(cands))]
                    out.append(Example(task, tm.name, direct_prompt(tm, ident, hist, cands), ident[s[t]]))
                elif task == "yesno":
                    tm = _pick(rng, YESNO)
                    positive = bool(rng.integers(2))
                    neg = sample_others(rng, n_items, user_items, 1)
                    item = s[t] if positive or not neg else neg[0]
                    out.append(Example(task, tm.name, item_prompt(tm, ident, hist, item),
                                       YES if item == s[t] else NO))
                elif task == "rating" and r_u is not None:
                    tm = _pick(rng, RATING)
                    out.append(Example(task, tm.name, rating_prompt(tm, ident, hist, r_u[max(0, t - h):t], s[t]),
                                       rating_answer(r_u[t])))
                elif task == "explanation" and v_u is not None:
                    text = strip_control(v_u[t] or "").replace(QUOTE, " ").strip()
                    if text:
                        tm = _pick(rng, EXPLANATION)
                        out.append(Example(task, tm.name, item_prompt(tm, ident, hist, s[t]), text))
                elif task not in TASKS:
                    raise ValueError(f"unknown P5 task {task!r}; known: {', '.join(TASKS)}")
    return out
