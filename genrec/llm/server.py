"""A small OpenAI-compatible server over the local backend: ``/v1/models``, ``/v1/completions``
(text or token-id prompts, one or a list; ``echo`` and ``logprobs`` with ``top_logprobs`` and
``text_offset``) and ``/v1/chat/completions`` (``logprobs`` / ``top_logprobs``).

It serves any model :class:`~genrec.llm.local.HFBackend` loads, so genrec's HTTP backend (and
any OpenAI client) can be tested against a real model on loopback, and a user can share one
loaded model between processes::

    python -m genrec.llm.server --model smollm2-135m --port 8001

Per-token logprobs of generated text come from one forward pass over prompt + generated ids
(the ids the model generated, so they are exact). Requests are served one at a time (one model,
one lock). No authentication: bind it to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field

from genrec.llm.types import GenParams, LLMError

PromptIn = Union[str, list[int], list[str], list[list[int]]]


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = ""
    prompt: PromptIn
    max_tokens: int = Field(16, ge=0)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = Field(1, ge=1, le=64)
    stop: Union[str, list[str], None] = None
    seed: int = 0
    logprobs: Union[int, None] = Field(None, ge=0, le=100)
    echo: bool = False


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = ""
    messages: list[Message] = Field(min_length=1)
    max_tokens: Union[int, None] = Field(None, ge=0)
    max_completion_tokens: Union[int, None] = Field(None, ge=0)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = Field(1, ge=1, le=64)
    stop: Union[str, list[str], None] = None
    seed: int = 0
    logprobs: bool = False
    top_logprobs: Union[int, None] = Field(None, ge=0, le=100)


def _params(max_tokens: int, temperature: float, top_p: float, n: int, seed: int, stop) -> GenParams:
    stop = [stop] if isinstance(stop, str) else list(stop or [])
    return GenParams(max_new_tokens=max_tokens, temperature=temperature, top_p=top_p, n=n if temperature > 0 else 1,
                     seed=seed, stop=tuple(stop))


def create_app(backend) -> Any:
    """The FastAPI app serving ``backend`` (an :class:`~genrec.llm.local.HFBackend`)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI(title="genrec LLM server (OpenAI-compatible)")
    lock = threading.Lock()
    tok = backend.tokenizer

    @app.exception_handler(LLMError)
    @app.exception_handler(ValueError)
    async def _bad_request(_request, exc):  # the OpenAI error shape
        return JSONResponse(status_code=400, content={"error": {"message": str(exc), "type": "invalid_request_error"}})

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": backend.model_id, "object": "model", "owned_by": "genrec"}]}

    def prompt_ids(p) -> tuple[list[int], list[int], str]:
        """(ids, character offset of each token, prompt text)."""
        if isinstance(p, str):
            enc = tok(p, add_special_tokens=False, return_offsets_mapping=True)
            return list(enc["input_ids"]), [a for a, _ in enc["offset_mapping"]], p
        ids = [int(t) for t in p]
        return ids, _decoded_offsets(tok, ids, 0), tok.decode(ids)

    def logprobs_block(ids: list[int], start: int, offsets: list[int], k: int) -> dict:
        rows = backend.position_logprobs(ids, start, k)
        first = [] if start > 0 else [(None, None)]
        pairs = first + [(lp, dict(top) if k else None) for lp, top in rows]
        return {"tokens": [tok.decode([t]) for t in ids[start:]],
                "token_logprobs": [lp for lp, _ in pairs], "top_logprobs": [t for _, t in pairs],
                "text_offset": offsets[start:]}

    @app.post("/v1/completions")
    def completions(req: CompletionRequest) -> dict:
        raw = req.prompt
        prompts = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
        params = _params(req.max_tokens, req.temperature, req.top_p, req.n, req.seed, req.stop)
        choices: list[dict[str, Any]] = []
        p_tok, c_tok = 0, 0
        with lock:
            for p in prompts:
                ids, offsets, text = prompt_ids(p)
                p_tok += len(ids)
                gens = backend.generate_ids([ids], params)[0] if req.max_tokens > 0 else \
                    [(None, [])] * (params.n)
                for g, new in gens:
                    c_tok += len(new)
                    gen_text = g.text if g is not None else ""
                    choice: dict[str, Any] = {"index": len(choices), "text": (text if req.echo else "") + gen_text,
                                              "finish_reason": g.finish_reason if g is not None else "length",
                                              "logprobs": None}
                    if req.logprobs is not None:
                        full = ids + new
                        offs = offsets + _decoded_offsets(tok, new, len(text))
                        choice["logprobs"] = logprobs_block(full, 0 if req.echo else len(ids), offs, req.logprobs)
                    choices.append(choice)
        return {"id": f"cmpl-{uuid.uuid4().hex[:12]}", "object": "text_completion", "created": int(time.time()),
                "model": backend.model_id, "choices": choices,
                "usage": {"prompt_tokens": p_tok, "completion_tokens": c_tok, "total_tokens": p_tok + c_tok}}

    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest) -> dict:
        max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        params = _params(16 if max_tokens is None else max_tokens, req.temperature, req.top_p, req.n, req.seed,
                         req.stop)
        k = req.top_logprobs or 0
        with lock:
            ids = backend.encode([m.model_dump() for m in req.messages])
            gens = backend.generate_ids([ids], params)[0] if params.max_new_tokens > 0 else [(None, [])]
            choices: list[dict[str, Any]] = []
            for g, new in gens:
                choice: dict[str, Any] = {"index": len(choices), "finish_reason": g.finish_reason if g else "length",
                                          "message": {"role": "assistant", "content": g.text if g else ""},
                                          "logprobs": None}
                if req.logprobs:
                    rows = backend.position_logprobs(ids + new, len(ids), k)
                    choice["logprobs"] = {"content": [
                        {"token": tok.decode([t]), "logprob": lp,
                         "top_logprobs": [{"token": s, "logprob": v} for s, v in top]}
                        for t, (lp, top) in zip(new, rows)]}
                choices.append(choice)
        c_tok = sum(len(new) for _, new in gens)
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                "model": backend.model_id, "choices": choices,
                "usage": {"prompt_tokens": len(ids), "completion_tokens": c_tok, "total_tokens": len(ids) + c_tok}}

    return app


def _decoded_offsets(tok, ids: list[int], base: int) -> list[int]:
    """Character offset of each token in the decoded text, counted from ``base``."""
    out, text_len = [], 0
    for i in range(len(ids)):
        out.append(base + text_len)
        text_len = len(tok.decode(ids[:i + 1]))
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m genrec.llm.server --model NAME_OR_PATH [--host 127.0.0.1] [--port 8001]``."""
    import uvicorn

    from genrec.llm.local import HFBackend

    ap = argparse.ArgumentParser(prog="python -m genrec.llm.server", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="HF id, local folder, .gguf file or alias (smollm2-135m)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--device", default=None)
    args = ap.parse_args(argv)
    uvicorn.run(create_app(HFBackend.load(args.model, device=args.device)), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
