"""Adapting a pre-trained causal LM cheaply enough for a 2-core CPU: the levers in one place.

:func:`prepare_pretrained` loads any causal LM (alias, ``.gguf``, local folder or hub id, through
:func:`genrec.lm.load.load_causal_lm`; CPU or GPU alike) and applies, in this order:

- ``keep_layers=n``: keep only ``n`` transformer blocks (:func:`keep_first_layers`): the first
  ``n``, or with ``keep_last=k`` the first ``n - k`` and the final ``k`` (much better before training).
  The embeddings, the final norm and the LM head stay; the cost per token of the blocks falls
  by ``n / total`` (SmolLM2-135M: 30 blocks of ~3.5M weights each, embeddings 28M).
- ``lora=LoraSpec(...)``: freeze the weights and train low-rank adapters (peft, through
  :func:`genrec.training.lora.apply_lora`): no weight gradients and no AdamW state for the base.
- ``precision``: the training precision policy of :func:`genrec.torch_utils.resolve_precision`
  ("auto": bf16 on CUDA and on CPUs where bf16 beats fp32, else fp32). Weights stay fp32 (the
  master copy); the trainer autocasts. The resolved name is returned in :func:`adapt_info`.

Prompt length is the other lever: :func:`last_items` and :func:`cut_title_ids` (GPT4Rec's
``genrec.prompts.tokens.PromptBuilder`` takes the same budgets: ``max_items``,
``max_title_tokens``, ``max_prompt_tokens``).

Packing (:func:`pack_examples`, the packer of :mod:`genrec.lm.train`) puts several short examples
into one row with ``position_ids`` restarting at 0 for each example and ``attention_mask=None``;
transformers then builds a block-diagonal causal mask, so attention across examples is MASKED
(tests/lm/test_adapt.py checks that packed logits equal the logits of each example alone).

The returned model is an ordinary ``PreTrainedModel`` (or a ``peft`` wrapper of one), so it trains
through :func:`genrec.lm.train.train_lm` / :class:`genrec.training.Trainer` unchanged; call
:func:`finish` after training to merge the adapters (a plain model again, for generation speed and
``save_pretrained``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

LAYER_COUNT_FIELDS = ("num_hidden_layers", "n_layer", "num_layers")


@dataclass(frozen=True)
class LoraSpec:
    """LoRA settings. ``target_modules``: ``None`` = peft's default for the architecture (Llama:
    q_proj, v_proj; GPT-2: c_attn), ``"all-linear"`` = every linear layer but the LM head, or a
    tuple of module names."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: str | tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"LoRA rank r must be >= 1; got {self.r}")
        if self.alpha <= 0:
            raise ValueError(f"LoRA alpha must be > 0; got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1); got {self.dropout}")


def _text_config(model: Any) -> Any:
    cfg = model.config
    return cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg


def num_layers(model: Any) -> int:
    """The number of transformer blocks the model's config declares."""
    cfg = _text_config(model)
    for f in LAYER_COUNT_FIELDS:
        v = getattr(cfg, f, None)
        if isinstance(v, int):
            return v
    raise ValueError(f"{type(model).__name__}: its config has none of {', '.join(LAYER_COUNT_FIELDS)}")


def decoder_layers_path(model: Any) -> str:
    """Dotted name of the ``ModuleList`` holding the transformer blocks (Llama: ``model.layers``,
    GPT-2: ``transformer.h``): the first ModuleList as long as the declared layer count whose
    items are the blocks (found by shape, so any HF decoder works without a table of names)."""
    import torch

    n = num_layers(model)
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and len(mod) == n and n > 0 and \
                all(type(m) is type(mod[0]) for m in mod):
            return name
    raise ValueError(f"{type(model).__name__}: found no list of {n} transformer blocks to truncate")


def keep_first_layers(model: PreTrainedModel, n: int, last: int = 0) -> PreTrainedModel:
    """Keep ``n`` transformer blocks of ``model``: the first ``n - last`` and the final ``last``
    (in place; returned for chaining). The config's layer count (and per-layer lists such as
    ``layer_types``) and the blocks' ``layer_idx`` (KV-cache slots) follow, so generation works
    and ``save_pretrained`` / ``from_pretrained`` round-trip the truncated model.

    Why ``last``: the final blocks map hidden states into the space the final norm and LM head
    expect. SmolLM2-135M on Beauty prompts (12 users, no training): full-sequence loss 4.8 with
    all 30 blocks, 25.0 with the first 10, 11.6 with the first 6 + last 4
    (benchmarks/results/gpt4rec_truncation_probe.json; as layer-pruning work
    keeps the final block: Gromov et al. 2024, "The Unreasonable Ineffectiveness of the Deeper Layers").
    """
    import torch

    total = num_layers(model)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= total:
        raise ValueError(f"keep_layers must be an integer in 1..{total} (the model has {total} layers); got {n!r}")
    if not isinstance(last, int) or not 0 <= last <= n:
        raise ValueError(f"keep_last must be an integer in 0..{n} (keep_layers); got {last!r}")
    if n == total:
        return model
    keep = list(range(n - last)) + list(range(total - last, total))
    path = decoder_layers_path(model)
    parent_name, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    blocks = list(getattr(parent, attr))
    setattr(parent, attr, torch.nn.ModuleList([blocks[i] for i in keep]))
    for new, block in enumerate(getattr(parent, attr)):
        for sub in block.modules():
            if isinstance(getattr(sub, "layer_idx", None), int):
                sub.layer_idx = new
    for cfg in {id(c): c for c in (model.config, _text_config(model))}.values():
        for f in LAYER_COUNT_FIELDS:
            if isinstance(getattr(cfg, f, None), int):
                setattr(cfg, f, n)
        for key, value in list(vars(cfg).items()):  # per-layer lists, e.g. Llama/Qwen ``layer_types``
            if isinstance(value, list) and len(value) == total and key != "architectures":
                setattr(cfg, key, [value[i] for i in keep])
    return model


