"""What every backend shares: the record-replay cache per answered item and the usage account.

A backend subclasses :class:`BaseBackend` and implements ``_generate``, ``_score`` and
``_next_token_scores``, each returning one ``(value, tokens_in, tokens_out)`` per item; the public
methods look each item up in the cache, compute only the misses (in one batch), store them and
account tokens, latency and cost. One "call" in :class:`~genrec.llm.types.Usage` is one item:
one prompt's generations, one prompt's continuation scores, or one prompt's next-token scores.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from typing import Any, Callable, Sequence

from genrec.llm.cache import LLMCache, call_key, resolve_cache
from genrec.llm.constrained import TokenTrie
from genrec.llm.types import (CacheMiss, ContinuationScore, GenParams, Generation, Prompt, UnsupportedOperation, Usage,
                              prompt_json, prompt_kind)

Answer = tuple[Any, int, int]  # (value, tokens_in, tokens_out)


class BaseBackend:
    """Cache and usage plumbing for :class:`~genrec.llm.types.LLMBackend` implementations."""

    name = "base"
    supports_constraints = False  # generate(..., constraint=TokenTrie)

    def __init__(self, model_id: str, cache: LLMCache | str | None = None) -> None:
        self.model_id = str(model_id)
        self.cache = resolve_cache(cache)
        self._usage = Usage()
        self._lock = threading.Lock()

    # -- the protocol -----------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], params: GenParams | None = None, *,
                 constraint: TokenTrie | None = None) -> list[list[Generation]]:
        """``constraint``: a :class:`~genrec.llm.constrained.TokenTrie` over this model's token
        ids; the outputs are then sequences of the trie (a local-backend capability)."""
        params = params or GenParams()
        prompts = list(prompts)
        for p in prompts:
            prompt_kind(p)
        self._check_generate(params, prompts)
        if constraint is not None and not self.supports_constraints:
            raise UnsupportedOperation(f"constrained decoding is a capability of the local backend "
                                       f"(genrec.llm.local.HFBackend), not of {self.name}")
        extra = {} if constraint is None else {"constraint": constraint.fingerprint}
        reqs = [{"prompt": prompt_json(p), "params": params.as_dict(), **extra} for p in prompts]
        gen = (lambda idx: self._generate([prompts[i] for i in idx], params)) if constraint is None else \
            (lambda idx: self._generate([prompts[i] for i in idx], params, constraint))
        return self._answer("generate", reqs, gen,
                            encode=lambda gens: [asdict(g) for g in gens],
                            decode=lambda rows: [Generation(**g) for g in rows])

    def score(self, prompt: Prompt, continuations: Sequence[str]) -> list[ContinuationScore]:
        conts = [str(c) for c in continuations]
        prompt_kind(prompt)
        if not conts:
            return []
        if any(not c for c in conts):
            raise ValueError("score(): an empty continuation has no tokens to score")
        req = {"prompt": prompt_json(prompt), "continuations": conts}
        return self._answer("score", [req], lambda idx: [self._score(prompt, conts)],
                            encode=lambda scores: [[s.logprob, s.tokens] for s in scores],
                            decode=lambda rows: [ContinuationScore(float(a), int(b)) for a, b in rows])[0]

    def next_token_scores(self, prompts: Sequence[Prompt], candidates: Sequence[str | int]) -> list[list[float]]:
        cands = [c if isinstance(c, int) and not isinstance(c, bool) else str(c) for c in candidates]
        if not cands:
            raise ValueError("next_token_scores(): give at least one candidate")
        if len(set(cands)) != len(cands):
            raise ValueError(f"next_token_scores(): candidates must be distinct; got {cands}")
        prompts = list(prompts)
        for p in prompts:
            prompt_kind(p)
        reqs = [{"prompt": prompt_json(p), "candidates": cands} for p in prompts]
        return self._answer("next_token_scores", reqs,
                            lambda idx: self._next_token_scores([prompts[i] for i in idx], cands),
                            encode=lambda v: [float(x) for x in v], decode=lambda v: [float(x) for x in v])

    def usage(self) -> Usage:
        """Calls, tokens, latency and cost so far (live object; ``usage().as_dict()`` for a run card)."""
        return self._usage

    def reset_usage(self) -> None:
        with self._lock:
            self._usage = Usage()

    def describe(self) -> dict[str, Any]:
        """Backend, model, cache (mode and file) and usage, for a run card."""
        cache = None if self.cache is None else {"mode": self.cache.mode, "path": str(self.cache.path)}
        return {"backend": self.name, "model": self.model_id, "cache": cache, "usage": self._usage.as_dict(),
                **self._describe_extra()}

    # -- for subclasses ---------------------------------------------------------------------------
    def _generate(self, prompts: list[Prompt], params: GenParams, constraint: TokenTrie | None = None) -> list[Answer]:
        raise NotImplementedError

    def _score(self, prompt: Prompt, continuations: list[str]) -> Answer:
        raise NotImplementedError

    def _next_token_scores(self, prompts: list[Prompt], candidates: list[str | int]) -> list[Answer]:
        raise NotImplementedError

    def _check_generate(self, params: GenParams, prompts: list[Prompt]) -> None:
        """Raise UnsupportedOperation for settings this backend cannot honour."""

    def _cost(self, tokens_in: int, tokens_out: int) -> float:
        return 0.0


    def _cache_identity(self) -> str:
        """The model part of cache keys (a weights fingerprint for in-memory local models)."""
        return self.model_id

    def _describe_extra(self) -> dict[str, Any]:
        return {}

    # -- plumbing ---------------------------------------------------------------------------------
    def _answer(self, op: str, requests: list[dict], compute: Callable[[list[int]], list[Answer]],
                encode: Callable[[Any], Any], decode: Callable[[Any], Any]) -> list[Any]:
        out: list[Any] = [None] * len(requests)
        todo = list(range(len(requests)))
        keys: list[str] = []
        if self.cache is not None:
            ident = self._cache_identity()
            keys = [call_key(self.name, ident, op, r) for r in requests]
            todo = []
            for i, k in enumerate(keys):
                row = self.cache.get(k)
                if row is None:
                    todo.append(i)
                    continue
                out[i] = decode(row["response"])
                with self._lock:
                    self._usage.add(op, row["tokens_in"], row["tokens_out"], row["latency_s"], row["cost"], True)
            if todo and self.cache.mode == "replay":
                first = str(requests[todo[0]]["prompt"])
                raise CacheMiss(f"replay-only LLM cache {self.cache.path}: {len(todo)} {op} call(s) of "
                                f"{self.name}:{self.model_id} were never recorded (first prompt: {first[:120]!r}); "
                                f"record them with cache mode 'record'")
        if not todo:
            return out
        t0 = time.perf_counter()
        answers = compute(todo)
        per_item = (time.perf_counter() - t0) / len(todo)
        for i, (value, tin, tout) in zip(todo, answers):
            out[i] = value
            cost = self._cost(tin, tout)
            with self._lock:
                self._usage.add(op, tin, tout, per_item, cost, False)
            if self.cache is not None:
                self.cache.put(keys[i], backend=self.name, model=self.model_id, operation=op, request=requests[i],
                               response=encode(value), tokens_in=tin, tokens_out=tout, latency_s=per_item, cost=cost)
        return out


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` cut before the earliest stop string; whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
