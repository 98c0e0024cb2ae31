"""Parsing a written ranking back to candidates, with every failure counted, never hidden.

The model is asked for letters, best first ("C, A, B"). Any standalone run of one or two capital
letters is read as an entry (so "C > A", "1. C 2. A", "(C) (A)" all parse); an entry that is not a
candidate's letter is *invented*, a repeated one a *duplicate*; an answer with no valid entry is
*unparseable*. Candidates the answer leaves out keep the retriever's order after the parsed ones.
Hand-written (a regex) rather than fuzzy title matching as LLMRank does: the prompt asks for
letters, and guessing which title a free-text phrase meant would hide exactly the errors we count.
A stray capital word of one or two letters ("I think C") reads as an entry; "I" is then a
candidate only when there are at least 9 candidates, and otherwise counted as invented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

_ENTRY = re.compile(r"(?<![A-Za-z])([A-Z]{1,2})(?![A-Za-z])")


@dataclass(frozen=True)
class ParsedRanking:
    """``order``: candidate positions (into the labels), best first, parsed ones then the rest;
    ``parsed``: how many came from the answer; ``invented``: entries that name no candidate;
    ``duplicates``: repeated entries."""

    order: tuple[int, ...]
    parsed: int
    invented: tuple[str, ...] = ()
    duplicates: int = 0

    @property
    def unparseable(self) -> bool:
        return self.parsed == 0

    @property
    def missing(self) -> int:
        return len(self.order) - self.parsed


def parse_ranking(text: str, labels: Sequence[str]) -> ParsedRanking:
    """Read ``text`` as a ranking of ``labels`` (module docstring)."""
    where = {lab: n for n, lab in enumerate(labels)}
    seen: list[int] = []
    invented: list[str] = []
    dup = 0
    for m in _ENTRY.finditer(str(text)):
        e = m.group(1)
        n = where.get(e)
        if n is None:
            invented.append(e)
        elif n in seen:
            dup += 1
        else:
            seen.append(n)
    rest = [n for n in range(len(labels)) if n not in seen]
    return ParsedRanking(tuple(seen + rest), len(seen), tuple(invented), dup)


@dataclass
class ListwiseStats:
    """Counts over every parsed answer (a model's ``rerank_stats``): answers, unparseable ones,
    invented and duplicate entries, candidates left out (kept in retriever order)."""

    answers: int = 0
    unparseable: int = 0
    invented: int = 0
    duplicates: int = 0
    missing: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, p: ParsedRanking, text: str) -> None:
        self.answers += 1
        self.unparseable += int(p.unparseable)
        self.invented += len(p.invented)
        self.duplicates += p.duplicates
        self.missing += p.missing
        if (p.unparseable or p.invented) and len(self.examples) < 5:
            self.examples.append(str(text)[:200])

    def as_dict(self) -> dict:
        share = (lambda x: round(x / self.answers, 4) if self.answers else 0.0)
        return {"answers": self.answers, "unparseable": self.unparseable, "unparseable_share": share(self.unparseable),
                "invented": self.invented, "duplicates": self.duplicates, "missing": self.missing,
                "examples": list(self.examples)}


def note_for(p: ParsedRanking) -> str | None:
    """A one-line note for a recommendation list, or None when the answer parsed cleanly."""
    parts = []
    if p.unparseable:
        parts.append("the LLM's ranking had no candidate letter: retriever order kept")
    elif p.missing:
        parts.append(f"{p.missing} candidate(s) the LLM did not rank keep the retriever's order after the others")
    if p.invented:
        parts.append(f"{len(p.invented)} invented entr{'y' if len(p.invented) == 1 else 'ies'} ignored "
                     f"({', '.join(p.invented[:5])})")
    if p.duplicates:
        parts.append(f"{p.duplicates} repeated entr{'y' if p.duplicates == 1 else 'ies'} ignored")
    return "listwise: " + "; ".join(parts) if parts else None