def _lora_config(model: Any, spec: LoraSpec) -> Any:
    from peft import LoraConfig

    targets = spec.target_modules
    return LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout, task_type="CAUSAL_LM",
                      fan_in_fan_out=getattr(model.config, "model_type", "") == "gpt2",  # GPT-2's Conv1D
                      target_modules=list(targets) if isinstance(targets, tuple) else targets)


def resolve_training_precision(precision: bool | str | None, device: Any) -> str:
    """The precision policy (:func:`genrec.torch_utils.resolve_precision`): "bf16", "fp16" or "fp32"."""
    from genrec.torch_utils import resolve_precision

    return resolve_precision(precision, device)


def prepare_pretrained(name_or_path: Any, *, keep_layers: int | None = None, keep_last: int = 0,
                       lora: LoraSpec | None = None,
                       precision: bool | str | None = "auto", device: str | None = None,
                       padding_side: str = "left") -> tuple[Any, PreTrainedTokenizerBase]:
    """A pre-trained causal LM with the levers applied, ready to train, and its tokenizer.

    ``name_or_path``: anything :func:`genrec.lm.load.load_causal_lm` takes. ``keep_layers``: n
    blocks only (None: all), the first ``n - keep_last`` and the final ``keep_last``.
    ``lora``: a :class:`LoraSpec` (None: every weight trains).
    ``precision``: the trainer's policy name or "auto" (resolved here and recorded; weights stay
    fp32). The model is in train mode on ``device``; :func:`adapt_info` describes it.
    """
    from genrec.lm.load import load_causal_lm

    model, tok = load_causal_lm(name_or_path, device=device, padding_side=padding_side)
    layers_before = num_layers(model)
    if keep_layers is not None:
        keep_first_layers(model, keep_layers, keep_last)
    source = getattr(model, "_genrec_source", None)
    if lora is not None:
        from genrec.training.lora import apply_lora

        model = apply_lora(model, config=_lora_config(model, lora))
    device_of = next(model.parameters()).device
    setattr(model, "_genrec_adapt", {"name": str(name_or_path), "layers_loaded": layers_before,
                                     "keep_layers": keep_layers, "keep_last": keep_last if keep_layers else 0,
                                     "lora": asdict(lora) if lora else None,
                                     "precision": resolve_training_precision(precision, device_of), "source": source})
    model.train()
    return model, tok


def adapt_info(model: Any) -> dict[str, Any]:
    """What :func:`prepare_pretrained` did, plus parameter counts (total, trainable)."""
    params = list(model.parameters())
    info = dict(getattr(model, "_genrec_adapt", None) or {})
    info.update(parameters=sum(p.numel() for p in params),
                trainable_parameters=sum(p.numel() for p in params if p.requires_grad))
    return info


def finish(model: Any) -> Any:
    """After training: the adapters merged into the weights (a plain HF model in eval mode);
    a model without adapters is returned as is. Keeps the :func:`adapt_info` record."""
    info = getattr(model, "_genrec_adapt", None)
    if hasattr(model, "merge_and_unload"):
        from genrec.training.lora import merge_lora

        model = merge_lora(model)
        for p in model.parameters():
            p.requires_grad_(True)
        if info is not None:
            setattr(model, "_genrec_adapt", info)
    return model.eval()


# -- short prompts -----------------------------------------------------------------------------------
def last_items(history: Sequence[Any], n: int | None) -> list[Any]:
    """The last ``n`` items of a history (oldest first); ``None`` or 0: all of them."""
    if n is not None and n < 0:
        raise ValueError(f"the number of history items must be >= 0; got {n}")
    return list(history[-n:]) if n else list(history)


def cut_title_ids(tokenizer: Any, titles: Sequence[str], max_tokens: int) -> list[list[int]]:
    """Each title's token ids (no special tokens) cut to ``max_tokens``."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1; got {max_tokens}")
    enc = tokenizer(list(titles), add_special_tokens=False)["input_ids"]
    return [list(e[:max_tokens]) for e in enc]


# -- packing -----------------------------------------------------------------------------------------
def pack_examples(examples: Sequence[tuple], row_len: int, pad_id: int, *, target_only: bool = True,
                  device: Any = None) -> dict[str, torch.Tensor]:
    """Examples ``(ids, prompt_len)`` packed into rows of at most ``row_len`` tokens: a dict of
    ``input_ids``, ``position_ids`` (restarting per example: the block-diagonal mask) and
    ``labels`` already shifted (``labels[r, t]`` is the token to predict at position t, -100 where
    nothing is predicted: prompts when ``target_only``, the last token of each example, padding)."""
    import torch

    from genrec.lm.train import pack

    ids, pos, lab = pack(examples, row_len, pad_id, target_only)
    return {k: torch.from_numpy(v).to(device) for k, v in (("input_ids", ids), ("position_ids", pos), ("labels", lab))}
