"""The next item by beam search constrained to the catalog, then a popularity fill.

Each answer is an item identifier's tokens followed by EOS. A prefix tree over those token
sequences (:class:`genrec.llm.constrained.TokenTrie`, the OpenP5 recipe) allows at each step only
tokens that continue some identifier, so every finished beam names a real catalog item; items
the caller excludes (the history, ``exclude``) are left out of the user's tree, so beams are not
wasted on them. Beam search itself is transformers' (through
:func:`genrec.lm.generate.generate_sequences`, which shares the prompt's KV cache across beams).

Beam search gives at most ``beams`` items; the rest of the ranking (so metrics are over the full
catalog) is every other allowed item in order of training popularity, scored below the last beam.
"""

from __future__ import annotations

from typing import Sequence

from genrec.llm.constrained import TokenTrie

#: Beams scoring below this are dead: when the tree leaves fewer live continuations than beams,
#: transformers' beam search fills its beams with masked candidates (scores near -1e9) and returns
#: them as copies of finished ones (the same rule as genrec-llm's decoding.DEAD).
DEAD = -1e4


class CatalogDecoder:
    """Identifier token ids of the items the model may name, and the popularity order."""

    def __init__(self, answer_ids: Sequence[Sequence[int]], eos_id: int, popularity: Sequence[int]) -> None:
        self.answer_ids = [tuple(a) for a in answer_ids]
        self.eos_id = int(eos_id)
        self.by_tokens = {a: j for j, a in enumerate(self.answer_ids)}
        if len(self.by_tokens) != len(self.answer_ids):
            raise ValueError("two items have the same identifier tokens: identifiers must be unique")
        self.popularity = [int(j) for j in popularity]
        self._full: TokenTrie | None = None
        self.max_len = max((len(a) for a in self.answer_ids), default=0) + 1

    def trie(self, banned: set[int]) -> TokenTrie:
        """The prefix tree of every item outside ``banned`` (the full tree is built once)."""
        if not banned:
            if self._full is None:
                self._full = TokenTrie(self.answer_ids, self.eos_id)
            return self._full
        return TokenTrie((a for j, a in enumerate(self.answer_ids) if j not in banned), self.eos_id)

    def rank(self, model, tokenizer, prompt: Sequence[int], k: int, banned: set[int], *, beams: int,
             bf16: bool | str = False) -> tuple[list[int], list[float], int]:
        """Up to ``k`` item indices with scores, best first, and how many came from beam search."""
        from genrec.lm.generate import generate_sequences

        allowed = len(self.answer_ids) - len(banned)
        if allowed <= 0:
            return [], [], 0
        items: list[int] = []
        scores: list[float] = []
        n_beams = min(beams, allowed)
        if n_beams > 0:
            trie = self.trie(banned)
            rows = generate_sequences(model, tokenizer, [list(prompt)], mode="beam", n=n_beams, num_beams=n_beams,
                                      max_new_tokens=self.max_len, batch_size=1, bf16=bf16,
                                      device=next(model.parameters()).device, allowed_tokens=trie.allowed)[0]
            for _text, score, _n, ended, new_ids in rows:
                toks = tuple(new_ids[:-1]) if ended and new_ids and new_ids[-1] == self.eos_id else None
                j = self.by_tokens.get(toks) if toks is not None else None
                if j is not None and j not in banned and j not in items and score > DEAD:
                    items.append(j)
                    scores.append(float(score))
        from_beams = len(items)
        floor = (min(scores) if scores else 0.0) - 1.0
        taken = set(items) | banned
        for j in self.popularity:
            if len(items) >= k:
                break
            if j not in taken:
                items.append(j)
                scores.append(floor - 1e-6 * (len(items) - from_beams))
                taken.add(j)
        return items[:k], scores[:k], min(from_beams, k)
