"""The re-ranker's prompts, one named template per ranking mode (:class:`genrec.prompts.PromptTemplate`).

Titles are untrusted data: every title is cleaned by the template (control characters, the
tokenizer's special tokens and the template's own phrases removed), quoted with ``"``, and cut to
``max_title_tokens`` tokens of the backend's tokenizer (whitespace words for a remote backend).
Only the last ``history_items`` history titles are shown, numbered (1), (2), ... oldest first;
candidates are labelled (A), (B), ... . The verbalizer prompt ends with ``Answer: (`` so the next
token is a bare letter, one token in every BPE vocabulary (the letters are the verbalizer).

A title that cleans to nothing is shown as ``untitled``: the template drops empty list items, which
would shift the letters of the candidates after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from genrec.prompts import PromptTemplate, cut_to_tokens, last_items, letters

_LISTS = {"history": "\n({number}) {item}", "candidates": "\n({letter}) {item}"}
_DATA = ("history", "candidates")
_INTRO = "A user chose these items, oldest first:{history}\n"

VERBALIZER = PromptTemplate(
    "rerank-verbalizer",
    _INTRO + "Candidates:{candidates}\nWhich candidate will the user choose next? Answer with its letter.\n"
    "Answer: (", lists=_LISTS, data=_DATA, quote='"')
LISTWISE = PromptTemplate(
    "rerank-listwise",
    _INTRO + "Candidates:{candidates}\nRank all candidates from most to least likely to be chosen next. "
    "Answer with the letters only, best first, separated by commas.\nRanking:", lists=_LISTS, data=_DATA, quote='"')
LIKELIHOOD = PromptTemplate(
    "rerank-likelihood", _INTRO + "The next item the user will choose is:",
    lists={"history": _LISTS["history"]}, data=("history",), quote='"')
TEMPLATES = {"verbalizer": VERBALIZER, "listwise": LISTWISE, "likelihood": LIKELIHOOD}
UNTITLED = "untitled"


@dataclass
class PromptMaker:
    """Builds one mode's prompts for one backend (its tokenizer, when local, sets the title budget)."""

    mode: str
    history_items: int = 10
    max_title_tokens: int = 32
    tokenizer: Any = None

    def __post_init__(self) -> None:
        self.template = TEMPLATES[self.mode]
        self._special = [s for s in getattr(self.tokenizer, "all_special_tokens", None) or [] if s]
        self._cache: dict[str, str] = {}

    def title(self, raw: str) -> str:
        """A title as shown in the prompt, without its quotes (cleaned, cut; never empty)."""
        if raw not in self._cache:
            t = self.template.clean(raw, self._special)
            t = self.template.clean(cut_to_tokens(t, self.max_title_tokens, self.tokenizer), self._special)
            self._cache[raw] = t or UNTITLED
        return self._cache[raw]

    def shown_history(self, titles: Sequence[str]) -> list[str]:
        """The history titles the prompt shows (the last ``history_items``), oldest first."""
        return last_items(list(titles), self.history_items)

    def render(self, history: Sequence[str], candidates: Sequence[str] = ()) -> str:
        """The prompt for a history (raw titles, oldest first) and candidates in the order shown."""
        hist = [self.title(t) for t in self.shown_history(history)]
        if self.mode == "likelihood":
            return self.template.render(self._special, history=hist)
        return self.template.render(self._special, history=hist, candidates=[self.title(t) for t in candidates])

    def continuation(self, title: str) -> str:
        """A candidate title as the likelihood mode scores it (after the prompt's colon)."""
        return f' "{self.title(title)}"'


def labels(n: int) -> list[str]:
    """The candidates' letters, ``A`` .. (at most 26, so each is one token)."""
    if not 0 < n <= 26:
        raise ValueError(f"between 1 and 26 candidates can be labelled by letters, got {n}")
    return letters(n)
