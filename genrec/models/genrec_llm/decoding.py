"""From prompts to ranked catalog items.

``constrained``: beam search whose every step is limited by the prefix tree of the catalog's
response ids (:class:`~genrec.llm.constrained.TokenTrie` through transformers'
``prefix_allowed_tokens_fn``), so each beam is a catalog title and stands for its items.
``grounded`` (BIGRec): free beam search; a beam that is exactly a catalog title stands for its
items, any other text for its nearest item by embedding (and counts as an invalid generation).

The list: the beams' items in beam order (best first, each item once; shared titles as
:mod:`~genrec.models.genrec_llm.titles` says), then every other item by embedding similarity to
the top beam's text (BIGRec's grounding order), so the ranking covers the whole catalog.
Scores: a beam's items get its length-normalised log-probability; the rest
``lowest beam score - 1 - (1 - cosine)``, so scores fall along the list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from genrec.models.genrec_llm.grounding import Grounder, full_order
from genrec.models.genrec_llm.titles import TitleIndex

DECODINGS = ("constrained", "grounded")
#: Beams scoring below this (length-normalised log-probability) are dead: when the prefix tree
#: leaves fewer live continuations than beams (deep in the tree most prefixes have one), the beam
#: search of transformers fills its beams with masked (-inf or -1e9) candidates and returns them
#: as copies of finished ones. They are dropped, so a list may hold fewer than ``num_beams``
#: generated items; the grounding order fills the rest.
DEAD = -1e4


@dataclass
class Beam:
    text: str
    score: float
    items: list[int]          # catalog indices this beam stands for, in list order
    valid: bool               # exactly a catalog title


@dataclass
class Ranked:
    """One history's beams and its full ranking (catalog indices, scores)."""

    beams: list[Beam]
    order: np.ndarray
    scores: np.ndarray
    notes: list[str] = field(default_factory=list)


def generate_beams(backend, prompts: list[list[int]], titles: TitleIndex, grounder: Grounder, *, decoding: str,
                   num_beams: int, max_new_tokens: int, seed: int = 0,
                   beam_width: int | None = None) -> list[list[Beam]]:
    """Beam search per prompt (``decoding``: constrained or grounded), best first: the first
    ``num_beams`` distinct live beams of a search ``beam_width`` wide (default ``num_beams``; a wider
    search makes up for the dead and duplicate beams of a narrow prefix tree, see :data:`DEAD`)."""
    from genrec.llm.types import GenParams

    if decoding not in DECODINGS:
        raise ValueError(f"decoding must be one of {', '.join(DECODINGS)}; got {decoding!r}")
    width = max(num_beams, beam_width or num_beams)
    params = GenParams(max_new_tokens=max_new_tokens, n=width, num_beams=width, decoding="beam", seed=seed)
    rows = backend.generate_ids(prompts, params, constraint=titles.trie if decoding == "constrained" else None)
    out: list[list[Beam]] = []
    pending: list[tuple[int, int, str]] = []  # (row, beam) of texts to ground by embedding
    for r, gens in enumerate(rows):
        beams: list[Beam] = []
        seen: set[tuple[int, ...]] = set()
        for g, new_ids in sorted(gens, key=lambda x: -x[0].score if np.isfinite(x[0].score) else np.inf):
            key = tuple(new_ids)
            if len(beams) >= num_beams:
                break
            if not np.isfinite(g.score) or g.score < DEAD or key in seen:
                continue  # a dead beam (see DEAD) or a copy of a finished one
            seen.add(key)
            text = g.text.strip()
            if decoding == "constrained":
                items = titles.items_for_ids(new_ids)
                if not items:  # cannot happen with the tree; never let a non-item through
                    continue
                beams.append(Beam(text, float(g.score), items, True))
            else:
                items = titles.items_for_text(text)
                beams.append(Beam(text, float(g.score), items, bool(items)))
                if not items:
                    pending.append((r, len(beams) - 1, text))
        out.append(beams)
    if pending:
        near = grounder.nearest([t for _, _, t in pending])
        for (r, b, _), j in zip(pending, near):
            out[r][b].items = [j]
    return out


def rank(beams_per_prompt: list[list[Beam]], grounder: Grounder, empty_text: str = "") -> list[Ranked]:
    """The full ranking of every item for each prompt's beams (see the module docstring)."""
    texts = [b[0].text if b else empty_text for b in beams_per_prompt]
    sims = grounder.similarities(texts)
    out = []
    for beams, sim in zip(beams_per_prompt, sims):
        n = len(sim)
        seen = np.zeros(n, dtype=bool)
        head: list[int] = []
        head_scores: list[float] = []
        for b in beams:
            for j in b.items:
                if not seen[j]:
                    seen[j] = True
                    head.append(j)
                    head_scores.append(b.score)
        rest = full_order(sim)
        rest = rest[~seen[rest]]
        floor = (min(head_scores) if head_scores else 0.0) - 1.0
        order = np.concatenate([np.asarray(head, dtype=np.int64), rest])
        scores = np.concatenate([np.asarray(head_scores, dtype=np.float64),
                                 floor - (1.0 - sim[rest].astype(np.float64))])
        notes = [] if beams else ["no beam: the list is the grounding order of an empty title"]
        out.append(Ranked(beams, order, scores, notes))
    return out


def exact_match_rank(generated: Sequence[str], target_text: str) -> int:
    """GenRec's own protocol: the 1-based position of the first generation that is exactly the
    target's title (whitespace folded), 0 when none is."""
    from genrec.models.genrec_llm.titles import normalise

    want = normalise(target_text)
    for n, t in enumerate(generated):
        if normalise(t) == want:
            return n + 1
    return 0
