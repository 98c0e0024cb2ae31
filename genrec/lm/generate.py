"""Multi-query generation: m beams -> m distinct queries with their scores, batched across users.

Prompts are left-padded and grouped by length (less padding), decoded under bf16 autocast with
the KV cache, and capped at ``max_new_tokens`` (a title rarely needs more than ~20 tokens).
"""

from __future__ import annotations

from typing import Sequence

MODES = ("beam", "branch", "greedy", "sample")


def generate_queries(model, tokenizer, prompts: Sequence[Sequence[int]], num_queries: int = 10, *,
                     mode: str = "beam", max_new_tokens: int = 20, batch_size: int = 64, device=None,
                     bf16: bool | str = "auto", temperature: float = 1.0, top_p: float = 0.95,
                     length_penalty: float = 1.0, seed: int = 0, share_prefill: bool = True,
                     no_repeat_ngram: int = 0) -> list[list[tuple[str, float]]]:
    """For each prompt (token ids), up to ``num_queries`` distinct queries, best first, as
    ``(text, score)``: :func:`generate_sequences` (see there for the modes and the scores)
    followed by :func:`distinct_queries`."""
    if num_queries < 1:
        raise ValueError("num_queries must be >= 1")
    seqs = generate_sequences(model, tokenizer, prompts, mode=mode, n=num_queries, num_beams=num_queries,
                              max_new_tokens=max_new_tokens, batch_size=batch_size, device=device, bf16=bf16,
                              temperature=temperature, top_p=top_p, length_penalty=length_penalty, seed=seed,
                              share_prefill=share_prefill, no_repeat_ngram=no_repeat_ngram)
    return [distinct_queries([(t, sc) for t, sc, *_ in rows], num_queries) for rows in seqs]


def distinct_queries(seqs: Sequence[tuple[str, float]], limit: int) -> list[tuple[str, float]]:
    """Whitespace-folded, non-empty texts, each kept once with its best score, best first, at most
    ``limit`` (so a user may get fewer queries than beams)."""
    seen: dict[str, float] = {}
    for text, score in seqs:
        q = " ".join(text.split())
        if q and (q not in seen or score > seen[q]):
            seen[q] = score
    return sorted(seen.items(), key=lambda kv: -kv[1])[:limit]


def generate_sequences(model, tokenizer, prompts: Sequence[Sequence[int]], *, mode: str = "beam", n: int = 1,
                       num_beams: int = 1, max_new_tokens: int = 20, batch_size: int = 64, device=None,
                       bf16: bool | str = "auto", temperature: float = 1.0, top_p: float = 0.95,
                       length_penalty: float = 1.0, seed: int = 0, share_prefill: bool = True,
                       no_repeat_ngram: int = 0,
                       allowed_tokens=None) -> list[list[tuple[str, float, int, bool, list[int]]]]:
    """For each prompt (token ids), its generated sequences as ``(text, score, number of new
    tokens, ended with EOS, the new token ids up to and including EOS)``, in the order
    transformers returns them (beams best first): ``n`` per prompt (1 for greedy; for beam search
    ``n <= num_beams``). Beam scores are the length-normalised
    log-probabilities of transformers' beam search; greedy, branch and sampled sequences are scored
    by their mean token log-probability. Sampling seeds torch's global RNG with ``seed`` once.

    ``share_prefill``: transformers' ``generate`` copies each prompt m times (one per beam) before
    encoding it, so the prompt (most of the tokens) is encoded m times. We encode each prompt once
    into a KV cache, repeat the cache m times and hand it to ``generate``, which then decodes only
    the new tokens (same results, about m times less prompt work).

    ``mode="branch"`` is our answer to beams that collapse on one interest (all m beams variants of
    one product, which under-trained LMs do): the n most likely *first* tokens (the brand or
    product type, in most catalogs) each start one sequence, continued greedily; a sequence's score
    is its mean token log-probability, first token included. transformers has no diverse (group)
    beam search any more, and branching on the first token is what costs least on a CPU.
    Measured on Beauty it raised category coverage but lowered Recall
    (benchmarks/results/gpt4rec_beauty_small6.md), so beam search stays GPT4Rec's default.

    ``no_repeat_ngram=k`` (k > 0) forbids a sequence to repeat any k-gram of its own tokens (the
    prompt is not counted), against the "the future, the future, ..." loops of under-trained LMs.

    ``allowed_tokens(generated ids) -> allowed next ids`` constrains decoding (e.g.
    :meth:`genrec.llm.constrained.TokenTrie.allowed`); not with branch decoding."""
    import torch

    from genrec.torch_utils import autocast, pick_device, resolve_bf16

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if n < 1:
        raise ValueError("n must be >= 1")
    if allowed_tokens is not None and mode == "branch":
        raise ValueError("constrained decoding works with greedy, sampling and beam search, not branch")
    if mode == "beam" and n > num_beams:
        raise ValueError(f"beam search returns at most num_beams={num_beams} sequences; n={n} asked")
    device = pick_device(device) if not isinstance(device, torch.device) else device
    model.to(device)
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = tokenizer.eos_token_id
    n_ret = 1 if mode == "greedy" else n
    if mode == "branch":
        n_ret = min(n, len(tokenizer) - 2)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[list[tuple[str, float, int, bool, list[int]]]] = [[] for _ in prompts]
    if mode == "sample":
        torch.manual_seed(seed)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = max(len(prompts[i]) for i in idx)
        if mode == "branch" and width == 0:
            raise ValueError("branch decoding needs a prompt of at least one token")
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            p = list(prompts[i])
            if p:
                ids[r, width - len(p):] = torch.tensor(p)
                mask[r, width - len(p):] = 1
        kw = dict(max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=eos,
                  return_dict_in_generate=True, output_scores=True, num_return_sequences=n_ret)
        if mode == "beam":
            kw.update(num_beams=num_beams, do_sample=False, early_stopping=True, length_penalty=length_penalty)
        elif mode in ("greedy", "branch"):
            kw.update(num_beams=1, do_sample=False)
        else:
            kw.update(num_beams=1, do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
        if no_repeat_ngram > 0:
            from transformers import LogitsProcessorList

            kw["logits_processor"] = LogitsProcessorList([_NoRepeatInQuery(no_repeat_ngram, width)])
        if allowed_tokens is not None:
            kw["prefix_allowed_tokens_fn"] = lambda _b, seq, w=width: allowed_tokens(seq[w:].tolist())
        expand = num_beams if mode == "beam" else n_ret
        first = None
        with torch.inference_mode(), autocast(device, resolve_bf16(bf16, device)):
            if mode == "branch":
                first, ids, mask, kw = _branch(model, ids.to(device), mask.to(device), n_ret, (pad, eos), kw)
                kw["num_return_sequences"] = 1
            elif share_prefill and width > 1:
                kw[_cache_arg(model.forward)] = _prefill(model, ids[:, :-1].to(device), mask[:, :-1].to(device),
                                                          expand)
            if kw.get("max_new_tokens", 1) > 0:
                res = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kw)
                seqs, steps = res.sequences, res.scores
            else:
                seqs, steps = ids, ()
        new = seqs[:, width:].cpu()
        valid = (new != pad) | (new == eos)
        # positions after the first EOS are padding
        after_eos = (new == eos).int().cumsum(1) - (new == eos).int() > 0
        valid &= ~after_eos
        ended = ((new == eos) & valid).any(1).tolist()
        lengths = valid.sum(1).tolist()
        if mode == "beam":
            scores = res.sequences_scores.float().cpu().tolist()
        else:
            trans = (model.compute_transition_scores(seqs, steps, normalize_logits=True).float().cpu() if steps
                     else torch.zeros((len(new), 0)))
            if first is not None:  # the forced first token's log-probability comes first
                trans = torch.cat([first.float().cpu()[:, None], trans], 1)
            trans = torch.where(valid, trans, torch.zeros_like(trans))
            scores = (trans.sum(1) / valid.sum(1).clamp(min=1)).tolist()
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        for r, i in enumerate(idx):
            out[i] = [(texts[j], scores[j], int(lengths[j]), bool(ended[j]), new[j][valid[j]].tolist())
                      for j in range(r * n_ret, (r + 1) * n_ret)]
    return out


