"""Every registered model's constructor parameters: a line of help, the type from the signature's
hints, and the allowed range, checked before any data is loaded.

The help lives in one declared table, :data:`HELP` (``name`` for a parameter shared by several
models, ``model.name`` for one model's own meaning); a model class may also declare its own
``param_help = {name: text}``, which wins. ``tests/test_cli.py`` fails when a registered model has
a parameter without help or the table names a parameter no model has, so the table cannot go
stale. Ranges (:data:`RANGES`) are checked here because most constructors defer validation to
``fit``, after the data has been loaded; constructors' own ``ValueError`` s are reported the same way.
"""

from __future__ import annotations

import inspect
import json
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genrec.models.base import Recommender

HELP: dict[str, str] = {
    # shared
    "seed": "random seed (default: the command's --seed)",
    "threads": "torch intra-op threads, process-wide; null = leave as is (genrec --threads N sets it for every model)",
    "device": "torch device (cpu, cuda, cuda:1); null = CUDA when present, else CPU",
    "bf16": "bfloat16 autocast; null = auto (CUDA, or a CPU where bf16 beats fp32)",
    "checkpoint_dir": "folder for a checkpoint after every epoch; a later fit resumes from it",
    "progress": "show a progress bar while training",
    "max_len": "the most recent items of a sequence the model sees",
    "hidden": "transformer hidden size",
    "layers": "transformer layers (blocks)",
    "heads": "attention heads (must divide the hidden size)",
    "dropout": "dropout probability",
    "lr": "learning rate (Adam/AdamW)",
    "weight_decay": "weight decay",
    "batch_size": "training sequences per batch",
    "epochs": "the most training epochs (early stopping may end sooner)",
    "patience": "stop after this many validations without a better score (SASRec/BERT4Rec: validations, at most every 50 steps; GenRec: epochs); null = never",
    "max_steps": "the most optimizer steps; null = no step limit",
    "warmup_ratio": "fraction of training steps with a rising learning rate",
    "min_steps": "never stop early before this many optimizer steps",
    "eval_every": "validate every this many optimizer steps; null = each epoch, but at most every 50 steps",
    "min_delta": "an improvement of the validation score must exceed this to reset the patience",
    "smoothing": "weight of the past in a moving average of the validation score for early stopping (0 = raw)",
    "time_budget": "stop training after this many seconds (training and validation, summed over resumed runs)",
    "valid_metric": "validation metric for early stopping: ndcg@10 or recall@10",
    "fill_popular": "rank items with no evidence after the others by training popularity",
    "num_queries": "m, the search queries per user; each gets K/m slots in the merged list",
    "k1": "BM25 term-frequency saturation",
    "b": "BM25 length normalisation (0-1)",
    "tune_bm25": "grid-search k1 and b on validation users",
    "valid_users": "validation users for early stopping and the BM25 grid",
    "valid_k": "K of the validation Recall used to pick the epoch and k1/b",
    "factors": "latent factors per user and item",
    "regularization": "L2 regularisation of the factors",
    "iterations": "training iterations (epochs) over the data",
    "num_threads": "implicit's threads (0 = every core); --threads N sets it when not given",
    # one model's own
    "itemknn.neighbors": "similar items kept per item",
    "itemknn.shrinkage": "added to the cosine's denominator; damps similarities from few shared users",
    "itemknn.recency_decay": "weight decay per step back in the history (1.0 = every item counts the same)",
    "als.alpha": "confidence of an observed interaction (unobserved weigh 1)",
    "bpr.learning_rate": "SGD learning rate",
    "bpr.fold_in": "how unseen users get factors: ls (least squares) or mean (mean of history items)",
    "bpr.fold_in_alpha": "confidence of history items in the least-squares fold-in",
    "bpr.fold_in_regularization": "ridge of the least-squares fold-in",
    "svd.epochs": "SGD epochs over the training ratings (surprise's n_epochs)",
    "svd.lr_all": "SGD learning rate of every parameter (surprise's lr_all)",
    "svd.reg_all": "L2 regularisation of every parameter (surprise's reg_all); also the ridge of the history fold-in",
    "svd.init_std": "standard deviation of the factors' initialisation",
    "svd.like_rating": "rating assumed for history items when folding a history in; null = the highest training rating",
    "svd.implicit_negatives": "data without ratings: random non-interactions per interaction, trained as rating 0",
    "lightfm.loss": "bpr (Bayesian personalised ranking) or warp (weighted approximate-rank pairwise)",
    "lightfm.epochs": "passes over the training interactions",
    "lightfm.learning_rate": "adagrad learning rate",
    "lightfm.regularization": "L2 penalty on item and user embeddings (item_alpha = user_alpha)",
    "lightfm.num_threads": "LightFM's training threads (1 = deterministic for a seed); --threads N sets it when not given",
    "lightfm.max_sampled": "WARP: the most negatives sampled per positive",
    "lightfm.fold_in": "how a history gets a user vector: ls (least squares) or mean (mean of history items)",
    "lightfm.fold_in_alpha": "confidence of history items in the least-squares fold-in",
    "lightfm.fold_in_regularization": "ridge of the least-squares fold-in",
    "content.fields": "item fields whose words are used: title, brand, categories (comma-separated)",
    "content.sublinear_tf": "use 1 + log(tf) instead of raw term counts",
    "content.min_df": "ignore words in fewer items than this",
    "content.max_df": "ignore words in more than this fraction of items",
    "sasrec.loss": "ce (full softmax), sce (sampled softmax over `negatives` items) or bce (one negative)",
    "sasrec.negatives": "uniform negatives per batch for loss=sce",
    "bert4rec.mask_prob": "fraction of items masked in training",
    "gpt4rec.lm": "the language model: tiny/small (a GPT-2 trained here from scratch) or a pretrained name/path",
    "gpt4rec.grad_accum": "batches per optimizer step",
    "gpt4rec.max_new_tokens": "the longest generated query, in tokens",
    "gpt4rec.augment_prefixes": "add every prefix of a history as its own training example (quadratic cost)",
    "gpt4rec.target_only_loss": "train on the target title only, not the whole sequence",
    "gpt4rec.template_loss": "include the prompt's fixed words in the loss",
    "gpt4rec.no_repeat_ngram": "forbid a query repeating its own n-grams of this size (0 = off)",
    "gpt4rec.decode": "query decoding: beam (the paper's), branch, greedy or sample",
    "gpt4rec.max_title_tokens": "titles are cut to this many tokens in prompts",
    "gpt4rec.max_prompt_tokens": "prompts keep the most recent titles that fit in this many tokens",
    "gpt4rec.vocab_size": "BPE vocabulary of a scratch LM's tokenizer (trained on the catalog's titles)",
    "gpt4rec.domain": "prompt wording: products or movies",
    "gpt4rec.warmup_ratio": "fraction of training steps with a rising learning rate",
    "gpt4rec.gen_batch_size": "users per generate call",
    "gpt4rec.keep_layers": "pre-trained lm: keep only its first n transformer blocks; null = all",
    "gpt4rec.checkpoint_every": "with checkpoint_dir: also checkpoint every this many optimizer steps (0 = at epoch ends only)",
    "gpt4rec.keep_last": "with keep_layers=n: of the n blocks kept, this many are the model's final blocks (the rest its first)",
    "gpt4rec.lora_r": "pre-trained lm: LoRA rank (adapters train, weights frozen, merged after); 0 = full fine-tuning",
    "gpt4rec.lora_alpha": "LoRA scaling alpha (with lora_r > 0)",
    "gpt4rec.lora_targets": "LoRA target modules: comma-separated names, all-linear, or null = peft's default (q_proj,v_proj / c_attn)",
    "gpt4rec.max_history": "prompts keep at most the last n history titles; null = as many as fit max_prompt_tokens",
    "genrec-seq2seq.pretrain_epochs": "masked-item pretraining epochs (0 = none)",
    "genrec-seq2seq.finetune_epochs": "next-item fine-tuning epochs",
    "genrec-seq2seq.d_model": "transformer hidden size",
    "genrec-seq2seq.eval_batch_size": "histories per scoring batch",
    "genrec-seq2seq.init_std": "standard deviation of the weight initialisation",
    "genrec-seq2seq.finetune_sample": "fraction of next-item examples used per fine-tuning epoch",
    "p5.lm": "the language model: tiny/small/base (a GPT-2 trained here from scratch) or a pretrained name/path (LoRA)",
    "p5.item_ids": "how prompts name items: title (cleaned titles, duplicates numbered) or random (seeded numbers)",
    "p5.grad_accum": "batches per optimizer step",
    "p5.sequential_examples": "training examples per user of the sequential task (next item)",
    "p5.direct_examples": "training examples per user of the direct task (choose among candidates)",
    "p5.yesno_examples": "training examples per user of the yes/no task (half the target, half a sampled item)",
    "p5.rating_examples": "training examples per user of the rating task (only when the split has ratings)",
    "p5.explanation_examples": "training examples per user of the explanation task (only when the split has reviews)",
    "p5.max_history": "the most recent history items in a prompt",
    "p5.candidates": "candidates in a direct-recommendation prompt (the target and sampled items)",
    "p5.beams": "beams of the catalog-constrained beam search; ranks beyond are filled by popularity",
    "p5.max_title_tokens": "item titles are cut to this many tokens in prompts and answers",
    "p5.max_answer_tokens": "answers (reviews) are cut to this many tokens",
    "p5.max_prompt_tokens": "prompts longer than this drop their oldest history items (training examples are dropped)",
    "p5.vocab_size": "BPE vocabulary of a scratch LM's tokenizer (trained on the item identifiers)",
    "p5.lora_r": "LoRA rank for a pretrained lm (0 = train every weight)",
    "p5.keep_layers": "pre-trained lm: keep only its first n transformer blocks; null = all",
    "p5.keep_last": "with keep_layers=n: of the n blocks kept, this many are the model's final blocks (the rest its first)",
    "p5.template": "the sequential template recommend() uses: seq-1, seq-2, seq-3 (seen) or seq-unseen (held out)",
}


