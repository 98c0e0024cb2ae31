"""Explanations written by the LLM (``explain="llm"``) and the check that counts what they invent.

:func:`write_reasons` asks the LLM, for a user's top items, for one sentence on why the user may
like the item (greedy, a few dozen tokens; affordable on a sample of users only).

:func:`unsupported_citations` lists what a sentence cites that the user's history, the item and
the profile do not contain: a quoted phrase that is none of their titles, a catalog title of
another item, a catalog brand/category/genre none of them has, or a "Title (1999)" that is no
title of theirs. An explanation is a *hallucination* when that list is not empty;
:func:`hallucination_rate` is the share of such explanations. Matching is by normalised substring
(hand-written: the claim vocabulary is the catalog's own, which no NLP library knows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from genrec.data.catalog import Catalog
from genrec.prompts import PromptTemplate

REASON = PromptTemplate(
    "rerank-reason",
    "A user chose these items, oldest first:{history}\nThe recommended item is {item}.\n"
    "In one sentence, explain why this user may like it, citing only the items above.\nReason:",
    lists={"history": "\n({number}) {item}"}, data=("history", "item"), quote='"')
_NORM = re.compile(r"[^0-9a-z]+")
_QUOTED = re.compile(r"[\"“]([^\"”]{3,80})[\"”]")
_YEAR_TITLE = re.compile(r"([A-Z][^.;:!?()\"]{1,60}?)\s*\((\d{4})\)")
_MIN_ATTR = 4  # attribute values shorter than this ("Men", "Oil") are too ambiguous to count
_MIN_TITLE = 5  # shorter titles ("Heat", "Big") read as ordinary words


def _norm(text: str) -> str:
    return " " + _NORM.sub(" ", str(text).lower()).strip() + " "


def _core(title: str) -> str:
    """A title without its year and leading/trailing article ("Usual Suspects, The (1995)")."""
    t = re.sub(r"\(\d{4}\)\s*$", "", title).strip()
    t = re.sub(r",\s*(The|A|An)$", "", t)
    return _norm(t)


@dataclass
class CatalogVocabulary:
    """The catalog's titles (normalised cores) and attribute values, built once per catalog."""

    titles: dict[str, str]  # item id -> normalised core title
    attributes: set[str]    # normalised brands and categories

    @classmethod
    def of(cls, catalog: Catalog) -> "CatalogVocabulary":
        titles = {it.id: _core(it.title) for it in catalog if len(_core(it.title).strip()) >= _MIN_TITLE}
        attrs = {_norm(a) for it in catalog for a in (*it.categories, it.brand or "") if len(a.strip()) >= _MIN_ATTR}
        return cls(titles, attrs)


def unsupported_citations(text: str, item_id: str, history: Sequence[str], catalog: Catalog,
                          vocab: CatalogVocabulary, allowed_values: Iterable[str] = ()) -> list[str]:
    """What ``text`` (an explanation of ``item_id`` for a user with item ids ``history``) cites
    that is not in the history, the item or ``allowed_values`` (e.g. the profile's facts)."""
    own = [i for i in [*history, item_id] if i in catalog]
    own_titles = [_norm(catalog[i].title) for i in own]
    own_cores = {vocab.titles.get(i, _core(catalog[i].title)) for i in own}
    own_attrs = {_norm(a) for i in own for a in (*catalog[i].categories, catalog[i].brand or "") if a}
    own_attrs |= {_norm(v) for v in allowed_values if v}
    body = _norm(text)
    bad: list[str] = []
    for q in _QUOTED.findall(text):
        nq = _norm(q)
        if not any(nq in t or _core(q) in t for t in own_titles) and nq not in own_attrs:
            bad.append(f"quoted: {q}")
    for other, core in vocab.titles.items():
        if core in body and core not in own_cores and not any(core in c for c in own_cores):
            bad.append(f"title: {catalog[other].title}")
    for attr in vocab.attributes:
        if attr in body and attr not in own_attrs and not any(attr in t for t in own_cores):
            bad.append(f"attribute: {attr.strip()}")
    for name, year in _YEAR_TITLE.findall(text):
        if not any(_core(f"{name} ({year})") in c or c in _core(f"{name} ({year})") for c in own_cores):
            bad.append(f"title: {name.strip()} ({year})")
    return list(dict.fromkeys(bad))


def hallucination_rate(flags: Sequence[Sequence[str]]) -> dict:
    """Counts over explanations given as their unsupported-citation lists."""
    n = len(flags)
    bad = sum(1 for f in flags if f)
    return {"explanations": n, "hallucinated": bad, "rate": round(bad / n, 4) if n else None}


def write_reasons(backend, history_titles: Sequence[Sequence[str]], item_titles: Sequence[str], *,
                  max_title_tokens: int, tokenizer=None, max_new_tokens: int = 40) -> list[str]:
    """One generated sentence per (history, item) pair, greedy, cut at the first newline."""
    from genrec.llm.types import GenParams
    from genrec.prompts import cut_to_tokens

    special = [s for s in getattr(tokenizer, "all_special_tokens", None) or [] if s]

    def title(t: str) -> str:
        return cut_to_tokens(REASON.clean(t, special), max_title_tokens, tokenizer) or "untitled"

    prompts = [REASON.render(special, history=[title(t) for t in h], item=title(it))
               for h, it in zip(history_titles, item_titles)]
    gens = backend.generate(prompts, GenParams(max_new_tokens=max_new_tokens, temperature=0.0, stop=("\n",)))
    return [(g[0].text if g else "").strip() for g in gens]
