"""The one protocol every recommender implements, and a base for models that score every item.

``fit(split)``, ``recommend(histories, k) -> Recommendations``, ``save(path)``, ``load(path)``.
Histories are lists of item ids, oldest first; users unseen in training are handled from their
history alone (fold-in), so the same call serves evaluation and the HTTP service.
"""

from __future__ import annotations

import inspect
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Collection, Iterable, Self, Sequence

import numpy as np

from genrec.core.capabilities import Capabilities
from genrec.core.why import Why, as_why
from genrec.data.catalog import Catalog
from genrec.errors import GenrecError

MODEL_FILE = "genrec_model.json"
CATALOG_FILE = "catalog.jsonl"


class NotFittedError(GenrecError):
    """recommend() or save() before fit()."""


@dataclass
class Recommendations:
    """Per history: ranked item ids, their scores, a ``why`` and ``notes``.

    ``why[n]`` is always a :class:`genrec.core.why.Why`: GPT4Rec and title-bm25 put their queries
    and the items each contributed there, an LLM re-ranker its explanations; a model that does not
    explain (``capabilities.explains`` off: every id-based model, GenRec seq2seq) gives an empty
    ``Why()`` (``why[n].is_empty()``), never ``None``. ``None`` or a legacy dict given to the
    constructor is converted with :func:`~genrec.core.why.as_why`, which consumers call too.
    ``notes[n]`` lists anything the caller should know (unknown item ids dropped, results filled
    by popularity...).
    """

    items: list[list[str]]
    scores: list[list[float]]
    why: list[Why] = field(default_factory=list)
    notes: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.why = [as_why(w) for w in self.why] if self.why else [Why() for _ in self.items]
        if not self.notes:
            self.notes = [[] for _ in self.items]
        n = len(self.items)
        if not len(self.scores) == len(self.why) == len(self.notes) == n:
            raise ValueError(f"Recommendations: {n} item lists but {len(self.scores)} score lists, "
                             f"{len(self.why)} whys and {len(self.notes)} note lists")

    def __len__(self) -> int:
        return len(self.items)

    def to_dicts(self, catalog: Catalog | None = None) -> list[dict]:
        out = []
        for n, (its, scs) in enumerate(zip(self.items, self.scores)):
            rows = []
            for i, s in zip(its, scs):
                row = {"item_id": i, "score": float(s)}
                if catalog is not None and i in catalog:
                    row["title"] = catalog[i].title
                rows.append(row)
            out.append({"items": rows, "why": as_why(self.why[n]).to_dict(), "notes": self.notes[n]})
        return out