@dataclass(frozen=True)
class Range:
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[str, ...] = ()

    def check(self, v: Any) -> str | None:
        """None when ``v`` is allowed, else what is allowed."""
        if v is None:
            return None
        if self.choices:
            return None if v in self.choices else f"one of {', '.join(self.choices)}"
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        bad = ((self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo))
               or (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi)))
        return self.describe() if bad else None

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        lo = "" if self.lo is None else f"{'>' if self.lo_open else '>='} {self.lo:g}"
        hi = "" if self.hi is None else f"{'<' if self.hi_open else '<='} {self.hi:g}"
        return " and ".join(x for x in (lo, hi) if x)


POS, NONNEG, PROB = Range(1), Range(0), Range(0, 1, hi_open=True)
RANGES: dict[str, Range] = {
    "seed": NONNEG, "threads": POS, "max_len": POS, "hidden": POS, "layers": POS, "heads": POS, "dropout": PROB,
    "lr": Range(0, lo_open=True), "weight_decay": NONNEG, "batch_size": POS, "epochs": NONNEG, "patience": POS,
    "valid_metric": Range(choices=("ndcg@10", "recall@10")), "num_queries": POS, "max_steps": POS,
    "min_steps": NONNEG, "eval_every": POS, "min_delta": NONNEG, "smoothing": PROB, "time_budget": NONNEG,
    "k1": Range(0, lo_open=True), "b": Range(0, 1), "valid_users": POS, "valid_k": POS, "factors": POS,
    "regularization": NONNEG, "iterations": POS, "num_threads": NONNEG,
    "itemknn.neighbors": POS, "itemknn.shrinkage": NONNEG, "itemknn.recency_decay": Range(0, 1, lo_open=True),
    "als.alpha": Range(0, lo_open=True), "bpr.learning_rate": Range(0, lo_open=True),
    "bpr.fold_in": Range(choices=("ls", "mean")), "bpr.fold_in_alpha": Range(0, lo_open=True),
    "bpr.fold_in_regularization": NONNEG,
    "svd.epochs": POS, "svd.lr_all": Range(0, lo_open=True), "svd.reg_all": NONNEG, "svd.init_std": NONNEG,
    "svd.implicit_negatives": NONNEG, "lightfm.loss": Range(choices=("bpr", "warp")), "lightfm.epochs": POS,
    "lightfm.learning_rate": Range(0, lo_open=True), "lightfm.regularization": NONNEG, "lightfm.max_sampled": POS,
    "lightfm.fold_in": Range(choices=("ls", "mean")), "lightfm.fold_in_alpha": Range(0, lo_open=True),
    "lightfm.fold_in_regularization": NONNEG, "lightfm.num_threads": POS, "content.min_df": POS, "content.max_df": Range(0, 1, lo_open=True),
    "sasrec.loss": Range(choices=("ce", "sce", "bce")), "sasrec.negatives": POS,
    "bert4rec.mask_prob": Range(0, 1, lo_open=True, hi_open=True), "bert4rec.max_len": Range(2),
    "gpt4rec.grad_accum": POS, "gpt4rec.max_new_tokens": POS, "gpt4rec.no_repeat_ngram": NONNEG,
    "gpt4rec.decode": Range(choices=("beam", "branch", "greedy", "sample")), "gpt4rec.max_title_tokens": POS,
    "gpt4rec.max_prompt_tokens": POS, "gpt4rec.vocab_size": Range(256), "gpt4rec.domain":
    Range(choices=("products", "shop", "ecommerce", "movies", "movie")), "gpt4rec.warmup_ratio": PROB,
    "gpt4rec.gen_batch_size": POS, "gpt4rec.lora_r": NONNEG, "gpt4rec.lora_alpha": POS,
    "gpt4rec.keep_layers": POS, "gpt4rec.keep_last": NONNEG, "gpt4rec.checkpoint_every": NONNEG, "gpt4rec.max_history": POS, "genrec-seq2seq.pretrain_epochs": NONNEG, "genrec-seq2seq.max_len": Range(2),
    "genrec-seq2seq.d_model": POS, "genrec-seq2seq.eval_batch_size": POS,
    "genrec-seq2seq.init_std": Range(0, lo_open=True), "genrec-seq2seq.finetune_sample": Range(0, 1, lo_open=True),
    "llm-rerank.mode": Range(choices=("verbalizer", "likelihood", "listwise")), "llm-rerank.candidates": Range(2, 26),
    "llm-rerank.history_items": NONNEG, "llm-rerank.max_title_tokens": POS, "llm-rerank.bootstrap": NONNEG,
    "llm-rerank.batch_size": POS, "llm-rerank.max_new_tokens": POS,
    "llm-rerank.cache": Range(choices=("off", "record", "replay")),
    "llm-rerank.train_users": NONNEG, "llm-rerank.negatives": Range(choices=("retriever", "random")),
    "llm-rerank.label_loss": Range(choices=("vocab", "letters")), "llm-rerank.lora_r": POS,
    "llm-rerank.lora_alpha": Range(0, lo_open=True), "llm-rerank.lora_dropout": PROB, "llm-rerank.lora_layers": NONNEG,
    "llm-rerank.train_batch_size": POS, "llm-rerank.valid_users": NONNEG,
    "genrec-llm.decoding": Range(choices=("constrained", "grounded")),
    "genrec-llm.domain": Range(choices=("products", "movies")), "genrec-llm.num_beams": POS,
    "genrec-llm.lora_r": POS, "genrec-llm.lora_alpha": Range(0, lo_open=True), "genrec-llm.lora_dropout": PROB,
    "genrec-llm.grad_accum": POS, "genrec-llm.history_items": NONNEG, "genrec-llm.max_title_tokens": POS,
    "genrec-llm.max_target_tokens": POS, "genrec-llm.max_prompt_tokens": POS, "genrec-llm.examples_per_user": POS,
    "genrec-llm.vocab_size": Range(256), "genrec-llm.checkpoint_every": NONNEG, "genrec-llm.warmup_ratio": PROB,
    "genrec-llm.gen_batch_size": POS, "genrec-llm.keep_layers": POS,
    "p5.item_ids": Range(choices=("title", "random")), "p5.grad_accum": POS, "p5.warmup_ratio": PROB,
    "p5.sequential_examples": NONNEG, "p5.direct_examples": NONNEG, "p5.yesno_examples": NONNEG,
    "p5.rating_examples": NONNEG, "p5.explanation_examples": NONNEG, "p5.max_history": NONNEG,
    "p5.candidates": Range(2), "p5.beams": POS, "p5.max_title_tokens": POS, "p5.max_answer_tokens": POS,
    "p5.max_prompt_tokens": Range(16), "p5.vocab_size": Range(256), "p5.lora_r": NONNEG,
    "p5.keep_layers": POS, "p5.keep_last": NONNEG,
    "p5.template": Range(choices=("seq-1", "seq-2", "seq-3", "seq-unseen")),
    "llm-rerank.profile": Range(choices=("off", "on")), "llm-rerank.shots": Range(0, 8),
    "llm-rerank.explain": Range(choices=("grounded", "llm")), "llm-rerank.explain_top": NONNEG,
}