def _branch(model, ids, mask, m: int, banned: tuple[int, ...], kw: dict):
    """Encode the prompts once, take each prompt's m most likely first tokens (never pad or EOS,
    which would be an empty query), and return ``(first-token log-probs, ids, mask, kw)`` for a
    greedy ``generate`` of m rows per prompt, each row's prompt + first token, on the shared cache."""
    import torch

    cache, logits = _prefill(model, ids, mask, m, return_logits=True)
    logp = torch.log_softmax(logits.float(), -1)
    logp[:, list(set(banned))] = float("-inf")
    top = logp.topk(m, dim=-1)
    ids = torch.cat([ids.repeat_interleave(m, 0), top.indices.reshape(-1, 1)], 1)
    mask = torch.cat([mask.repeat_interleave(m, 0), torch.ones_like(mask[:, :1]).repeat_interleave(m, 0)], 1)
    kw = dict(kw, num_beams=1, do_sample=False, max_new_tokens=kw["max_new_tokens"] - 1)
    kw[_cache_arg(model.forward)] = cache
    return top.values.reshape(-1), ids, mask, kw


def _cache_arg(fn) -> str:
    """The KV-cache keyword of ``fn``: transformers renamed ``past_key_values`` to ``cache`` (the
    old name warns in 5.24 and is to go), and models differ in when they follow."""
    import inspect

    try:
        return "cache" if "cache" in inspect.signature(fn).parameters else "past_key_values"
    except (TypeError, ValueError):
        return "past_key_values"


def _prefill(model, ids, mask, expand: int, return_logits: bool = False):
    """Encode the prompts once; return their KV cache repeated ``expand`` times per row."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                **{_cache_arg(model.forward): cache})
    if expand > 1:
        cache.batch_repeat_interleave(expand)
    return (cache, out.logits[:, -1]) if return_logits else cache


class _NoRepeatInQuery:
    """Forbid a token that would repeat an n-gram of the tokens generated so far.

    Written here because transformers' ``no_repeat_ngram_size`` counts the prompt too, which
    would forbid a query to reuse a brand or a phrase from the user's history titles."""

    def __init__(self, n: int, start: int) -> None:
        self.n, self.start = int(n), int(start)

    def __call__(self, input_ids, scores):
        n = self.n
        gen = input_ids[:, self.start:].tolist()
        for row, toks in enumerate(gen):
            if len(toks) < n - 1 or not toks and n > 1:
                continue
            tail = tuple(toks[len(toks) - n + 1:]) if n > 1 else ()
            banned = {toks[i + n - 1] for i in range(len(toks) - n + 1) if tuple(toks[i:i + n - 1]) == tail}
            if banned:
                scores[row, list(banned)] = float("-inf")
        return scores
