"""The explicit table of model names (no discovery by file name), imported lazily.

Each entry is ``name -> "module:Class"``; the module is imported only when the model is used, so
``genrec --help`` never imports torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from genrec.errors import UnknownNameError

MODELS: dict[str, str] = {
    "random": "genrec.models.baselines.pop:RandomRec",
    "pop": "genrec.models.baselines.pop:PopRec",
    "itemknn": "genrec.models.baselines.itemknn:ItemKNN",
    "als": "genrec.models.baselines.mf:ALS",
    "bpr": "genrec.models.baselines.mf:BPR",
    "content": "genrec.models.baselines.content:ContentRec",
    "sasrec": "genrec.models.baselines.sasrec:SASRec",
    "bert4rec": "genrec.models.baselines.bert4rec:BERT4Rec",
    "gpt4rec": "genrec.models.gpt4rec:GPT4Rec",
    "title-bm25": "genrec.models.title_bm25:TitleBM25",
    "genrec-seq2seq": "genrec.models.seq2seq:GenRecSeq2Seq",
}

DESCRIPTIONS: dict[str, str] = {
    "random": "uniformly random items (a floor)",
    "pop": "most popular training items",
    "itemknn": "item-item cosine neighbours over the history",
    "als": "matrix factorisation, alternating least squares (implicit), history fold-in",
    "bpr": "matrix factorisation, Bayesian personalised ranking (implicit), history fold-in",
    "content": "bag-of-words title vectors mean-pooled over the history (GPT4Rec's ContentRec)",
    "sasrec": "self-attentive sequential recommendation (PyTorch)",
    "bert4rec": "bidirectional masked-item transformer (PyTorch)",
    "gpt4rec": "LM generates search queries; BM25 over titles retrieves; rank-based merge",
    "title-bm25": "GPT4Rec without the LM: the last m history titles are the queries (BM25 + merge)",
    "genrec-seq2seq": "encoder-decoder over item tokens, masked-item pretraining, beam search",
}


def parse_params(pairs: list[str] | None, model: str) -> dict[str, Any]:
    """``key=value`` pairs for ``model`` (values parsed as JSON when they parse, else strings);
    ``other.key=value`` pairs meant for another model are skipped."""
    import json

    out: dict[str, Any] = {}
    for p in pairs or []:
        if "=" not in p:
            raise ValueError(f"a parameter takes key=value, got {p!r}")
        key, raw = p.split("=", 1)
        if "." in key:
            target, key = key.split(".", 1)
            if target != model:
                continue
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def model_class(name: str) -> type:
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


def create(name: str, **params: Any):
    """Construct the model ``name`` with constructor ``params``."""
    cls = model_class(name)
    try:
        return cls(**params)
    except TypeError as e:
        import inspect

        allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        raise TypeError(f"bad parameters for model {name!r} ({e}); it takes: {', '.join(allowed)}") from e


def load_model(path: str | Path):
    """Load any saved genrec model folder, whatever its class."""
    from genrec.models.base import read_model_meta

    meta = read_model_meta(Path(path))
    return model_class(meta["model"]).load(path)