@dataclass(frozen=True)
class ParamInfo:
    name: str
    default: Any
    type: Any  # the resolved type hint, or inspect.Parameter.empty
    help: str | None
    range: Range | None

    @property
    def type_name(self) -> str:
        if self.type is inspect.Parameter.empty:
            return "any"
        # An annotation left as a string (unresolvable hints) has no __name__: show the string.
        return getattr(self.type, "__name__", str(self.type)) if not typing.get_args(self.type) else \
            str(self.type).replace("typing.", "").replace("NoneType", "None")


def infos_for(model: str, cls: type[Recommender]) -> list[ParamInfo]:
    """The constructor parameters of ``cls``, registered as ``model``, in signature order (use
    :func:`genrec.models.registry.param_infos`)."""
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an unresolvable annotation: type-check nothing rather than fail
        hints = {}
    own = getattr(cls, "param_help", {}) or {}
    out = []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        text = own.get(p.name) or HELP.get(f"{model}.{p.name}") or HELP.get(p.name)
        rng = RANGES.get(f"{model}.{p.name}") or RANGES.get(p.name)
        out.append(ParamInfo(p.name, p.default, hints.get(p.name, p.annotation), text, rng))
    return out


def parse_value(raw: str) -> Any:
    """A ``--param`` value: JSON when it parses (3, 0.5, true, null, ["a"]), else the string."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def coerce(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (int, float, bool, str, X | None, Sequence[str]); ``ValueError``
    saying what was expected otherwise."""
    if tp is inspect.Parameter.empty or tp is Any:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(" or ".join(errors) + (" or null" if type(None) in args else ""))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError("expected true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError("expected an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError("expected a number")
    if tp is str:
        if isinstance(value, (dict, list, bool)) or value is None:
            raise ValueError("expected a string")
        return str(value)
    if origin in (list, tuple, typing.Sequence, __import__("collections.abc").abc.Sequence):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ValueError("expected a list (JSON, or comma-separated)")
        inner = args[0] if args else Any
        return [coerce(v, inner) for v in value]
    return value
