"""GenRec's alpaca-style prompts and training examples, built at the token level.

The prompt (GenRec's ``rec.py`` layout: instruction, ``### Input:``, ``### Response:``)::

    Given the products the user bought, in order, name the product they will buy next.

    ### Input: <T1>; <T2>; ...; <Tn>;

    ### Response: <next title><EOS>

The history is the last ``history_items`` titles (each cut to ``max_title_tokens`` tokens, the
oldest dropped first when they do not fit ``max_prompt_tokens``); titles are data, cleaned by
:meth:`genrec.prompts.template.PromptTemplate.clean` (control characters, the template's own
phrases and the tokenizer's special tokens removed), so a title cannot close the input early.
The response is the target title cut to ``max_target_tokens``, then EOS; the loss covers the
response only (GenRec's ``train_on_inputs=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from genrec.prompts.template import PromptTemplate

_WORDS = {"products": ("products", "bought", "product", "buy"), "movies": ("movies", "watched", "movie", "watch")}
DOMAINS = ("products", "movies")


def genrec_template(domain: str = "products") -> PromptTemplate:
    """The instruction template for ``domain`` ("products" or "movies")."""
    if domain not in _WORDS:
        raise ValueError(f"unknown prompt domain {domain!r}; use one of {', '.join(DOMAINS)}")
    things, did, thing, do = _WORDS[domain]
    return PromptTemplate(
        f"genrec-{domain}",
        f"Given the {things} the user {did}, in order, name the {thing} they will {do} next.\n\n"
        "### Input:{history}\n\n### Response:",
        lists={"history": " {item};"}, data=("history",))


class GenRecPrompts:
    """Prompt and response token ids for one tokenizer (see the module docstring)."""

    def __init__(self, tokenizer, domain: str = "products", *, history_items: int = 10, max_title_tokens: int = 24,
                 max_target_tokens: int = 48, max_prompt_tokens: int = 256) -> None:
        from genrec.prompts.tokens import PromptBuilder

        self.template = genrec_template(domain)
        self.history_items = int(history_items)
        self.history = PromptBuilder(tokenizer, self.template, max_title_tokens=max_title_tokens,
                                     max_prompt_tokens=max_prompt_tokens)
        # the same cleaning and lead-in, a longer cap: responses are written whole
        self.response = PromptBuilder(tokenizer, self.template, max_title_tokens=max_target_tokens,
                                      max_prompt_tokens=max_prompt_tokens + max_target_tokens)
        self.eos_id = int(tokenizer.eos_token_id)

    def titles(self, titles: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
        """(history ids, response ids) of each title."""
        return self.history.titles_ids(titles), self.response.titles_ids(titles)

    def prompt(self, history: Sequence[Sequence[int]]) -> list[int]:
        """Prompt ids for a history of title ids (oldest first): the last ``history_items`` titles."""
        h = [t for t in history if t]
        return self.history.prompt_ids(h[-self.history_items:] if self.history_items else [])

    def example(self, history: Sequence[Sequence[int]], target: Sequence[int]) -> tuple[list[int], int]:
        """(prompt + response + EOS ids, prompt length): the trainer's example, loss after the prompt."""
        p = self.prompt(history)
        return p + list(target) + [self.eos_id], len(p)

    def prompt_text(self, titles: Sequence[str]) -> str:
        """The prompt as the model sees it (for display and debugging)."""
        hist, _ = self.titles(titles)
        return self.history.tokenizer.decode(self.prompt(hist))


@dataclass(frozen=True)
class ExampleSource:
    """Where a training example comes from: ``user``'s training sequence, position ``pos`` is the
    target and the items before it the history (what the leakage test checks)."""

    user: str
    pos: int


def training_positions(train_items: dict[str, list[int]], per_user: int | None) -> list[ExampleSource]:
    """The (user, target position) pairs of the training examples: every position >= 1 of every
    training sequence (GenRec's sliding next-item examples), or each user's most recent
    ``per_user`` positions. Only the split's training sequences are read, never its valid or test
    cases."""
    out: list[ExampleSource] = []
    for user, seq in train_items.items():
        first = 1 if per_user is None else max(1, len(seq) - per_user)
        out.extend(ExampleSource(user, p) for p in range(first, len(seq)))
    return out


def build_examples(prompts: GenRecPrompts, train_items: dict[str, list[int]], hist_ids: list[list[int]],
                   resp_ids: list[list[int]], per_user: int | None) -> tuple[list[tuple[list[int], int]],
                                                                             list[ExampleSource]]:
    """Training examples from catalog-index sequences; items without a title are skipped as targets."""
    examples, sources = [], []
    for src in training_positions(train_items, per_user):
        seq = train_items[src.user]
        target = resp_ids[seq[src.pos]]
        if not target:
            continue
        hist = [hist_ids[j] for j in seq[max(0, src.pos - prompts.history_items):src.pos]]
        examples.append(prompts.example(hist, target))
        sources.append(src)
    return examples, sources


def popularity(train_items: dict[str, list[int]], n_items: int) -> np.ndarray:
    """Training interactions per catalog index (the tie rule for shared titles)."""
    counts = np.zeros(n_items, dtype=np.int64)
    for seq in train_items.values():
        np.add.at(counts, np.asarray(seq, dtype=np.int64), 1)
    return counts
