"""An OpenAI-compatible HTTP backend (vLLM, llama.cpp's server, TGI, OpenAI, ``genrec.llm.server``).

- ``generate``: a text or token-id prompt goes to ``/completions``, a chat to
  ``/chat/completions``; ``n``, ``temperature``, ``top_p``, ``seed``, ``stop``, ``max_tokens``.
  Beam search and first-token branching are local-backend capabilities (UnsupportedOperation).
- ``score``: ``/completions`` with ``echo=true`` and ``logprobs``: the prompt + each continuation
  is echoed with per-token logprobs, and the tokens from the prompt's end on are summed (the
  continuations of one prompt go in one request). Servers that give no prompt logprobs (OpenAI's
  chat models) cannot score: a clear :class:`UnsupportedOperation`.
- ``next_token_scores``: one token with ``top_logprobs``; a candidate the server does not list
  among its top ``max_top_logprobs`` gets ``-inf``.
- Timeouts, retries with exponential backoff on connection errors, 429 and 5xx (``Retry-After``
  honoured), the API key from ``api_key`` or the environment variable ``api_key_env`` (never
  written to the cache), cost from prices per million tokens.

httpx rather than the ``openai`` client: it is already a dependency of the service, and the
official client has no ``echo`` scoring path for OpenAI-compatible servers of its own.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

from genrec.llm.base import Answer, BaseBackend
from genrec.llm.cache import LLMCache
from genrec.llm.types import (ContinuationScore, GenParams, Generation, LLMError, Prompt, UnsupportedOperation,
                              prompt_json, prompt_kind)

log = logging.getLogger(__name__)


class LLMServerError(LLMError):
    """The server could not be reached or answered with an error; the message says which and why."""


class OpenAIBackend(BaseBackend):
    """:class:`~genrec.llm.types.LLMBackend` over an OpenAI-compatible server (module docstring).

    ``base_url`` ends before ``/completions``, e.g. ``http://127.0.0.1:8000/v1``."""

    name = "openai"

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", timeout: float = 60.0, max_retries: int = 3,
                 backoff: float = 0.5, price_in_per_mtok: float = 0.0, price_out_per_mtok: float = 0.0,
                 max_top_logprobs: int = 20, cache: LLMCache | str | None = None) -> None:
        import httpx

        if not str(base_url).startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if max_retries < 0 or timeout <= 0:
            raise ValueError("max_retries must be >= 0 and timeout > 0")
        super().__init__(model, cache)
        self.base_url = str(base_url).rstrip("/")
        self.max_retries, self.backoff = int(max_retries), float(backoff)
        self.timeout = float(timeout)
        self.prices = (float(price_in_per_mtok), float(price_out_per_mtok))
        self.max_top_logprobs = int(max_top_logprobs)
        key = api_key if api_key is not None else os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(timeout=self.timeout, headers=headers)

    def close(self) -> None:
        self._client.close()

    # -- HTTP -------------------------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        url = f"{self.base_url}{path}"
        log.debug("LLM request to %s: %s", url, body)  # what leaves the machine, for who needs to see it
        why = ""
        for attempt in range(self.max_retries + 1):
            wait = self.backoff * 2 ** attempt
            try:
                r = self._client.post(url, json=body)
            except httpx.TimeoutException:
                why = f"no answer within the timeout of {self.timeout:g} s"
            except httpx.TransportError as e:
                why = f"{type(e).__name__}: {e}"
            else:
                if r.status_code < 400:
                    try:
                        return r.json()
                    except ValueError:
                        raise LLMServerError(f"{url} answered HTTP {r.status_code} with a body that is not JSON: "
                                             f"{r.text[:200]!r}") from None
                why = f"HTTP {r.status_code}: {_error_detail(r)}"
                if r.status_code != 429 and r.status_code < 500:
                    raise LLMServerError(f"the LLM server at {url} refused the request ({why})")
                retry_after = r.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    wait = max(wait, float(retry_after))
            if attempt < self.max_retries:
                log.warning("LLM server %s: %s; retrying in %.1f s (%d/%d)", url, why, wait, attempt + 1,
                            self.max_retries)
                time.sleep(wait)
        raise LLMServerError(f"the LLM server at {url} failed after {self.max_retries + 1} attempt(s): {why}; "
                             f"is it running, and is base_url right (it ends before /completions, e.g. "
                             f"http://127.0.0.1:8000/v1)?")

    def _cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.prices[0] + tokens_out * self.prices[1]) / 1e6

    def _describe_extra(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "timeout_s": self.timeout, "max_retries": self.max_retries}

    def _no_logprobs(self, what: str, endpoint: str) -> UnsupportedOperation:
        return UnsupportedOperation(f"{what} needs logprobs, and the server at {self.base_url}{endpoint} returned "
                                    f"none for model {self.model_id!r}; use a server that returns them (vLLM, "
                                    f"llama.cpp, genrec.llm.server) or the local backend (genrec.llm.local.HFBackend)")

    # -- generation -------------------------------------------------------------------------------
    def _check_generate(self, params: GenParams, prompts: list[Prompt]) -> None:
        if params.mode() in ("beam", "branch"):
            raise UnsupportedOperation(f"{params.mode()} decoding is a capability of the local backend "
                                       f"(genrec.llm.local.HFBackend); OpenAI-compatible servers do not offer it")
        if params.no_repeat_ngram:
            raise UnsupportedOperation("no_repeat_ngram is a capability of the local backend")

    def _sampling(self, params: GenParams) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_id, "max_tokens": params.max_new_tokens,
                                "temperature": params.temperature if params.mode() == "sample" else 0.0,
                                "top_p": params.top_p, "n": params.n if params.mode() == "sample" else 1,
                                "seed": params.seed}
        if params.stop:
            body["stop"] = list(params.stop)
        return body

    def _generate(self, prompts: list[Prompt], params: GenParams, constraint=None) -> list[Answer]:
        out: list[Answer] = []
        for p in prompts:
            body = self._sampling(params)
            chat = prompt_kind(p) == "chat"
            if chat:
                body["messages"] = prompt_json(p)
                if params.logprobs:
                    body["logprobs"] = True
                res = self._post("/chat/completions", body)
            else:
                body["prompt"] = prompt_json(p)
                if params.logprobs:
                    body["logprobs"] = 1
                res = self._post("/completions", body)
            choices = sorted(res.get("choices") or [], key=lambda c: c.get("index", 0))
            usage = res.get("usage") or {}
            gens = []
            for c in choices:
                text = ((c.get("message") or {}).get("content") if chat else c.get("text")) or ""
                lps = _choice_logprobs(c, chat)
                if params.logprobs and lps is None:
                    raise self._no_logprobs("generate(logprobs=True)", "/chat/completions" if chat else "/completions")
                n_tok = len(lps) if lps is not None else int(usage.get("completion_tokens", 0)) // max(len(choices), 1)
                score = (sum(lps) / len(lps) if lps else 0.0) if lps is not None else None
                gens.append(Generation(text=text, score=score, tokens=n_tok,
                                       finish_reason=c.get("finish_reason") or "stop"))
            out.append((gens, int(usage.get("prompt_tokens", 0)),
                        int(usage.get("completion_tokens", sum(g.tokens for g in gens)))))
        return out

    # -- scoring ----------------------------------------------------------------------------------
    def _score(self, prompt: Prompt, continuations: list[str]) -> Answer:
        if prompt_kind(prompt) != "text":
            raise UnsupportedOperation("score() over HTTP needs a text prompt (the completions endpoint echoes "
                                       "prompt + continuation with logprobs); render a chat to text first, or use "
                                       "the local backend")
        text = str(prompt)
        ctx = text.rstrip(" ")
        fulls = [ctx + text[len(ctx):] + c for c in continuations]
        res = self._post("/completions", {"model": self.model_id, "prompt": fulls, "max_tokens": 1, "echo": True,
                                          "logprobs": 0, "temperature": 0.0})
        choices = sorted(res.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != len(fulls):
            raise LLMServerError(f"{self.base_url}/completions returned {len(choices)} choices for "
                                 f"{len(fulls)} prompts")
        scores = []
        for full, c in zip(fulls, choices):
            lp = c.get("logprobs") or {}
            offsets, values = lp.get("text_offset"), lp.get("token_logprobs")
            if not offsets or not values:
                raise self._no_logprobs("score() (echo=true)", "/completions")
            picked = [v for o, v in zip(offsets, values) if len(ctx) <= o < len(full)]
            if any(v is None for v in picked) or not picked:
                raise self._no_logprobs("score() (echo=true)", "/completions")
            scores.append(ContinuationScore(float(sum(picked)), len(picked)))
        usage = res.get("usage") or {}
        return scores, int(usage.get("prompt_tokens", 0)), 0

    def _next_token_scores(self, prompts: list[Prompt], candidates: list[str | int]) -> list[Answer]:
        if any(isinstance(c, int) for c in candidates):
            raise UnsupportedOperation("token-id candidates need the local backend; a server lists tokens as text, "
                                       "so pass the candidates as strings")
        k = self.max_top_logprobs
        if len(candidates) > self.max_top_logprobs:
            log.warning("%d candidates but the server lists at most %d top logprobs: the others get -inf",
                        len(candidates), self.max_top_logprobs)
        out: list[Answer] = []
        for p in prompts:
            chat = prompt_kind(p) == "chat"
            body: dict[str, Any] = {"model": self.model_id, "max_tokens": 1, "temperature": 0.0}
            if chat:
                body.update(messages=prompt_json(p), logprobs=True, top_logprobs=k)
                res = self._post("/chat/completions", body)
            else:
                body.update(prompt=prompt_json(p), logprobs=k)
                res = self._post("/completions", body)
            choice = (res.get("choices") or [{}])[0]
            top = _first_top_logprobs(choice, chat)
            if top is None:
                raise self._no_logprobs("next_token_scores()", "/chat/completions" if chat else "/completions")
            row = [float(top[c]) if c in top else -math.inf for c in candidates]
            out.append((row, int((res.get("usage") or {}).get("prompt_tokens", 0)), 1))
        return out


def _error_detail(r) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:200]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("message", err))[:300]
    return str(body.get("detail", body) if isinstance(body, dict) else body)[:300]


def _choice_logprobs(choice: dict, chat: bool) -> list[float] | None:
    lp = choice.get("logprobs")
    if not lp:
        return None
    if chat:
        content = lp.get("content")
        return None if content is None else [float(t["logprob"]) for t in content]
    vals = lp.get("token_logprobs")
    return None if vals is None else [float(v) for v in vals if v is not None]


def _first_top_logprobs(choice: dict, chat: bool) -> dict[str, float] | None:
    """The first generated position's top logprobs as {token text: logprob} (best per text)."""
    lp = choice.get("logprobs")
    if not lp:
        return None
    if chat:
        content = lp.get("content") or []
        if not content or content[0].get("top_logprobs") is None:
            return None
        pairs = [(t["token"], float(t["logprob"])) for t in content[0]["top_logprobs"]]
    else:
        tops = lp.get("top_logprobs") or []
        if not tops or tops[0] is None:
            return None
        pairs = [(t, float(v)) for t, v in tops[0].items()]
    out: dict[str, float] = {}
    for t, v in pairs:
        out[t] = max(v, out.get(t, -math.inf))
    return out
