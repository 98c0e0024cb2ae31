"""Item identifiers for P5 prompts, built so that none can give the answer away.

P5 numbered items in order of first appearance in the users' sequences, test items included, so
"the largest id seen so far + 1" was often the next item (P5 PR #3). Here an item's identifier
depends on the catalog alone, never on interaction order or on which items are evaluation
targets:

- ``title``: the item's cleaned title (cut to ``max_tokens`` tokens), the default; items sharing
  a title get `` #2``, `` #3``... in catalog index order (a hash of the item id, see
  :class:`genrec.data.catalog.Catalog`); an item without a title gets a random identifier.
- ``random``: ``item <n>`` with ``n`` from a seeded permutation of the sorted item ids (OpenP5's
  random indexing).

Identifiers are cleaned once with every P5 template's rules (control characters, quote marks,
template phrases, the tokenizer's special tokens out), so the text in a prompt and the answer the
model writes are the same string whatever template is used.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from genrec.prompts.tasks import FAMILIES, QUOTE
from genrec.prompts.template import strip_control

MODES = ("title", "random")


def clean_identifier(text: str, special_tokens: Sequence[str] = ()) -> str:
    """``text`` cleaned by every P5 template's rules (idempotent)."""
    t = strip_control(text).replace(QUOTE, " ")
    for f in FAMILIES.values():
        for tmpl in f.templates:
            t = tmpl.clean(t, special_tokens, ";")
    return " ".join(t.split())


def random_numbers(item_ids: Sequence[str], seed: int) -> dict[str, int]:
    """Item id -> a number in ``1..n`` from a permutation seeded by ``seed`` over the sorted ids:
    the same for any order in which the ids are given."""
    ids = sorted(item_ids)
    perm = np.random.default_rng([int(seed), 5]).permutation(len(ids))
    return {i: int(p) + 1 for i, p in zip(ids, perm)}


def make_identifiers(item_ids: Sequence[str], titles: Sequence[str], mode: str = "title", *, seed: int = 0,
                     cut=None, special_tokens: Sequence[str] = ()) -> list[str]:
    """One unique identifier per item, in the order given (see the module docstring).

    ``cut(text) -> text`` shortens a title (e.g. to its first tokens); titles are compared after
    cutting, so two titles equal in their first tokens are told apart by the `` #n`` suffix.
    """
    if mode not in MODES:
        raise ValueError(f"item_ids must be one of {', '.join(MODES)}; got {mode!r}")
    if len(item_ids) != len(titles):
        raise ValueError(f"{len(item_ids)} item ids but {len(titles)} titles")
    numbers = random_numbers(item_ids, seed)
    out: list[str] = []
    seen: dict[str, int] = {}
    for item, title in zip(item_ids, titles):
        text = clean_identifier(title, special_tokens) if mode == "title" else ""
        if text and cut is not None:
            text = clean_identifier(cut(text), special_tokens)
        if not text:
            text = f"item {numbers[item]}"
        n = seen.get(text, 0) + 1
        seen[text] = n
        out.append(text if n == 1 else f"{text} #{n}")
    # a " #n" suffix can collide with a real title ending in " #n": resolve by counting on
    taken: set[str] = set()
    for j, text in enumerate(out):
        base, n = text, 1
        while text in taken:
            n += 1
            text = f"{base} #{n}"
        taken.add(text)
        out[j] = text
    return out
