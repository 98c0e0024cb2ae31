"""The local Hugging Face causal-LM backend: any HF id or local folder, the GGUF SmolLM2 import,
a ``.gguf`` file, or an in-memory (model, tokenizer) pair such as the scratch GPT-2.

- Generation: batched, left-padded, with the prompt's KV cache shared across beams/samples
  (:func:`genrec.lm.generate.generate_sequences`); greedy, sampling, beam search with
  ``n`` return sequences, and first-token branching.
- Scoring continuations: the prompt is encoded once; its KV cache is copied for each batch of
  continuations, so the prompt's work is shared. Continuation tokens follow lm-evaluation-harness:
  the tokens of ``prompt + continuation`` after those of ``prompt`` (trailing spaces of the prompt
  move to the continuation), or the continuation encoded alone if the two disagree at the joint.
- Next-token scores: one forward pass over the (batched) prompts; the log-softmax over the whole
  vocabulary at the last position, read at each candidate's token.
- Chat prompts go through the tokenizer's chat template (with the generation prompt); a
  tokenizer without one (the scratch GPT-2) gets ``"role: content"`` lines and ``"assistant:"``.
- Precision: bf16 autocast where it pays (:func:`genrec.torch_utils.resolve_bf16`); device cpu or
  cuda, chosen automatically unless given.
"""

from __future__ import annotations

import copy
import hashlib
from typing import TYPE_CHECKING, Any, Sequence, cast

from genrec.llm.base import Answer, BaseBackend, truncate_at_stop
from genrec.llm.cache import LLMCache
from genrec.llm.constrained import TokenTrie
from genrec.llm.types import ContinuationScore, GenParams, Generation, Prompt, prompt_kind

if TYPE_CHECKING:
    import torch


