"""The LLM backend protocol and the values that cross it (no torch, no HTTP here).

A prompt is one of:
- ``str``: plain text (completions-style);
- ``list[int]``: token ids, already tokenized for this backend's model (GPT4Rec builds its
  prompts at the token level so training and inference see the same ids);
- a chat: a list of ``{"role": ..., "content": ...}`` dicts (rendered by the tokenizer's chat
  template locally, sent to ``/chat/completions`` over HTTP).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Protocol, Sequence, Union, cast, runtime_checkable

from genrec.errors import GenrecError

Message = Mapping[str, str]
Prompt = Union[str, Sequence[int], Sequence[Message]]
DECODINGS = ("auto", "greedy", "sample", "beam", "branch")


class LLMError(GenrecError):
    """An LLM backend failed; the message says what to do."""


class UnsupportedOperation(LLMError):
    """The backend (or its server) cannot do this operation, e.g. beam search over HTTP, or
    log-likelihood scoring on a server that returns no logprobs."""


class CacheMiss(LLMError):
    """Replay-only cache mode and the call was never recorded."""


def prompt_kind(prompt: Prompt) -> str:
    """``"text"``, ``"ids"`` or ``"chat"``; a clear error for anything else."""
    if isinstance(prompt, str):
        return "text"
    if isinstance(prompt, Sequence) and not isinstance(prompt, (bytes, bytearray)):
        if all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            return "ids"
        if all(isinstance(m, Mapping) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
               for m in prompt):
            return "chat"
    raise TypeError("a prompt is a str, a list of token ids, or a list of {'role': str, 'content': str} "
                    f"messages; got {type(prompt).__name__}: {str(prompt)[:80]!r}")


def prompt_json(prompt: Prompt) -> Any:
    """The prompt as plain JSON (for cache keys and HTTP bodies)."""
    kind = prompt_kind(prompt)
    if kind == "text":
        return prompt
    if kind == "ids":
        return [int(t) for t in cast(Sequence[int], prompt)]
    return [{"role": m["role"], "content": m["content"]} for m in cast(Sequence[Message], prompt)]


@dataclass(frozen=True)
class GenParams:
    """Generation settings. ``temperature=0`` is greedy. ``decoding``: ``"auto"`` picks beam search
    when ``num_beams > 1``, sampling when ``temperature > 0``, greedy otherwise; ``"branch"``
    (local only) starts the ``n`` sequences with the ``n`` most likely first tokens, each continued
    greedily. ``n`` sequences are returned per prompt (1 for greedy). Beam search and branch are
    local-backend capabilities. ``stop``: the text is cut before the first stop string.
    ``logprobs``: ask an HTTP server for token logprobs so :attr:`Generation.score` is set (the
    local backend always scores)."""

    max_new_tokens: int = 32
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    n: int = 1
    num_beams: int = 1
    length_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    decoding: str = "auto"
    no_repeat_ngram: int = 0
    logprobs: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop))
        for name in ("max_new_tokens", "n", "num_beams"):
            lo = 0 if name == "max_new_tokens" else 1
            if not isinstance(getattr(self, name), int) or getattr(self, name) < lo:
                raise ValueError(f"GenParams.{name} must be an integer >= {lo}, got {getattr(self, name)!r}")
        if self.temperature < 0:
            raise ValueError(f"GenParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"GenParams.top_p must be in (0, 1], got {self.top_p}")
        if self.decoding not in DECODINGS:
            raise ValueError(f"GenParams.decoding must be one of {', '.join(DECODINGS)}; got {self.decoding!r}")

    def mode(self) -> str:
        """The decoding actually used: greedy, sample, beam or branch."""
        if self.decoding != "auto":
            return self.decoding
        if self.num_beams > 1:
            return "beam"
        return "sample" if self.temperature > 0 else "greedy"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass(frozen=True)
class Generation:
    """One generated sequence. ``score``: the mean token log-probability (greedy, sample, branch)
    or the length-normalised beam score (beam); None when a server gave no logprobs.
    ``finish_reason``: ``"stop"`` (EOS or a stop string) or ``"length"``."""

    text: str
    score: float | None = None
    tokens: int = 0
    finish_reason: str = "stop"


@dataclass(frozen=True)
class ContinuationScore:
    """Log-likelihood of a continuation given a prompt: ``logprob`` is the sum over its
    ``tokens`` tokens; ``mean`` = ``logprob / tokens`` (the length-normalised score)."""

    logprob: float
    tokens: int

    @property
    def mean(self) -> float:
        return self.logprob / self.tokens if self.tokens else 0.0


@dataclass
class Usage:
    """Calls, tokens, latency and cost accumulated by a backend; ``as_dict()`` goes in a run card.
    ``cached_calls`` were answered by the record-replay cache (their tokens and cost are counted
    in ``saved_*``, not in the totals, since nothing was computed or paid)."""

    calls: int = 0
    cached_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    cost: float = 0.0
    saved_tokens_in: int = 0
    saved_tokens_out: int = 0
    saved_cost: float = 0.0
    by_operation: dict[str, int] = field(default_factory=dict)

    def add(self, op: str, tokens_in: int, tokens_out: int, latency_s: float, cost: float, cached: bool) -> None:
        self.by_operation[op] = self.by_operation.get(op, 0) + 1
        if cached:
            self.cached_calls += 1
            self.saved_tokens_in += tokens_in
            self.saved_tokens_out += tokens_out
            self.saved_cost += cost
            return
        self.calls += 1
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        self.latency_s += latency_s
        self.cost += cost

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["latency_s"] = round(self.latency_s, 4)
        return d


@runtime_checkable
class LLMBackend(Protocol):
    """What every LLM backend offers (the map is in :mod:`genrec.llm`).

    ``generate``: per prompt, ``params.n`` (or fewer) :class:`Generation` s; ``constraint`` (a
    :class:`genrec.llm.constrained.TokenTrie`, local backend only) limits them to its sequences.
    ``score``: per continuation, its :class:`ContinuationScore` given ``prompt`` (the prompt's
    work is shared across the continuations where the backend can).
    ``next_token_scores``: per prompt, the log-probability of each candidate as the next token
    (e.g. verbalizer letters "A".."T"), from one forward pass; each candidate must be one token
    (a string, or a token id for the local backend).
    ``usage``: the accumulated :class:`Usage`. ``describe``: what a run card records.
    """

    name: str
    model_id: str

    def generate(self, prompts: Sequence[Prompt], params: GenParams | None = None, *,
                 constraint: Any = None) -> list[list[Generation]]: ...

    def score(self, prompt: Prompt, continuations: Sequence[str]) -> list[ContinuationScore]: ...

    def next_token_scores(self, prompts: Sequence[Prompt], candidates: Sequence[str | int]) -> list[list[float]]: ...

    def usage(self) -> Usage: ...

    def describe(self) -> dict[str, Any]: ...