class Recommender:
    """Base class: plain constructor parameters (no work in ``__init__``), then ``fit``.

    Subclasses set ``name`` (the registry name) and ``capabilities`` (what they can do beyond the
    protocol, see :mod:`genrec.core.capabilities`; consumers read it, never probe with ``hasattr``),
    and implement ``fit`` and ``recommend``. ``save``/``load`` write ``genrec_model.json`` (name + constructor parameters), the catalog,
    and whatever ``_save_state``/``_load_state`` write (by default a pickle of the fitted state).
    """

    name: ClassVar[str] = "base"
    capabilities: ClassVar[Capabilities] = Capabilities()
    catalog: Catalog | None = None
    #: What happened in the last ``fit``, filled by models that know (the torch trainer does), read
    #: by run cards and printed by the CLI; ``None`` when the model does not report it. Keys:
    #: ``epochs_run`` (int), ``best_epoch`` (int or None: the epoch whose weights were kept),
    #: ``stop_reason`` (str, e.g. "patience 3 ran out", "max epochs", "max steps"), ``precision``
    #: ("bf16", "fp16" or "fp32"), ``steps`` (optimizer steps, int), ``train_seconds`` (float).
    #: Saved in ``genrec_model.json`` and restored by ``load``.
    fit_info_: dict | None = None
    #: A loaded model's provenance: the ``trained_on`` record of its ``genrec_model.json`` and the
    #: folder it was loaded from (whose pair hashes are read when a run checks for leakage).
    _trained_on: dict | None = None
    _trained_on_dir: Path | None = None

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "fit" in cls.__dict__:  # every fit records its split, for the saved model's provenance
            setattr(cls, "fit", _recording_fit(cls.__dict__["fit"]))  # setattr: mypy forbids assigning a method

    # -- parameters (scikit-learn style) ---------------------------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        """The constructor parameters, in order (what ``get_params``/``set_params`` and
        ``--param`` take)."""
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self) -> dict:
        return {p: getattr(self, p) for p in self.param_names() if hasattr(self, p)}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters (scikit-learn style); an unknown name is a ``ValueError``
        naming it. Fitted state is left as is: refit for the change to take effect, except for
        parameters a model documents as read at ``recommend`` time."""
        known = set(self.param_names())
        for k in params:
            if k not in known:
                raise ValueError(f"{type(self).__name__} has no parameter {k!r} (known: {', '.join(sorted(known))})")
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- protocol ---------------------------------------------------------------------------------
    def fit(self, split) -> "Recommender":  # pragma: no cover - abstract
        raise NotImplementedError

    def recommend(self, histories: Sequence[Sequence[str]], k: int = 10, *, exclude_history: bool = True,
                  exclude: Collection[str] = ()) -> Recommendations:  # pragma: no cover - abstract
        """Top ``k`` per history. ``exclude`` (item ids never to return) is honoured by models
        declaring ``capabilities.takes_exclude``."""
        raise NotImplementedError

    def add_items(self, items: Iterable) -> list[int]:
        """Add new items after fitting. Models declaring ``capabilities.cold_start_items`` (text
        models) rank them at once; the others keep them in the catalog and never recommend them."""
        return self._own_catalog().add(items)

    def update_items(self, items: Iterable) -> None:
        """Change existing items' fields after fitting (a corrected title, a new brand); an unknown
        id is a ``KeyError`` naming it, raised before anything changes. Models declaring
        ``capabilities.text_updates`` override this to re-index the new text."""
        items = list(items)
        catalog = self._require_fitted()
        for it in items:  # all checked first: a bad id leaves the catalog (and the model's index) as it was
            catalog.index_of(it.id)
        catalog = self._own_catalog()
        for it in items:
            catalog.replace(it)

    def copy_for_edit(self) -> Self:
        """A copy that ``add_items``/``update_items`` can change without changing this model (a
        service edits the copy off the request path and swaps it in). Read-only parts (networks,
        similarity matrices) are shared; the catalog is copied on the copy's first change. Edits
        replace fitted attributes rather than mutate them in place; a model whose edits mutate an
        attribute in place overrides this to copy it."""
        import copy

        dup = copy.copy(self)
        dup.__dict__.pop("_owned_catalog", None)
        return dup

    def _own_catalog(self) -> Catalog:
        """The model's catalog, copied once before the first change: ``fit`` shares the split's
        catalog, and adding items to one model must not change the split or other models."""
        catalog = self._require_fitted()
        if getattr(self, "_owned_catalog", None) is not catalog:
            catalog = catalog.copy()
            self.catalog = self._owned_catalog = catalog
        return catalog

    def _require_fitted(self) -> Catalog:
        if self.catalog is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(split) or load(path) first")
        return self.catalog

    def encode_histories(self, histories: Sequence[Sequence[str]]) -> tuple[list[np.ndarray], list[list[str]]]:
        """Map each history to catalog indices, dropping unknown ids with a note (never a crash)."""
        catalog = self._require_fitted()
        encoded, notes = [], []
        for h in histories:
            if isinstance(h, str):
                raise TypeError("a history is a list of item ids, not a string")
            idx = [catalog._index.get(i) for i in h]
            unknown = [i for i, x in zip(h, idx) if x is None]
            encoded.append(np.asarray([x for x in idx if x is not None], dtype=np.int64))
            notes.append([f"ignored {len(unknown)} unknown item id(s): {', '.join(map(str, unknown[:5]))}"]
                         if unknown else [])
        return encoded, notes

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        catalog = self._require_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        from genrec._version import __version__

        meta = {"model": self.name, "params": _jsonable(self.get_params()), "genrec_version": __version__,
                "fit_info": self.fit_info_}
        from genrec.eval import provenance

        split = getattr(self, "_trained_split", None)
        if split is not None:  # what it was trained on, to refuse evaluating it on its own training data
            meta["trained_on"] = provenance.training_record(split)
            provenance.save_hashes(split.train, path)
        elif self._trained_on is not None and self._trained_on_dir is not None:  # a loaded model saved again
            src = self._trained_on_dir / provenance.PAIRS_FILE
            if src.is_file():
                meta["trained_on"] = self._trained_on
                if src.resolve() != (path / provenance.PAIRS_FILE).resolve():
                    import shutil

                    shutil.copyfile(src, path / provenance.PAIRS_FILE)
        catalog.save(path / CATALOG_FILE)
        self._save_state(path)
        (path / MODEL_FILE).write_text(json.dumps(meta, indent=2, default=_json_scalar))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        path = Path(path)
        meta = read_model_meta(path)
        if meta["model"] != cls.name:
            raise GenrecError(f"{path} holds a {meta['model']!r} model, not {cls.name!r}")
        model = cls(**meta["params"])
        model.catalog = Catalog.load(path / CATALOG_FILE)
        model._load_state(path)
        model._trained_on, model._trained_on_dir = meta.get("trained_on"), path  # the pair hashes load when checked
        if meta.get("fit_info") is not None:
            model.fit_info_ = meta["fit_info"]
        return model

    def _state(self) -> dict:
        """The fitted state pickled by the default ``_save_state`` (public attrs ending in ``_``)."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def _save_state(self, path: Path) -> None:
        with open(path / "state.pkl", "wb") as f:
            pickle.dump(self._state(), f, protocol=pickle.HIGHEST_PROTOCOL)

    def _load_state(self, path: Path) -> None:
        with open(path / "state.pkl", "rb") as f:
            vars(self).update(pickle.load(f))


def _json_scalar(x: Any) -> Any:
    """numpy scalars (a fit_info_ value, say) as Python numbers; anything else as text."""
    return x.item() if isinstance(x, np.generic) else str(x)


def _recording_fit(fit):
    import functools

    @functools.wraps(fit)
    def recording_fit(self, split, *args, **kw):
        out = fit(self, split, *args, **kw)
        if hasattr(split, "train") and hasattr(split, "protocol"):
            self._trained_split = split
        return out

    return recording_fit


def read_model_meta(path: Path) -> dict:
    f = Path(path) / MODEL_FILE
    if not f.is_file():
        raise GenrecError(f"{path} is not a saved genrec model folder (no {MODEL_FILE}); "
                          "write one with `genrec train ... --out PATH`")
    return json.loads(f.read_text())


def _jsonable(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            out[k] = list(v) if isinstance(v, (tuple, set)) else str(v)
    return out


class ScoringRecommender(Recommender):
    """A recommender that scores every catalog item for each history.

    Subclasses implement ``score(encoded_histories) -> (n, len(catalog)) float array``; top-k
    selection, history exclusion and unknown-id handling are done here once, vectorised.
    ``score`` may return fewer columns than the catalog has items: items added after fitting
    (cold start) are then left out (scored ``-inf``).
    """

    capabilities = Capabilities(takes_exclude=True, scores_all_items=True)
    # Bytes of float32 scores computed at once in ``recommend`` (peak memory is ~4x this, with
    # top-k's temporaries); set on an instance to trade memory for speed.
    score_block_bytes: int = 64 * 2**20

    def score(self, histories: list[np.ndarray]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def recommend(self, histories: Sequence[Sequence[str]], k: int = 10, *, exclude_history: bool = True,
                  exclude: Collection[str] = ()) -> Recommendations:
        """Top ``k`` per history; the history (``exclude_history``) and ``exclude`` (item ids;
        unknown ones ignored) are never returned."""
        catalog = self._require_fitted()
        if k <= 0:
            raise ValueError("k must be positive")
        encoded, notes = self.encode_histories(histories)
        if not encoded:
            return Recommendations([], [], [], [])
        banned = np.asarray(sorted(j for j in (catalog._index.get(i) for i in set(exclude)) if j is not None),
                            dtype=np.int64)
        # Scored in blocks of rows so that memory does not grow with histories x items (a million
        # items x 512 histories would be 2 GB of scores); rows are independent, so results are the same.
        rows = score_block_rows(len(catalog), self.score_block_bytes)
        top, top_scores = [], []
        for lo in range(0, len(encoded), rows):
            block = encoded[lo:lo + rows]
            scores = np.asarray(self.score(block), dtype=np.float32)
            if scores.ndim == 2 and scores.shape[0] == len(block) and scores.shape[1] < len(catalog):
                # Items added after fitting: an id-based model has no score for them.
                pad = np.full((len(block), len(catalog) - scores.shape[1]), -np.inf, dtype=np.float32)
                scores = np.concatenate([scores, pad], axis=1)
            if scores.shape != (len(block), len(catalog)):
                raise GenrecError(f"{type(self).__name__}.score returned shape {scores.shape}, "
                                  f"expected {(len(block), len(catalog))}")
            masks = [np.concatenate([h, banned]) if exclude_history else banned for h in block]
            t, ts = top_k(scores, k, masks if exclude_history or len(banned) else None)
            top.extend(t)
            top_scores.extend(ts)
            del scores
        ids = catalog.ids
        items = [[ids[j] for j in row] for row in top]
        for n, h in enumerate(encoded):
            if len(h) == 0:
                notes[n].append("empty history: scores do not depend on the user")
        return Recommendations(items, [list(map(float, s)) for s in top_scores], [], notes)


def score_block_rows(n_items: int, budget_bytes: int) -> int:
    """How many histories to score at once so that their float32 scores fit in ``budget_bytes``."""
    return max(1, int(budget_bytes) // (max(1, n_items) * 4))


def top_k(scores: np.ndarray, k: int, exclude: list[np.ndarray] | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Top-``k`` indices per row, best first, ``exclude``d indices removed. Modifies ``scores``.

    Ties are broken by the lower catalog index, so the first k items are the same whatever k is
    (argpartition alone picks tied items arbitrarily, and Recall@10 would depend on the other Ks).
    """
    n, m = scores.shape
    if exclude is not None:
        rows = np.repeat(np.arange(n), [len(e) for e in exclude])
        cols = np.concatenate(exclude) if exclude else np.empty(0, np.int64)
        scores[rows, cols] = -np.inf
    k_eff = min(k, m)
    if k_eff < m:
        part = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
        kth = np.take_along_axis(scores, part, axis=1).min(axis=1)  # the k-th largest score per row
        # Rows where more items tie at the k-th score than fit: argpartition chose among them arbitrarily.
        ambiguous = set(np.flatnonzero((scores >= kth[:, None]).sum(axis=1) > k_eff).tolist())
    else:
        part = np.tile(np.arange(m), (n, 1))
        ambiguous = set()
    out_i, out_s = [], []
    for r in range(n):
        row = scores[r]
        cand = np.flatnonzero(row >= kth[r]) if r in ambiguous else part[r]
        cs = row[cand]
        order = np.lexsort((cand, -cs))[:k_eff]  # score descending, then index ascending
        keep, ks = cand[order], cs[order]
        fin = np.isfinite(ks)
        out_i.append(keep[fin])
        out_s.append(ks[fin])
    return out_i, out_s