class HFBackend(BaseBackend):
    """:class:`~genrec.llm.types.LLMBackend` over a transformers causal LM (see the module docstring)."""

    name = "hf"
    supports_constraints = True

    def __init__(self, model, tokenizer, *, model_id: str | None = None, device: str | torch.device | None = None,
                 bf16: bool | str = "auto", batch_size: int = 16, cache: LLMCache | str | None = None) -> None:
        from genrec.torch_utils import pick_device, resolve_bf16

        src = getattr(model, "_genrec_source", None) or {}
        default_id = src.get("id") or src.get("path") or getattr(model.config, "_name_or_path", "") or \
            type(model).__name__
        super().__init__(model_id or default_id, cache)
        self.device = pick_device(device) if device is None or isinstance(device, str) else device
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.bf16 = resolve_bf16(bf16, self.device)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self._fingerprint: str | None = None

    @classmethod
    def load(cls, name_or_path: str, *, device: str | None = None, **kw: Any) -> "HFBackend":
        """From an HF id, a local folder, a ``.gguf`` file or an alias ("smollm2-135m"), via
        :func:`genrec.lm.load.load_causal_lm` (GGUF imported once and cached as safetensors)."""
        from genrec.lm.load import load_causal_lm

        model, tok = load_causal_lm(name_or_path, device=device)
        return cls(model, tok, model_id=kw.pop("model_id", None) or str(name_or_path), device=device, **kw)

    # -- prompts ----------------------------------------------------------------------------------
    def render_chat(self, messages: Sequence[dict]) -> str:
        """The chat as the model sees it, ending where the assistant's answer starts."""
        msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant:"

    def prompt_text(self, prompt: Prompt) -> str:
        kind = prompt_kind(prompt)
        if kind == "chat":
            return self.render_chat(cast(Sequence[dict], prompt))
        return cast(str, prompt) if kind == "text" else self.tokenizer.decode(list(cast(Sequence[int], prompt)))

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of a prompt (no special tokens added beyond what a chat template writes)."""
        if prompt_kind(prompt) == "ids":
            return [int(t) for t in cast(Sequence[int], prompt)]
        return self._enc(self.prompt_text(prompt))

    def _enc(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def candidate_ids(self, candidates: Sequence[str | int]) -> list[int]:
        """The one token id of each candidate (a string, or a token id as is); a clear error for
        a string of several tokens or an id outside the vocabulary."""
        ids = []
        for c in candidates:
            if isinstance(c, int):
                if not 0 <= c < len(self.tokenizer):
                    raise ValueError(f"next-token candidate id {c} is outside the vocabulary "
                                     f"(0..{len(self.tokenizer) - 1})")
                ids.append(c)
                continue
            t = self._enc(c)
            if len(t) != 1:
                pieces = [self.tokenizer.decode([i]) for i in t]
                raise ValueError(f"next-token candidate {c!r} is {len(t)} tokens for this tokenizer ({pieces}); "
                                 f"each candidate must be one token (try it with or without a leading space)")
            ids.append(t[0])
        if len(set(ids)) != len(ids):
            raise ValueError(f"next-token candidates {list(candidates)} map to the same token twice")
        return ids

    # -- the three operations ---------------------------------------------------------------------
    def _generate(self, prompts: list[Prompt], params: GenParams, constraint: TokenTrie | None = None) -> list[Answer]:
        ids = [self.encode(p) for p in prompts]
        rows = self.generate_ids(ids, params, constraint=constraint)
        return [([g for g, _ in row], len(p), sum(g.tokens for g, _ in row)) for p, row in zip(ids, rows)]

    def generate_ids(self, prompts: list[list[int]], params: GenParams,
                     constraint: TokenTrie | None = None) -> list[list[tuple[Generation, list[int]]]]:
        """Uncached generation from token ids: per prompt, each :class:`Generation` with its new
        token ids (what the OpenAI-compatible server needs for per-token logprobs)."""
        from genrec.lm.generate import generate_sequences

        mode = params.mode()
        beams = max(params.num_beams, params.n) if mode == "beam" else 1
        seqs = generate_sequences(self.model, self.tokenizer, prompts, mode=mode, n=params.n, num_beams=beams,
                                  max_new_tokens=params.max_new_tokens, batch_size=self.batch_size,
                                  device=self.device, bf16=self.bf16, temperature=params.temperature or 1.0,
                                  top_p=params.top_p, length_penalty=params.length_penalty, seed=params.seed,
                                  no_repeat_ngram=params.no_repeat_ngram,
                                  allowed_tokens=None if constraint is None else constraint.allowed)
        out = []
        for rows in seqs:
            gens = []
            for text, score, n_tok, ended, new_ids in rows:
                cut, stopped = truncate_at_stop(text, params.stop)
                if stopped:  # keep the ids of the text before the stop string
                    while new_ids and len(self.tokenizer.decode(new_ids, skip_special_tokens=True)) > len(cut):
                        new_ids = new_ids[:-1]
                finish = "stop" if ended or stopped or params.max_new_tokens == 0 else "length"
                gens.append((Generation(text=cut, score=float(score), tokens=n_tok, finish_reason=finish), new_ids))
            out.append(gens)
        return out

    def _context_and_continuations(self, prompt: Prompt, continuations: list[str]) -> tuple[list[int], list[list[int]]]:
        if prompt_kind(prompt) == "ids":
            return self.encode(prompt), [self._enc(c) for c in continuations]
        text = self.prompt_text(prompt)
        stripped = text.rstrip(" ")
        moved = text[len(stripped):]
        ctx = self._enc(stripped)
        conts = []
        for c in continuations:
            c = moved + c
            whole = self._enc(stripped + c)
            conts.append(whole[len(ctx):] if whole[:len(ctx)] == ctx and len(whole) > len(ctx) else self._enc(c))
        return ctx, conts

    def _score(self, prompt: Prompt, continuations: list[str]) -> Answer:
        import torch

        from genrec.lm.generate import _cache_arg
        from genrec.torch_utils import autocast

        ctx, conts = self._context_and_continuations(prompt, continuations)
        if not ctx:
            raise ValueError("score() needs a prompt of at least one token")
        if any(not c for c in conts):
            raise ValueError("score(): a continuation encodes to no tokens")
        dev, arg = self.device, _cache_arg(self.model.forward)
        sums: list[float] = []
        with torch.inference_mode(), autocast(dev, self.bf16):
            from transformers import DynamicCache

            cache = DynamicCache(config=self.model.config)
            out = self.model(input_ids=torch.tensor([ctx], device=dev), use_cache=True, **{arg: cache},
                             **_last_logits_only(self.model))
            last = torch.log_softmax(out.logits[0, -1].float(), -1)
            for s in range(0, len(conts), self.batch_size):
                chunk = conts[s:s + self.batch_size]
                width = max(len(c) for c in chunk)
                x = torch.full((len(chunk), width), self.tokenizer.pad_token_id, dtype=torch.long)
                m = torch.zeros((len(chunk), width), dtype=torch.long)
                for r, c in enumerate(chunk):
                    x[r, :len(c)] = torch.tensor(c)
                    m[r, :len(c)] = 1
                x, m = x.to(dev), m.to(dev)
                c_cache = copy.deepcopy(cache)
                if len(chunk) > 1:
                    c_cache.batch_repeat_interleave(len(chunk))
                pos = torch.arange(len(ctx), len(ctx) + width, device=dev).expand(len(chunk), -1)
                mask = torch.cat([torch.ones((len(chunk), len(ctx)), dtype=torch.long, device=dev), m], 1)
                o = self.model(input_ids=x, attention_mask=mask, position_ids=pos, use_cache=True, **{arg: c_cache})
                logp = torch.log_softmax(o.logits.float(), -1)
                tok = torch.cat([last[x[:, 0]][:, None], logp[:, :-1].gather(-1, x[:, 1:, None]).squeeze(-1)], 1)
                sums.extend((tok * m).sum(1).tolist())
        scores = [ContinuationScore(float(v), len(c)) for v, c in zip(sums, conts)]
        return scores, len(ctx) + sum(len(c) for c in conts), 0

    def next_token_logprobs(self, prompts: list[Prompt]):
        """Log-softmax over the vocabulary of the next token after each prompt, ``[len(prompts), V]``
        (float32, cpu): one forward pass per batch of ``batch_size`` left-padded prompts."""
        import torch

        from genrec.torch_utils import autocast

        ids = [self.encode(p) for p in prompts]
        if any(not p for p in ids):
            raise ValueError("next-token scores need prompts of at least one token")
        rows: list[Any] = [None] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        pad = self.tokenizer.pad_token_id
        with torch.inference_mode(), autocast(self.device, self.bf16):
            for s in range(0, len(order), self.batch_size):
                idx = order[s:s + self.batch_size]
                width = max(len(ids[i]) for i in idx)
                x = torch.full((len(idx), width), pad, dtype=torch.long)
                m = torch.zeros((len(idx), width), dtype=torch.long)
                for r, i in enumerate(idx):
                    x[r, width - len(ids[i]):] = torch.tensor(ids[i])
                    m[r, width - len(ids[i]):] = 1
                pos = (m.cumsum(-1) - 1).clamp(min=0)
                out = self.model(input_ids=x.to(self.device), attention_mask=m.to(self.device),
                                 position_ids=pos.to(self.device), **_last_logits_only(self.model))
                logp = torch.log_softmax(out.logits[:, -1].float(), -1).cpu()
                for r, i in enumerate(idx):
                    rows[i] = logp[r]
        return torch.stack(rows), [len(p) for p in ids]

    def _next_token_scores(self, prompts: list[Prompt], candidates: list[str | int]) -> list[Answer]:
        cand = self.candidate_ids(candidates)
        logp, lengths = self.next_token_logprobs(prompts)
        picked = logp[:, cand].tolist()
        return [(row, n, 0) for row, n in zip(picked, lengths)]

    # -- for the OpenAI-compatible server ---------------------------------------------------------
    def token_logprobs(self, ids: list[int]) -> list[float | None]:
        """Log-probability of each token given the ones before it (None for the first), one
        forward pass (what ``/completions`` with ``echo`` and ``logprobs`` returns)."""
        return [None] + [lp for lp, _ in self.position_logprobs(ids, 1, 0)] if ids else []

    def position_logprobs(self, ids: list[int], start: int, k: int) -> list[tuple[float, list[tuple[str, float]]]]:
        """For each position ``i >= start`` (>= 1) of ``ids``: the log-probability of ``ids[i]``
        given ``ids[:i]`` and the ``k`` most likely tokens there (:meth:`top_tokens`); one
        forward pass."""
        import torch

        from genrec.torch_utils import autocast

        start = max(int(start), 1)
        if len(ids) <= start:
            return []
        with torch.inference_mode(), autocast(self.device, self.bf16):
            logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0].float()
        logp = torch.log_softmax(logits[start - 1:-1], -1).cpu()
        picked = logp.gather(-1, torch.tensor(ids[start:])[:, None])[:, 0].tolist()
        return [(float(v), self.top_tokens(logp[r], k) if k > 0 else []) for r, v in enumerate(picked)]

    def top_tokens(self, logp_row, k: int) -> list[tuple[str, float]]:
        """The ``k`` most likely next tokens of one row of :meth:`next_token_logprobs`, as
        (decoded text, logprob); tokens that decode to the same text are kept once (the best)."""
        import torch

        top = torch.topk(logp_row, min(len(logp_row), 4 * k + 8))
        out: dict[str, float] = {}
        for i, v in zip(top.indices.tolist(), top.values.tolist()):
            t = self.tokenizer.decode([i])
            if t not in out:
                out[t] = float(v)
            if len(out) == k:
                break
        return list(out.items())

    # -- identity ---------------------------------------------------------------------------------
    def _cache_identity(self) -> str:
        """Model id + a SHA-256 of the weights (a retrained model at the same path is another
        model) + the precision; computed once, on the first cached call."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for name, t in sorted(self.model.state_dict().items()):
                h.update(name.encode())
                h.update(t.detach().float().cpu().numpy().tobytes())
            h.update(str(len(self.tokenizer)).encode())
            self._fingerprint = h.hexdigest()[:16]
        return f"{self.model_id}|weights:{self._fingerprint}|{'bf16' if self.bf16 else 'fp32'}"

    def _describe_extra(self) -> dict[str, Any]:
        return {"device": str(self.device), "precision": "bf16" if self.bf16 else "fp32",
                "batch_size": self.batch_size}


def _last_logits_only(model) -> dict[str, int]:
    """``logits_to_keep=1`` where the model's forward takes it: only the last position's logits
    are needed, and the full ``[batch, length, vocabulary]`` tensor is about 1 GB for 8 prompts
    of 600 tokens over SmolLM2's 49,152 tokens."""
    import inspect

    try:
        return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    except (TypeError, ValueError):
        return {}
