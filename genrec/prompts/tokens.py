"""A one-list template (GPT4Rec's) built at the token level, so training and inference see
identical ids: each title is encoded once (with the pattern's lead-in, e.g. a space), capped at
``max_title_tokens``, and the most recent titles that fit ``max_prompt_tokens`` (and, when given,
the last ``max_items`` of them) are kept.

Titles are cleaned by :meth:`PromptTemplate.clean` (control characters, the template's own
phrases and the tokenizer's special tokens removed), so a title cannot open a second history or
close the prompt early.
"""

from __future__ import annotations

from typing import Sequence

from genrec.prompts.library import GPT4REC
from genrec.prompts.template import PromptTemplate, TemplateError, _fields


class PromptBuilder:
    """Turns titles into prompt token ids for one tokenizer (cache :meth:`title_ids` per item)."""

    def __init__(self, tokenizer, template: PromptTemplate | None = None, *, max_title_tokens: int = 24,
                 max_prompt_tokens: int = 200, max_items: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.template = template or GPT4REC
        t = self.template
        if len(t.fields) != 1 or t.fields[0] not in t.lists:
            raise TemplateError(f"template {t.name!r}: the token-level builder needs exactly one list field; "
                                f"it has {t.fields}")
        self.field = t.fields[0]
        pre, post = t.text.split("{" + self.field + "}")
        parts = _fields(t.lists[self.field], self.field)
        names = [n for _, n in parts]
        if names[:1] != ["item"] or any(n in ("number", "letter") for n in names):
            raise TemplateError(f"template {t.name!r}: the token-level builder needs a list pattern like ' {{item}}.'")
        self.lead = parts[0][0]
        self.trailer = t.item_trailer(self.field)
        self.max_title_tokens = int(max_title_tokens)
        self.max_prompt_tokens = int(max_prompt_tokens)
        if max_items is not None and max_items < 1:
            raise ValueError(f"max_items must be >= 1 or None; got {max_items}")
        self.max_items = max_items
        enc = self._encode
        self.prefix_ids = enc(pre)
        self.sep_ids = enc(self.trailer)
        self.suffix_ids = enc(post)
        self.eos_id = tokenizer.eos_token_id
        if self.eos_id is None:
            raise ValueError("the tokenizer has no EOS token")
        fixed = len(self.prefix_ids) + len(self.suffix_ids)
        if self.max_prompt_tokens < fixed + self.max_title_tokens + len(self.sep_ids):
            raise ValueError(f"max_prompt_tokens={max_prompt_tokens} cannot hold the prompt words ({fixed} tokens) "
                             f"and one title of {max_title_tokens} tokens")
        self._special = [s for s in getattr(tokenizer, "all_special_tokens", []) if s]

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def clean(self, title: str) -> str:
        return self.template.clean(title, self._special, self.trailer)

    def title_ids(self, title: str) -> list[int]:
        """Token ids of ``<lead><title>`` after cleaning, capped at ``max_title_tokens`` (may be empty)."""
        t = self.clean(title)
        return self._encode(self.lead + t)[: self.max_title_tokens] if t else []

    def titles_ids(self, titles: Sequence[str]) -> list[list[int]]:
        """:meth:`title_ids` for many titles, tokenized in one batch call."""
        clean = [self.clean(t) for t in titles]
        enc = self.tokenizer([self.lead + t for t in clean], add_special_tokens=False)["input_ids"]
        return [list(e[: self.max_title_tokens]) if c else [] for c, e in zip(clean, enc)]

    def prompt_ids(self, history: Sequence[Sequence[int]]) -> list[int]:
        """Prompt ids for a history of title ids (oldest first); drops the oldest titles that do
        not fit ``max_prompt_tokens`` (or exceed ``max_items``). An empty history gives the prompt words alone."""
        budget = self.max_prompt_tokens - len(self.prefix_ids) - len(self.suffix_ids)
        kept: list[Sequence[int]] = []
        for t in reversed(history):
            if not t:
                continue
            cost = len(t) + len(self.sep_ids)
            if cost > budget or (self.max_items is not None and len(kept) >= self.max_items):
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
