"""The words of a ``POST /chat`` answer: each item's reason and the reply's sentence, in fixed
wording from what was done (:mod:`.chatting`), so nothing in them is generated or invented."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from genrec.core.why import Evidence, Explanation, Query, Why
from genrec.retrieval.bm25 import tokenize

if TYPE_CHECKING:
    from genrec.data.catalog import Catalog
    from genrec.serve.chat_rank import LLMOrder
    from genrec.serve.chat_search import Ranked


def explain(cat: Catalog, model: str, fused: Sequence[tuple[str, float]], lists: Sequence[Ranked],
            queries: list[dict], cf: list[str], cf_why: Why, message: str, has_history: bool,
            llm_rank: LLMOrder | None = None) -> tuple[list[dict], Why]:
    """The items as returned (rank, title, fused score, sources, explanation) and the typed why.
    Every reason is a fixed sentence from evidence: the place the LLM gave it (when it ranked),
    the query that found it and its rank there, the words its title shares with the message, its
    rank among the collaborative candidates (``model``'s list)."""
    final = [i for i, _ in fused]
    kept = set(final)
    found: list[list[str]] = [[] for _ in queries]
    first: dict[str, tuple[int, str, int]] = {}  # item -> (query, source, rank) of its best text hit
    for lst in lists:
        if lst.query is None:
            continue
        for r, i in enumerate(lst.items, 1):
            if i in kept and i not in found[lst.query]:
                found[lst.query].append(i)
            if i not in first or r < first[i][2]:
                first[i] = (lst.query, lst.source, r)
    cf_rank = {i: r for r, i in enumerate(cf, 1)}
    msg_words = set(tokenize(message))
    items, expl = [], []
    for rank, (i, score) in enumerate(fused, 1):
        it = cat[i]
        ev: list[Evidence] = []
        parts: list[str] = []
        sources = sorted({lst.source for lst in lists if i in lst.items})
        if llm_rank is not None and llm_rank.used and rank <= llm_rank.n:
            place = llm_rank.place(llm_rank.order[rank - 1])
            parts.append(f"the LLM placed it {place} of {llm_rank.n} for your request" if place else
                         "the LLM gave it no score (kept in the fused order)")
        if i in first:
            qn, src, r = first[i]
            ev.append(Evidence("query", queries[qn]["query"]))
            parts.append(f"{'title' if src == 'bm25' else 'meaning'} match {r} for "
                         f"{_SOURCE[queries[qn]['source']]} \u201c{_short(queries[qn]['query'])}\u201d")
        shared = sorted(msg_words & set(tokenize(it.title)))
        if shared:
            parts.append(f"its title shares {', '.join(shared[:4])} with your message")
        if i in cf_rank:
            parts.append(f"{model} ranks it {cf_rank[i]} for "
                         + ("your history" if has_history else "a user without history"))
            model_expl = cf_why.explanation_for(i)
            if model_expl is not None:
                ev.extend(model_expl.evidence)
        if it.brand:
            ev.append(Evidence("attribute", it.brand, field="brand", item_id=i))
        text = "; ".join(parts) or "no stated reason"
        e = Explanation(i, text[0].upper() + text[1:], tuple(ev))
        expl.append(e)
        items.append({"rank": rank, "item_id": i, "title": it.title, "score": float(score), "brand": it.brand,
                      "categories": list(it.categories), "sources": sources, "explanation": e.to_dict()})
    why = Why(tuple(Query(q["query"], q["weight"], tuple(found[n])) for n, q in enumerate(queries)),
              tuple(expl), filled_by_popularity=0,
              extra={"collaborative_candidates": len(cf)})
    return items, why


def reply(message: str, queries: list[dict], items: list[dict], has_cf: bool) -> str:
    """The reply's sentence, from what was done (fixed wording: nothing in it is generated)."""
    if not items:
        return "I found nothing for that in the catalog. Try other words."
    text_hits = sum(1 for x in items if {"bm25", "embedding"} & set(x["sources"]))
    both = sum(1 for x in items if "collaborative" in x["sources"] and {"bm25", "embedding"} & set(x["sources"]))
    llm = next((q["query"] for q in queries if q["source"] == "llm"), None)
    head = f"Here are {len(items)} item{'s' if len(items) != 1 else ''}"
    head += f" for \u201c{_short(llm)}\u201d" if llm else f" for \u201c{_short(message)}\u201d"
    if text_hits == 0:
        return head + ": no title matched your words, so these come from your history alone."
    tail = f"; {both} of them also fit your history" if has_cf and both else ""
    return f"{head}: {text_hits} matched the search{tail}."


_SOURCE = {"llm": "the LLM's query", "message": "your message", "context": "the conversation"}


def _short(text: str, n: int = 80) -> str:
    t = " ".join(str(text).split())
    return t if len(t) <= n else t[:n - 1] + "\u2026"
