"""GPT4Rec's prompt, built at the token level so training and inference see identical ids.

The paper's prompt (Li et al. 2023, section 3.1)::

    Previously, the customer has bought: <T1>. <T2>. ... In the future, the customer wants to buy

and in training the target title follows: `` <target title>`` + EOS.

Titles are untrusted text. :func:`sanitize_title` removes newlines, the prompt's own phrases
(so a title cannot open a second "history" or close the prompt early) and the tokenizer's special
tokens; :class:`PromptBuilder` caps each title to ``max_title_tokens`` tokens and keeps the most
recent titles that fit ``max_prompt_tokens``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class PromptTemplate:
    """The fixed words of the prompt. ``for_domain("movies")`` gives the watched/watch variant."""

    prefix: str = "Previously, the customer has bought:"
    suffix: str = "In the future, the customer wants to buy"
    separator: str = "."

    @classmethod
    def for_domain(cls, domain: str = "products") -> "PromptTemplate":
        if domain in ("products", "shop", "ecommerce"):
            return cls()
        if domain in ("movies", "movie"):
            return cls("Previously, the customer has watched:", "In the future, the customer wants to watch")
        raise ValueError(f"unknown prompt domain {domain!r}; use 'products' or 'movies'")

    def phrases(self) -> list[str]:
        """Phrases a title must not contain: the prefix and suffix, whole and without their lead-in."""
        out = []
        for p in (self.prefix.rstrip(":").strip(), self.suffix.strip()):
            out.append(p)
            if "," in p:
                out.append(p.split(",", 1)[1].strip())
        return [p for p in out if p]

    def words(self) -> str:
        """The template as text (to train a scratch tokenizer on)."""
        return f"{self.prefix} {self.separator} {self.suffix}"


_WS = re.compile(r"\s+")


def sanitize_title(title: str, template: PromptTemplate = PromptTemplate(),
                   special_tokens: Sequence[str] = ()) -> str:
    """Make ``title`` safe to splice into the prompt (see the module docstring).

    The result has no newlines, none of ``template.phrases()`` (case- and space-insensitive),
    no special-token strings, and no trailing separator (the prompt adds its own).
    """
    t = _WS.sub(" ", str(title or ""))
    for tok in special_tokens:
        if tok:
            t = t.replace(tok, " ")
    for phrase in template.phrases():
        pat = r"\s*".join(re.escape(w) for w in phrase.split())
        t = re.sub(pat + r"\s*:?", " ", t, flags=re.IGNORECASE)
    t = _WS.sub(" ", t).strip()
    sep = re.escape(template.separator.strip()) if template.separator.strip() else None
    if sep:
        t = re.sub(rf"(\s*{sep})+$", "", t).strip()
    return t


class PromptBuilder:
    """Turns titles into prompt token ids for one tokenizer (cache :meth:`title_ids` per item)."""

    def __init__(self, tokenizer, template: PromptTemplate | None = None, *, max_title_tokens: int = 24,
                 max_prompt_tokens: int = 200) -> None:
        self.tokenizer = tokenizer
        self.template = template or PromptTemplate()
        self.max_title_tokens = int(max_title_tokens)
        self.max_prompt_tokens = int(max_prompt_tokens)
        enc = self._encode
        self.prefix_ids = enc(self.template.prefix)
        self.sep_ids = enc(self.template.separator)
        self.suffix_ids = enc(" " + self.template.suffix)
        self.eos_id = tokenizer.eos_token_id
        if self.eos_id is None:
            raise ValueError("the tokenizer has no EOS token")
        fixed = len(self.prefix_ids) + len(self.suffix_ids)
        if self.max_prompt_tokens < fixed + self.max_title_tokens + len(self.sep_ids):
            raise ValueError(f"max_prompt_tokens={max_prompt_tokens} cannot hold the prompt words ({fixed} tokens) "
                             f"and one title of {max_title_tokens} tokens")
        self._special = [t for t in getattr(tokenizer, "all_special_tokens", []) if t]

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def title_ids(self, title: str) -> list[int]:
        """Token ids of `` <title>`` after sanitising, capped at ``max_title_tokens`` (may be empty)."""
        t = sanitize_title(title, self.template, self._special)
        return self._encode(" " + t)[: self.max_title_tokens] if t else []

    def titles_ids(self, titles: Sequence[str]) -> list[list[int]]:
        """:meth:`title_ids` for many titles, tokenized in one batch call."""
        clean = [sanitize_title(t, self.template, self._special) for t in titles]
        enc = self.tokenizer([" " + t for t in clean], add_special_tokens=False)["input_ids"]
        return [list(e[: self.max_title_tokens]) if c else [] for c, e in zip(clean, enc)]

    def prompt_ids(self, history: Sequence[Sequence[int]]) -> list[int]:
        """Prompt ids for a history of title ids (oldest first); drops the oldest titles that do
        not fit ``max_prompt_tokens``. An empty history gives the prompt words alone."""
        budget = self.max_prompt_tokens - len(self.prefix_ids) - len(self.suffix_ids)
        kept: list[Sequence[int]] = []
        for t in reversed(history):
            if not t:
                continue
            cost = len(t) + len(self.sep_ids)
            if cost > budget:
                break
            kept.append(t)
            budget -= cost
        ids = list(self.prefix_ids)
        for t in reversed(kept):
            ids.extend(t)
            ids.extend(self.sep_ids)
        ids.extend(self.suffix_ids)
        return ids

    def example(self, history: Sequence[Sequence[int]], target: Sequence[int]) -> tuple[list[int], int]:
        """A training example: (prompt + target + EOS ids, prompt length)."""
        p = self.prompt_ids(history)
        return p + list(target) + [self.eos_id], len(p)

    def template_spans(self, prompt_len: int) -> list[tuple[int, int]]:
        """Token spans ``[start, end)`` of the fixed words in a prompt of ``prompt_len`` tokens
        made by :meth:`prompt_ids`: the prefix at the start and the suffix at the end."""
        return [(0, len(self.prefix_ids)), (prompt_len - len(self.suffix_ids), prompt_len)]

    def prompt_text(self, titles: Sequence[str]) -> str:
        """The prompt as text, exactly as the model sees it (for display and debugging)."""
        return self.tokenizer.decode(self.prompt_ids(self.titles_ids(titles)))
