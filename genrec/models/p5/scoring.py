"""Scoring with a causal LM from token ids: the next token's log-probabilities over a few answer
tokens (P(Yes), the rating digits) and the log-likelihood of continuations (direct
recommendation's candidates).

Written here rather than through :class:`genrec.llm.local.HFBackend` because P5's prompts are
already token ids (the backend's scoring re-tokenizes text) and each call batches many users'
prompts together, which its per-prompt continuation scoring does not.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _padded(rows: Sequence[Sequence[int]], pad: int, device):
    import torch

    width = max(1, max(len(r) for r in rows))
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for n, r in enumerate(rows):
        if r:
            ids[n, :len(r)] = torch.tensor(list(r), dtype=torch.long)
            mask[n, :len(r)] = 1
    return ids.to(device), mask.to(device)


def next_token_logprobs(model, prompts: Sequence[Sequence[int]], token_ids: Sequence[int], *, pad_id: int,
                        batch_size: int = 32, bf16: bool = False) -> np.ndarray:
    """``(len(prompts), len(token_ids))``: log-softmax over the whole vocabulary at the position
    after each prompt, read at ``token_ids``. Prompts are right-padded (no position shift)."""
    import torch

    from genrec.torch_utils import autocast

    device = next(model.parameters()).device
    out = np.empty((len(prompts), len(token_ids)), dtype=np.float64)
    cols = torch.tensor(list(token_ids), dtype=torch.long, device=device)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    model.eval()
    with torch.inference_mode(), autocast(device, bf16):
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            ids, mask = _padded([prompts[i] for i in idx], pad_id, device)
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            last = (mask.sum(1) - 1).clamp(min=0)
            row = torch.log_softmax(logits[torch.arange(len(idx), device=device), last].float(), -1)
            out[idx] = row[:, cols].cpu().numpy()
    return out


def continuation_logprobs(model, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *, pad_id: int,
                          batch_size: int = 32, bf16: bool = False) -> np.ndarray:
    """Sum of the log-probabilities of each continuation's tokens after its prompt: one forward
    pass over ``prompt + continuation`` per pair, pairs batched (right-padded)."""
    import torch

    from genrec.torch_utils import autocast

    device = next(model.parameters()).device
    out = np.zeros(len(pairs), dtype=np.float64)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    model.eval()
    with torch.inference_mode(), autocast(device, bf16):
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            rows = [list(pairs[i][0]) + list(pairs[i][1]) for i in idx]
            ids, mask = _padded(rows, pad_id, device)
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float(), -1)
            for r, i in enumerate(idx):
                p, c = len(pairs[i][0]), len(pairs[i][1])
                if not c:
                    continue
                if p == 0:
                    raise ValueError("a continuation needs a prompt of at least one token")
                tgt = ids[r, p:p + c]
                out[i] = float(logp[r, p - 1:p + c - 1].gather(1, tgt[:, None]).sum())
    return out
