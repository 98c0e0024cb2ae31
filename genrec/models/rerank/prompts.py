"""The re-ranker's prompts, one named template per ranking mode (:class:`genrec.prompts.PromptTemplate`).

Titles are untrusted data: every title is cleaned by the template (control characters, the
tokenizer's special tokens and the template's own phrases removed), quoted with ``"``, and cut to
``max_title_tokens`` tokens of the backend's tokenizer (whitespace words for a remote backend).
Only the last ``history_items`` history titles are shown, numbered (1), (2), ... oldest first;
candidates are labelled (A), (B), ... . The verbalizer prompt ends with ``Answer: (`` so the next
token is a bare letter, one token in every BPE vocabulary (the letters are the verbalizer).

Options (:class:`PromptMaker`): a user profile line (Chat-Rec, :mod:`.profile`), LLMRank's
recency line ("the item the user chose most recently is X"), in-context examples from training
users (few-shot), and the backend's chat template for instruct models.

A title that cleans to nothing is shown as ``untitled``: the template drops empty list items, which
would shift the letters of the candidates after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from genrec.prompts import PromptTemplate, cut_to_tokens, last_items, letters

_LISTS = {"history": "\n({number}) {item}", "candidates": "\n({letter}) {item}"}
_INTRO = "A user chose these items, oldest first:{history}\n"
_PROFILE = "User profile: {profile}\n"
_RECENT = "The item the user chose most recently is {recent}.\n"
_BODY = {
    "verbalizer": "Candidates:{candidates}\nWhich candidate will the user choose next? Answer with its letter.\n",
    "listwise": "Candidates:{candidates}\nRank all candidates from most to least likely to be chosen next. "
                "Answer with the letters only, best first, separated by commas.\n",
    "likelihood": "",
}
# The answer cue ends every prompt; with ``chat`` it follows the chat template's assistant turn.
CUES = {"verbalizer": "Answer: (", "listwise": "Ranking:", "likelihood": "The next item the user will choose is:"}
SHOTS_INTRO = "Examples of other users and the item each chose next:\n\n"
SHOTS_OUTRO = "Now this user:\n"


def make_template(mode: str, *, profile: bool = False, recency: bool = False) -> PromptTemplate:
    """The template of one ``mode`` (with a profile line and LLMRank's recency line when asked)."""
    text = (_PROFILE if profile else "") + _INTRO + (_RECENT if recency else "") + _BODY[mode] + CUES[mode]
    data = ("profile",) * profile + ("history",) + ("recent",) * recency + ("candidates",) * (mode != "likelihood")
    lists = {k: v for k, v in _LISTS.items() if k in data}
    suffix = "+profile" * profile + "+recency" * recency
    return PromptTemplate(f"rerank-{mode}{suffix}", text, lists=lists, data=data, quote='"')


TEMPLATES = {mode: make_template(mode) for mode in CUES}
VERBALIZER, LISTWISE, LIKELIHOOD = TEMPLATES["verbalizer"], TEMPLATES["listwise"], TEMPLATES["likelihood"]
UNTITLED = "untitled"


@dataclass(frozen=True)
class Example:
    """One in-context example (from a training user): history titles (oldest first), candidate
    titles in the order shown, and the index of the one the user chose next."""

    history: tuple[str, ...]
    candidates: tuple[str, ...]
    answer: int


@dataclass
class PromptMaker:
    """Builds one mode's prompts for one backend (its tokenizer, when local, sets the title budget).

    ``profile``/``recency`` add the profile and recency lines; ``examples`` are shown first
    (few-shot); ``chat`` (the backend's ``render_chat``) wraps the question as a user turn of the
    model's chat template, the answer cue following the assistant's turn start."""

    mode: str
    history_items: int = 10
    max_title_tokens: int = 32
    tokenizer: Any = None
    profile: bool = False
    recency: bool = False
    examples: Sequence[Example] = ()
    chat: Callable[[list[dict]], str] | None = None

    def __post_init__(self) -> None:
        self.template = make_template(self.mode, profile=self.profile, recency=self.recency)
        self._example_template = make_template(self.mode, recency=self.recency)
        self._special = [s for s in getattr(self.tokenizer, "all_special_tokens", None) or [] if s]
        self._cache: dict[str, str] = {}
        self._shots = self._render_examples()

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

    def _fields(self, template: PromptTemplate, history: Sequence[str], candidates: Sequence[str],
                profile: str) -> dict[str, Any]:
        hist = [self.title(t) for t in self.shown_history(history)]
        values: dict[str, Any] = {"history": hist}
        if "profile" in template.fields:
            values["profile"] = profile or "unknown"
        if "recent" in template.fields:
            values["recent"] = hist[-1] if hist else "unknown"
        if "candidates" in template.fields:
            values["candidates"] = [self.title(t) for t in candidates]
        return values

    def _render_examples(self) -> str:
        shots = []
        for n, ex in enumerate(self.examples):
            t = self._example_template
            text = t.render(self._special, **self._fields(t, ex.history, ex.candidates, ""))
            if self.mode == "verbalizer":
                text += labels(len(ex.candidates))[ex.answer] + ")"
            elif self.mode == "listwise":
                lab = labels(len(ex.candidates))
                text += " " + ", ".join([lab[ex.answer]] + [x for i, x in enumerate(lab) if i != ex.answer])
            else:
                text += self.continuation(ex.candidates[ex.answer])
            shots.append(f"Example {n + 1}:\n{text}\n\n")
        return SHOTS_INTRO + "".join(shots) + SHOTS_OUTRO if shots else ""

    def render(self, history: Sequence[str], candidates: Sequence[str] = (), profile: str = "") -> str:
        """The prompt for a history (raw titles, oldest first), candidates in the order shown and
        the profile sentence (used when the maker shows profiles)."""
        text = self._shots + self.template.render(self._special,
                                                  **self._fields(self.template, history, candidates, profile))
        if self.chat is None:
            return text
        cue = CUES[self.mode]
        return self.chat([{"role": "user", "content": text[:-len(cue)].rstrip()}]) + cue

    def continuation(self, title: str) -> str:
        """A candidate title as the likelihood mode scores it (after the prompt's colon)."""
        return f' "{self.title(title)}"'


def labels(n: int) -> list[str]:
    """The candidates' letters, ``A`` .. (at most 26, so each is one token)."""
    if not 0 < n <= 26:
        raise ValueError(f"between 1 and 26 candidates can be labelled by letters, got {n}")
    return letters(n)
