"""Grounded explanations: for each re-ranked item, evidence taken from the user's history and the
catalog only, and a reason written from that evidence by a fixed sentence (no generated text, so
nothing in it can be invented). With ``explain="llm"`` a generated sentence is appended, marked
as such, with what it cites that the data does not (:mod:`.reasons`).

Evidence for a candidate: the history item (of those shown in the prompt) whose title shares the
most words with the candidate's (ties: the most recent), the most recent history item of the same
brand, and the most recent one sharing a category.
"""

from __future__ import annotations

import re
from typing import Sequence

from genrec.core.why import Evidence, Explanation
from genrec.data.catalog import Catalog

_WORD = re.compile(r"[^\W_]+")
_STOP = frozenset("the and for with from this that you your are was were his her its our their of in on at to by "
                  "a an or oz ml".split())


def title_words(title: str) -> set[str]:
    """Lower-cased words of a title, without stop words and one-character words."""
    return {w for w in _WORD.findall(title.lower()) if len(w) > 1 and w not in _STOP}


def explain(item_id: str, history: Sequence[str], catalog: Catalog, *, mode: str, rank: int, of: int,
            retriever_rank: int, reason: tuple[str, list[str]] | None = None) -> Explanation:
    """The explanation of ``item_id`` ranked ``rank`` (1-based) of ``of`` candidates by the LLM;
    ``reason`` (``explain="llm"``): a generated sentence and its unsupported citations, appended
    and marked as generated (and unchecked claims named)."""
    item = catalog[item_id]
    words = title_words(item.title)
    ev: list[Evidence] = []
    reasons: list[str] = []
    best: str | None = None
    best_shared: set[str] = set()
    for h in reversed(history):  # most recent first, so ties go to the most recent
        shared = words & title_words(catalog[h].title)
        if len(shared) > len(best_shared):
            best, best_shared = h, shared
    if best is not None:
        ev.append(Evidence("history_item", catalog[best].title, item_id=best))
        reasons.append(f"shares {', '.join(sorted(best_shared)[:4])} with {catalog[best].title!r} from the history")
    if item.brand:
        same = next((h for h in reversed(history) if catalog[h].brand == item.brand), None)
        if same is not None:
            ev.append(Evidence("attribute", item.brand, field="brand", item_id=same))
            reasons.append(f"same brand ({item.brand}) as {catalog[same].title!r}")
    cats = set(item.categories)
    for h in reversed(history):
        common = [c for c in catalog[h].categories if c in cats]
        if common:
            ev.append(Evidence("attribute", common[0], field="category", item_id=h))
            reasons.append(f"category {common[0]} like {catalog[h].title!r}")
            break
    head = f"LLM {mode} rank {rank} of {of} candidates (retriever rank {retriever_rank})"
    tail = "; ".join(reasons) if reasons else "no shared words, brand or category with the history shown"
    if reason is not None:
        text, bad = reason
        tail += f". LLM-written reason: {text!r}" + (f" (cites what the history and catalog do not: "
                                                     f"{'; '.join(bad[:3])})" if bad else "")
    return Explanation(item_id, f"{head}: {tail}", tuple(ev))
