"""Constrained decoding: a prefix tree (trie) over the token ids of the allowed outputs (catalog
titles), so greedy or beam search can only write one of them (OpenP5 does this for item ids;
issue 14's GenRec decoding). A local-backend capability:
``HFBackend.generate(prompts, params, constraint=TokenTrie(...))``.

Written by hand because transformers takes the constraint as a ``prefix_allowed_tokens_fn``
and a dict-of-dicts trie is a few lines; the outputs end with EOS, so a title that is a prefix of
another can still be chosen whole.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence


class TokenTrie:
    """The allowed token sequences; each ends with ``eos_id``."""

    def __init__(self, sequences: Iterable[Sequence[int]], eos_id: int) -> None:
        self.eos_id = int(eos_id)
        self._root: dict[int, dict] = {}
        seen = set()
        for seq in sequences:
            seq = tuple(int(t) for t in seq)
            if not seq or seq in seen:
                continue
            seen.add(seq)
            node = self._root
            for t in seq + (self.eos_id,):
                node = node.setdefault(t, {})
        if not seen:
            raise ValueError("a TokenTrie needs at least one non-empty sequence")
        self._n = len(seen)
        h = hashlib.sha256(str(self.eos_id).encode())
        for seq in sorted(seen):
            h.update(b"|" + ",".join(map(str, seq)).encode())
        self.fingerprint = h.hexdigest()[:16]

    def __len__(self) -> int:
        return self._n

    def allowed(self, prefix: Sequence[int]) -> list[int]:
        """The tokens that may follow ``prefix`` (the generated tokens so far); after a complete
        sequence only EOS, and for a prefix outside the trie (a finished beam's padding) only EOS."""
        node = self._root
        for t in prefix:
            if t == self.eos_id and t not in node:
                return [self.eos_id]
            nxt = node.get(int(t))
            if nxt is None:
                return [self.eos_id]
            node = nxt
        return list(node) or [self.eos_id]

    def __contains__(self, seq: Sequence[int]) -> bool:
        node = self._root
        for t in list(seq) + [self.eos_id]:
            if t not in node:
                return False
            node = node[t]
        return True
