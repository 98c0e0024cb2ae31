"""``llm-rerank``'s training parameters and the glue between the model and
:mod:`genrec.models.rerank.train`: check them, train, keep the adapter, save and load it.

After training the adapter is merged into the backend's weights (inference runs a plain model at
full speed) and its weights are kept in ``adapter_`` (peft's ``LoraConfig`` and state dict), so
``save`` writes them in peft's own format (``lora/adapter_config.json`` and
``adapter_model.safetensors``) and ``load`` re-opens the base model and merges them again.

Do no harm: the validation metric of the untrained model is measured first; when no trained
state beats it, the adapter is dropped and the model stays zero-shot (``fit_info_`` says so).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

LORA_DIR = "lora"

TRAIN_HELP = {
    "train_users": "LoRA-train the verbalizer on this many seeded training users (their last training item "
                   "as the target); 0 = zero-shot",
    "negatives": "training candidates: retriever (its top N, the target inserted when missing) or random "
                 "(N-1 random unseen items, as LlamaRec)",
    "label_loss": "training loss at the answer position: vocab (cross-entropy over the whole vocabulary, as "
                  "LlamaRec) or letters (over the N candidate letters)",
    "lora_r": "LoRA rank",
    "lora_alpha": "LoRA alpha (scaling alpha/r)",
    "lora_dropout": "dropout on the LoRA path",
    "lora_layers": "adapt only the last this many transformer blocks (0 = all; fewer = cheaper backward pass)",
    "lr": "LoRA learning rate (AdamW, constant)",
    "epochs": "training epochs over the training users' examples",
    "train_batch_size": "training prompts per optimizer step",
    "valid_users": "validation cases whose re-ranked top N (recall/NDCG@10) pick the best training state",
    "eval_every": "validate every this many optimizer steps; null = at each epoch end",
    "patience": "stop after this many validations without a better NDCG@10; null = never",
    "max_steps": "the most optimizer steps; null = no step limit",
    "time_budget": "stop training after this many seconds",
    "checkpoint_dir": "folder for training checkpoints; a later fit with the same settings resumes from it",
    "progress": "show a progress bar while training",
}


def check_training(m, backend_kind: str) -> None:
    """``ValueError`` naming the first bad training parameter of model ``m``."""
    from genrec.models.rerank.train import LABEL_LOSSES, NEGATIVES

    if not isinstance(m.train_users, int) or m.train_users < 0:
        raise ValueError(f"train_users must be an integer >= 0 (0 = zero-shot); got {m.train_users!r}")
    if m.negatives not in NEGATIVES:
        raise ValueError(f"negatives must be one of {', '.join(NEGATIVES)}; got {m.negatives!r}")
    if m.label_loss not in LABEL_LOSSES:
        raise ValueError(f"label_loss must be one of {', '.join(LABEL_LOSSES)}; got {m.label_loss!r}")
    if m.lora_r < 1 or m.lora_alpha <= 0 or not 0 <= m.lora_dropout < 1 or m.lora_layers < 0:
        raise ValueError("lora_r must be >= 1, lora_alpha > 0, lora_dropout in [0, 1) and lora_layers >= 0; got "
                         f"{m.lora_r}, {m.lora_alpha}, {m.lora_dropout}, {m.lora_layers}")
    if not m.lr > 0 or m.epochs < 1 or m.train_batch_size < 1 or m.valid_users < 0:
        raise ValueError("lr must be > 0, epochs and train_batch_size >= 1, valid_users >= 0; got "
                         f"{m.lr}, {m.epochs}, {m.train_batch_size}, {m.valid_users}")
    if m.train_users and m.mode != "verbalizer":
        raise ValueError(f"train_users > 0 trains the verbalizer mode only; mode is {m.mode!r}")
    if m.train_users and backend_kind == "openai":
        raise ValueError("train_users > 0 needs a local backend (smollm2-135m, hf:..., scratch), not openai:")


def train_verbalizer(m, split) -> dict[str, Any]:
    """LoRA-train ``m``'s backend on ``split``'s training users; returns what training did, for
    ``fit_info_``: the trainer's contract keys, a one-line ``lora`` summary and the details."""
    from genrec.models.rerank.prompts import labels
    from genrec.models.rerank.train import VerbalizerLoRAModule, training_examples, validation_examples
    from genrec.training.config import TrainerConfig
    from genrec.training.trainer import Trainer

    t0 = time.perf_counter()
    llm, n = m.llm, int(m.candidates)
    train = training_examples(split, m.retriever_, m._maker, users=m.train_users, candidates=n,
                              negatives=m.negatives, seed=m.seed)
    valid = validation_examples(split, m.retriever_, m._maker, users=m.valid_users, candidates=n, seed=m.seed)
    if m.backend == "scratch":
        m._base_lm = copy.deepcopy(llm.model)  # saved as the base; the adapter goes on its own
    module = VerbalizerLoRAModule(
        llm.model, llm.tokenizer, llm.candidate_ids(labels(n)), train, valid, r=m.lora_r, alpha=m.lora_alpha,
        dropout=m.lora_dropout, layers=m.lora_layers, lr=m.lr, batch_size=m.train_batch_size,
        label_loss=m.label_loss, eval_batch_size=m.batch_size, bf16=llm.bf16,
        fingerprint={"llm": llm.model_id, "candidates": n, "history_items": m.history_items,
                     "max_title_tokens": m.max_title_tokens, "retriever": m.retriever})
    before = module.validate(llm.model.eval())
    cfg = TrainerConfig(max_epochs=m.epochs, max_steps=m.max_steps, eval_every=m.eval_every, patience=m.patience,
                        time_budget=m.time_budget, precision="auto" if m.bf16 is None else m.bf16,
                        device=str(llm.device), seed=m.seed, checkpoint_dir=m.checkpoint_dir,
                        checkpoint_every=m.eval_every or 0, progress=m.progress, desc="llm-rerank LoRA",
                        valid_metric="ndcg@10")
    net, res = Trainer(cfg).fit(module)
    fraction = _fraction(net)
    kept = before is None or res.best_metric is None or res.best_metric > before["ndcg@10"]
    if kept:
        from peft import get_peft_model_state_dict

        m.adapter_ = {"config": copy.deepcopy(net.peft_config["default"]),
                      "weights": {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(net).items()}}
        llm.model = net.merge_and_unload().eval()
    else:
        m.adapter_ = None
        llm.model = net.unload().eval()  # the untouched base weights: training did not beat zero-shot
    llm._fingerprint = None  # the weights changed: a record-replay cache must not mix them
    info = {"train_users": len(train), "negatives": m.negatives, "label_loss": m.label_loss,
            "lora": {"r": m.lora_r, "alpha": m.lora_alpha, "dropout": m.lora_dropout,
                     "layers": m.lora_layers or "all", "trainable_fraction": fraction},
            "lr": m.lr, "train_batch_size": m.train_batch_size, "valid_cases": len(valid),
            "label_position_mean": round(sum(e.label for e in train) / max(len(train), 1), 2),
            "valid_before": before, "best_valid": res.best_metric, "adapter_kept": kept,
            "tokens_per_s": round(res.samples_per_s, 1), "train_tokens": res.samples,
            "seconds_total": round(time.perf_counter() - t0, 1), **res.fit_info(), "history": res.history}
    zero = "n/a" if before is None else f"{before['ndcg@10']:.4f}"
    best = "n/a" if res.best_metric is None else f"{res.best_metric:.4f}"
    line = (f"LoRA on {len(train)} training users, {res.samples_per_s:.0f} tokens/s, validation NDCG@10 {best} "
            f"vs {zero} zero-shot on {len(valid)} cases: " + ("adapter kept" if kept else "adapter dropped, zero-shot kept"))
    return {**res.fit_info(), "lora": line, "training": info}


def _fraction(net) -> float:
    from genrec.training.lora import trainable_fraction

    return round(trainable_fraction(net), 5)


def save_adapter(m, path: Path) -> None:
    """Write ``m.adapter_`` (if any) in peft's format under ``path / "lora"``."""
    if m.adapter_ is None:
        return
    from safetensors.torch import save_file

    folder = path / LORA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    m.adapter_["config"].save_pretrained(str(folder))
    save_file({k: v.contiguous() for k, v in m.adapter_["weights"].items()}, str(folder / "adapter_model.safetensors"))


def load_adapter(m, path: Path) -> None:
    """Merge a saved adapter (``path / "lora"``) into ``m``'s freshly opened backend."""
    folder = path / LORA_DIR
    m.adapter_ = None
    if not folder.is_dir():
        return
    from peft import PeftConfig, PeftModel, get_peft_model_state_dict

    if m.backend == "scratch":
        m._base_lm = copy.deepcopy(m.llm.model)
    net = PeftModel.from_pretrained(m.llm.model, str(folder))
    m.adapter_ = {"config": PeftConfig.from_pretrained(str(folder)),
                  "weights": {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(net).items()}}
    m.llm.model = net.merge_and_unload().eval()
    m.llm._fingerprint = None
