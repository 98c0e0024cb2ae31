"""The catalog's titles as the model writes them: response token ids per item, the prefix tree
that constrains beam search to them, and the way back from a written title to items.

Shared titles: several items may have the same response ids (the same title, or titles equal in
their first ``max_target_tokens`` tokens). A generated title then stands for all of them, and
they take its place in the list together, most popular in training first (ties: catalog order),
so the list stays deterministic and every item keeps one rank.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from genrec.llm.constrained import TokenTrie


def normalise(text: str) -> str:
    """A title or generated text compared by exact match: whitespace folded, ends stripped."""
    return " ".join(str(text).split())


class TitleIndex:
    """Response ids -> items, exact text -> items, and the :class:`TokenTrie` over the responses."""

    def __init__(self, response_ids: Sequence[Sequence[int]], texts: Sequence[str], popularity: np.ndarray,
                 eos_id: int) -> None:
        if len(response_ids) != len(texts) or len(texts) != len(popularity):
            raise ValueError("TitleIndex: response ids, texts and popularity must cover the same items")
        order = np.lexsort((np.arange(len(texts)), -np.asarray(popularity)))  # popular first, then catalog order
        self.by_ids: dict[tuple[int, ...], list[int]] = {}
        self.by_text: dict[str, list[int]] = {}
        for j in order.tolist():
            ids = tuple(int(t) for t in response_ids[j])
            if ids:
                self.by_ids.setdefault(ids, []).append(j)
            t = normalise(texts[j])
            if t:
                self.by_text.setdefault(t, []).append(j)
        if not self.by_ids:
            raise ValueError("no catalog item has a title to generate")
        self.eos_id = int(eos_id)
        self.trie = TokenTrie(self.by_ids.keys(), eos_id)
        self.max_len = max(len(k) for k in self.by_ids)

    def items_for_ids(self, ids: Sequence[int]) -> list[int]:
        """Catalog indices whose response is ``ids`` (EOS and what follows ignored), shared-title order."""
        ids = list(ids)
        if self.eos_id in ids:
            ids = ids[:ids.index(self.eos_id)]
        return list(self.by_ids.get(tuple(ids), ()))

    def items_for_text(self, text: str) -> list[int]:
        """Catalog indices whose cleaned title is exactly ``text`` (after whitespace folding)."""
        return list(self.by_text.get(normalise(text), ()))

    def is_valid(self, text: str) -> bool:
        """Whether ``text`` is exactly some catalog title."""
        return normalise(text) in self.by_text
