"""P5's language model: a scratch GPT-2 with a BPE tokenizer trained on the item identifiers and
the prompt words (the default: multi-task training of the whole catalog is feasible on a CPU), or
a pre-trained causal LM (e.g. ``smollm2-135m``) with LoRA adapters (:mod:`genrec.training.lora`)."""

from __future__ import annotations

from typing import Any, Sequence

from genrec.errors import GenrecError


def scratch_lm(size: str, texts: Sequence[str], *, vocab_size: int, n_positions: int, seed: int,
               dropout: float = 0.1) -> tuple[Any, Any]:
    """A scratch GPT-2 of ``size`` and its tokenizer trained on ``texts`` plus every template's
    words (repeated so BPE merges them into few tokens)."""
    from genrec.lm.scratch import build_model, train_tokenizer
    from genrec.prompts.tasks import all_words

    words = all_words()
    tok = train_tokenizer(list(texts) + words * 50, vocab_size=vocab_size)
    return build_model(size, tok, n_positions=n_positions, dropout=dropout, seed=seed), tok


def pretrained_lm(name: str, device, *, lora_r: int, seed: int, keep_layers: int | None = None,
                  keep_last: int = 0) -> tuple[Any, Any]:
    """A pre-trained LM (name or path) through :func:`genrec.lm.adapt.prepare_pretrained`: optionally
    only ``keep_layers`` of its blocks (the first ``keep_layers - keep_last`` and the last
    ``keep_last``), with LoRA adapters of rank ``lora_r`` (alpha 2r) on peft's default modules
    for the architecture (Llama: q_proj, v_proj); ``lora_r=0``: every weight trains."""
    import torch

    from genrec.lm.adapt import LoraSpec, prepare_pretrained

    torch.manual_seed(seed)  # the adapters' random initialisation
    try:
        model, tok = prepare_pretrained(name, keep_layers=keep_layers, keep_last=keep_last,
                                        lora=LoraSpec(r=lora_r, alpha=2 * lora_r, dropout=0.05) if lora_r else None,
                                        device=str(device))
    except (OSError, ValueError) as e:
        raise GenrecError(f"P5: cannot load the language model {name!r} ({e}); use a scratch size: tiny, small, "
                          "base") from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def merged(model) -> Any:
    """``model`` with LoRA adapters folded in (itself when it has none)."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model


def encode(tok, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"]) if text else []


def encode_many(tok, texts: Sequence[str]) -> list[list[int]]:
    if not texts:
        return []
    return [list(x) for x in tok(list(texts), add_special_tokens=False)["input_ids"]]


def cut_tokens(tok, text: str, n: int) -> str:
    """``text`` cut to its first ``n`` tokens (whole text when it fits)."""
    ids = encode(tok, text)
    return text if len(ids) <= n else tok.decode(ids[:n]).strip()
