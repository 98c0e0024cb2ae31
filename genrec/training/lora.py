"""LoRA (peft) on a Hugging Face model, trained by the same trainer as everything else.

``apply_lora`` wraps the model with a ``peft.LoraConfig``: the base weights are frozen and only
the low-rank adapters train, so :class:`genrec.lm.train.LMModule` (whose optimizer takes only
trainable parameters) and :func:`genrec.lm.train.train_lm` work unchanged. ``merge_lora`` folds
the adapters back in for inference or ``save_pretrained``.
"""

from __future__ import annotations

from typing import Any, Sequence


def apply_lora(model: Any, *, r: int = 8, alpha: int = 16, dropout: float = 0.0,
               target_modules: Sequence[str] | None = None, layers_to_transform: Sequence[int] | None = None,
               config: Any = None) -> Any:
    """``model`` wrapped in a ``peft`` LoRA adapter (causal LM task); ``config`` (a ``LoraConfig``)
    overrides the other arguments. ``target_modules=None`` uses peft's default for the
    architecture (GPT-2: ``c_attn``; Llama: ``q_proj``, ``v_proj``); ``layers_to_transform``: adapt only
    these transformer blocks (0-based), so no gradient flows below the lowest one."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:  # pragma: no cover - peft is in the lm extra
        raise ImportError("LoRA needs peft: pip install 'genrec[lm]'") from e
    if config is None:
        if r < 1:
            raise ValueError(f"LoRA rank r must be >= 1; got {r}")
        config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, task_type="CAUSAL_LM",
                            fan_in_fan_out=getattr(getattr(model, "config", None), "model_type", "") == "gpt2",
                            target_modules=list(target_modules) if target_modules else None,
                            layers_to_transform=list(layers_to_transform) if layers_to_transform else None)
    return get_peft_model(model, config)


def trainable_fraction(model: Any) -> float:
    """Share of parameters that train (small under LoRA)."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / max(total, 1)


def merge_lora(model: Any) -> Any:
    """The base model with the adapters merged into its weights (a plain HF model again)."""
    return model.merge_and_unload()
