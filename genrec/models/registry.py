"""The explicit table of model names (no discovery by file name), imported lazily.

Each entry is ``name -> "module:Class"``; the module is imported only when the model is used, so
``genrec --help`` never imports torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genrec.errors import UnknownNameError

if TYPE_CHECKING:  # the base module imports numpy; `genrec --help` must not
    from genrec.models.base import Recommender

MODELS: dict[str, str] = {
    "random": "genrec.models.baselines.pop:RandomRec",
    "pop": "genrec.models.baselines.pop:PopRec",
    "itemknn": "genrec.models.baselines.itemknn:ItemKNN",
    "als": "genrec.models.baselines.mf:ALS",
    "bpr": "genrec.models.baselines.mf:BPR",
    "svd": "genrec.models.baselines.svd:SVD",
    "lightfm": "genrec.models.baselines.lightfm_rec:LightFMRec",
    "content": "genrec.models.baselines.content:ContentRec",
    "sasrec": "genrec.models.baselines.sasrec:SASRec",
    "bert4rec": "genrec.models.baselines.bert4rec:BERT4Rec",
    "gpt4rec": "genrec.models.gpt4rec:GPT4Rec",
    "title-bm25": "genrec.models.title_bm25:TitleBM25",
    "genrec-seq2seq": "genrec.models.seq2seq:GenRecSeq2Seq",
    "llm-rerank": "genrec.models.rerank:LLMRerank",
    "genrec-llm": "genrec.models.genrec_llm:GenRecLLM",
    "p5": "genrec.models.p5:P5",
}

DESCRIPTIONS: dict[str, str] = {
    "random": "uniformly random items (a floor)",
    "pop": "most popular training items",
    "itemknn": "item-item cosine neighbours over the history",
    "als": "matrix factorisation, alternating least squares (implicit), history fold-in",
    "bpr": "matrix factorisation, Bayesian personalised ranking (implicit), history fold-in",
    "svd": "matrix factorisation of explicit ratings (scikit-surprise SVD), ranked by predicted rating",
    "lightfm": "LightFM (lightfm-next fork), BPR or WARP loss, history fold-in",
    "content": "bag-of-words title vectors mean-pooled over the history (GPT4Rec's ContentRec)",
    "sasrec": "self-attentive sequential recommendation (PyTorch)",
    "bert4rec": "bidirectional masked-item transformer (PyTorch)",
    "gpt4rec": "LM generates search queries; BM25 over titles retrieves; rank-based merge",
    "title-bm25": "GPT4Rec without the LM: the last m history titles are the queries (BM25 + merge)",
    "genrec-seq2seq": "encoder-decoder over item tokens, masked-item pretraining, beam search",
    "llm-rerank": "an LLM re-ranks a retriever's top N (verbalizer, likelihood or listwise), grounded reasons",
    "genrec-llm": "instruction-tuned LM writes the next title (GenRec); catalog-constrained or grounded decoding",
    "p5": "one causal LM on multi-task prompts (sequential, direct, yes/no, rating), catalog-constrained beams",
}


class ParamError(ValueError):
    """A malformed, misspelt, mistyped or out-of-range model parameter; the message is one line
    naming the parameter and the value."""


def parse_params(pairs: list[str] | None, model: str) -> dict[str, Any]:
    """``key=value`` pairs for ``model`` (values parsed as JSON when they parse, else strings);
    ``other.key=value`` pairs meant for another model are skipped. Unchecked (the benchmark
    scripts' loose parsing); the CLI uses :func:`resolve_params`."""
    from genrec.models.params import parse_value

    out: dict[str, Any] = {}
    for p in pairs or []:
        if "=" not in p:
            raise ValueError(f"a parameter takes key=value, got {p!r}")
        key, raw = p.split("=", 1)
        if "." in key:
            target, key = key.split(".", 1)
            if target != model:
                continue
        out[key] = parse_value(raw)
    return out


def param_infos(name: str) -> list:
    """Model ``name``'s constructor parameters with type, default, help and range
    (:class:`genrec.models.params.ParamInfo`)."""
    from genrec.models.params import infos_for

    return infos_for(name, model_class(name))


def resolve_params(pairs: list[str] | None, models: list[str], *, global_keys: tuple[str, ...] = ()) -> dict[str, dict]:
    """Each of ``models``' constructor parameters from ``--param`` pairs, checked against the
    constructors' signatures, type hints and declared ranges (before any data is loaded).

    ``model.key=value`` sets one model's parameter: the model must be one of ``models`` and take
    ``key``. ``key=value`` sets it for every selected model that takes ``key``; none taking it is
    an error naming the models. Keys in ``global_keys`` are returned under ``""`` instead (the
    caller handles them, e.g. ``threads``). Raises :class:`ParamError`.
    """
    import difflib

    from genrec.models.params import coerce, parse_value

    for m in models:
        model_class(m)  # unknown model names first
    infos = {m: {p.name: p for p in param_infos(m)} for m in models}
    out: dict[str, dict] = {m: {} for m in models}
    out[""] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ParamError(f"--param {pair!r}: a parameter takes key=value")
        key, raw = pair.split("=", 1)
        key = key.strip()
        target, name = key.split(".", 1) if "." in key else ("", key)
        if not name:
            raise ParamError(f"--param {pair!r}: empty parameter name")
        if target:
            if target not in MODELS:
                near = difflib.get_close_matches(target, list(MODELS), 1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ParamError(f"--param {pair!r}: unknown model {target!r}{hint}; selected: {', '.join(models)}")
            if target not in models:
                raise ParamError(f"--param {pair!r}: model {target!r} is not selected; selected: {', '.join(models)}")
            targets = [target]
        elif name in global_keys:
            out[""][name] = parse_value(raw)
            continue
        else:
            targets = [m for m in models if name in infos[m]]
            if not targets:
                raise ParamError(f"--param {pair!r}: no selected model ({', '.join(models)}) takes {name!r}")
        for m in targets:
            info = infos[m].get(name)
            if info is None:
                near = difflib.get_close_matches(name, list(infos[m]), 1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ParamError(f"--param {pair!r}: model {m!r} has no parameter {name!r}{hint}; "
                                 f"see `genrec models show {m}`")
            try:
                value = coerce(parse_value(raw), info.type)
            except ValueError as e:
                raise ParamError(f"--param {pair!r}: {m}.{name} {e} ({info.type_name}), got {raw!r}") from None
            bad = info.range.check(value) if info.range else None
            if bad:
                raise ParamError(f"--param {pair!r}: {m}.{name} must be {bad}, got {raw!r}")
            out[m][name] = value
    return out


def model_class(name: str) -> type[Recommender]:
    """The class registered as ``name``; a clear error listing known names otherwise."""
    if name not in MODELS:
        raise UnknownNameError("model", name, list(MODELS))
    module, cls = MODELS[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(f"model {name!r} needs the package {e.name!r}: "
                                  f"pip install 'genrec[all]'") from e
    return getattr(mod, cls)


def create(name: str, **params: Any) -> Recommender:
    """Construct the model ``name`` with constructor ``params``."""
    cls = model_class(name)
    try:
        return cls(**params)
    except TypeError as e:
        allowed = cls.param_names()
        raise TypeError(f"bad parameters for model {name!r} ({e}); it takes: {', '.join(allowed)}") from e
    except ValueError as e:  # a constructor's own validation
        raise ParamError(f"model {name!r}: {e}") from e


def load_model(path: str | Path) -> Recommender:
    """Load any saved genrec model folder, whatever its class."""
    from genrec.models.base import read_model_meta

    meta = read_model_meta(Path(path))
    return model_class(meta["model"]).load(path)
