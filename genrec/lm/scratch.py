"""Scratch language models: a small GPT-2 built from a config (no download) and a byte-level BPE
tokenizer trained on the catalog's titles plus the prompt words.

Named sizes were chosen for speed on a 2-core CPU (bf16 autocast). ``tiny`` trains the demo shop
in about a minute; ``small`` is the default for real catalogs (Amazon Beauty).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

SIZES: dict[str, dict] = {
    # n_layer, n_embd, n_head; n_inner defaults to 4 * n_embd.
    "tiny": dict(n_layer=2, n_embd=128, n_head=4),
    "small": dict(n_layer=4, n_embd=256, n_head=4),
    "base": dict(n_layer=6, n_embd=384, n_head=6),
}
EOS = "<|endoftext|>"
PAD = "<|pad|>"


def is_scratch(name: str) -> bool:
    """True when ``name`` is one of the named scratch sizes (not an HF id or a path)."""
    return name in SIZES


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096, min_frequency: int = 2):
    """Train a byte-level BPE tokenizer on ``texts``; return it as a ``PreTrainedTokenizerFast``.

    Byte-level, so any title (any script, emoji, stray symbols) is encodable without unknown
    tokens; ``EOS`` ends a target title and ``PAD`` pads (left, for generation).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator((t for t in texts if t), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, bos_token=EOS,
                                   padding_side="left")
    return fast


def build_model(size: str, tokenizer, n_positions: int = 256, dropout: float = 0.1, seed: int = 0):
    """A freshly initialised ``GPT2LMHeadModel`` of the named ``size`` for ``tokenizer``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if size not in SIZES:
        raise ValueError(f"unknown scratch LM size {size!r}; known: {', '.join(SIZES)}")
    cfg = GPT2Config(vocab_size=len(tokenizer), n_positions=n_positions, **SIZES[size],
                     resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                     bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                     pad_token_id=tokenizer.pad_token_id)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(cfg)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def load_saved(path: str | Path, device=None):
    """Load a model folder written by ``save_pretrained`` (scratch or fine-tuned): (model, tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(path))
    if device is not None:
        model.to(device)
    model.eval()
    return model, tok
