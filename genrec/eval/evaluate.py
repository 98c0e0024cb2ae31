"""evaluate(model, split): full ranking over every catalog item, in batches, with progress."""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from genrec.core.capabilities import capabilities_of
from genrec.core.why import as_why
from genrec.data.splits import Case, Split
from genrec.eval import provenance as P
from genrec.eval import metrics as M
from genrec.eval.report import Report
from genrec.eval.runcard import Timer, machine, package_versions, peak_memory_mb, peak_memory_scope

DEFAULT_KS = (5, 10, 20, 40)


def item_attributes(catalog, attribute: str) -> dict[str, set]:
    """Per item, the set used by Diversity/Coverage: its category path elements, or its brand."""
    if attribute == "categories":
        return {it.id: set(it.categories) for it in catalog if it.categories}
    if attribute == "brand":
        return {it.id: {it.brand} for it in catalog if it.brand}
    raise ValueError("attribute must be 'categories' or 'brand'")


def evaluate(model, split: Split, ks: Sequence[int] = DEFAULT_KS, *, which: str = "test",
             batch_size: int = 512, progress: bool = True, exclude_history: bool = True,
             attributes: Sequence[str] = ("categories", "brand"), sampled_negatives: int | None = None,
             max_cases: int | None = None, seed: int = 0, fit_seconds: float | None = None,
             allow_leak: bool = False, engine=None) -> Report:
    """Evaluate a fitted ``model`` on ``split``'s ``which`` cases.

    Full ranking over the whole catalog is the default. ``sampled_negatives=N`` ranks each target
    among N sampled non-history items instead (only for models that score every item); it
    inflates numbers and is not comparable with full ranking, so it warns.
    A model declaring ``capabilities.per_k_lists`` (``recommend_for_ks``: one list per K) is evaluated per K.

    Before ranking, the cases are checked against what the model was trained on
    (:mod:`genrec.eval.provenance`): targets it trained on for that user raise
    :class:`~genrec.eval.provenance.LeakedEvaluationError` unless ``allow_leak`` (the report is
    then marked LEAKED), and so does a split whose targets the model mostly does not know.
    Targets already in their history can never be hit when ``exclude_history``; the run card
    counts them (``unreachable_targets``).
    ``engine`` (e.g. :class:`genrec.eval.ray_engine.RayEngine`) computes the recommendations of
    the same ``batch_size`` chunks elsewhere (``recommend_chunks``); the metrics are computed here.
    """
    ks = sorted(set(int(k) for k in ks))
    if engine is not None and sampled_negatives:
        raise ValueError("an engine runs full-ranking evaluation only; drop sampled_negatives or the engine")
    if not ks or ks[0] <= 0:
        raise ValueError("ks must be positive integers")
    cases: list[Case] = list(split.cases(which))
    if max_cases is not None and len(cases) > max_cases:
        rng = np.random.default_rng(seed)
        cases = [cases[i] for i in sorted(rng.choice(len(cases), max_cases, replace=False))]
    if not cases:
        raise ValueError(f"the split has no {which} cases")
    model_name = getattr(model, "name", type(model).__name__)
    leak = P.check_cases(model, split, cases)
    if leak.unknown_targets * 2 > len(cases):
        trained = leak.trained_on or {}
        raise P.LeakedEvaluationError(
            f"{model_name} does not know {leak.unknown_targets:,} of the {len(cases):,} {which} target items (its catalog "
            f"has {len(model.catalog):,} items{', from dataset ' + repr(trained.get('dataset')) if trained else ''}; "
            f"evaluating on {split.info.get('dataset')!r}): its scores would be meaningless zeros")
    if leak.status == "LEAKED" and not allow_leak:
        raise P.LeakedEvaluationError(leak.message(model_name, which))
    unreachable = sum(1 for c in cases if c.target in c.history) if exclude_history else 0
    max_k = ks[-1]
    ranks = np.zeros(len(cases), dtype=np.int64)
    # Models whose top-K list depends on K (GPT4Rec's merge gives each query K/m slots, so its
    # top 10 is not the first 10 of its top 40) are asked for each K, as the paper evaluates them.
    per_k = capabilities_of(model).per_k_lists and not sampled_negatives
    lists_by_k: dict[int, list[list[str]]] = {k: [] for k in ks}
    lists: list[list[str]] = []
    whys: list = []
    notes: list = []
    from tqdm.auto import tqdm

    bar = tqdm(total=len(cases), desc=f"evaluating {getattr(model, 'name', type(model).__name__)}",
               unit="user", disable=not progress, mininterval=1.0)
    with Timer() as t:
        if sampled_negatives:
            warnings.warn("sampled-negative metrics rank each target among a few sampled items; they are "
                          "higher than and not comparable with full-ranking metrics", stacklevel=2)
            ranks = _sampled_ranks(model, split, cases, sampled_negatives, seed, batch_size, bar)
        else:
            starts = range(0, len(cases), batch_size)
            remote = None
            if engine is not None:  # the same chunks, scored by the engine's workers (genrec.eval.ray_engine)
                chunks = [[list(c.history) for c in cases[s:s + batch_size]] for s in starts]
                remote = engine.recommend_chunks(model, chunks, k=max_k, ks=ks if per_k else None,
                                                 exclude_history=exclude_history)
            for n, start in enumerate(starts):
                batch = cases[start:start + batch_size]
                histories = [list(c.history) for c in batch]
                if remote is not None:
                    by_k = recs = remote[n]
                if per_k:
                    if remote is None:
                        by_k = model.recommend_for_ks(histories, ks, exclude_history=exclude_history)
                    for k in ks:
                        lists_by_k[k].extend(by_k[k].items)
                    recs = by_k[max_k]
                elif remote is None:
                    recs = model.recommend(histories, k=max_k, exclude_history=exclude_history)
                lists.extend(recs.items)
                whys.extend(recs.why)
                notes.extend(recs.notes)
                bar.update(len(batch))
            ranks = _ranks(cases, lists)
    bar.close()

    table: dict[str, float] = {}
    for k in ks:
        ranks_k = _ranks(cases, lists_by_k[k]) if per_k else ranks
        for name, vals in M.rank_metrics(ranks_k, k).items():
            table[f"{name}@{k}"] = float(vals.mean())
    if per_k:
        for k in ks:
            _attribute_metrics(table, split.catalog, cases, lists_by_k[k], [k], attributes)
    elif lists:
        _attribute_metrics(table, split.catalog, cases, lists, ks, attributes)
    if lists:  # popularity bias: the share of each top-K list from the 20% most popular training items
        from genrec.eval.groups import popular_items, popular_share

        head = popular_items(split)
        for k in ks:
            table[f"popular_share@{k}"] = float(popular_share(lists_by_k[k] if per_k else lists, head, k).mean())
    per_case = [{"user": c.user, "target": c.target, "rank": int(r)} for c, r in zip(cases, ranks)]
    for row, w in zip(per_case, whys):
        row["why"] = _why_dict(w)
    card = {
        "model": model_name,
        "params": model.get_params() if hasattr(model, "get_params") else {},
        "capabilities": capabilities_of(model).names(),  # e.g. whether cold-start targets are reachable by text
        "split": split.describe(),
        "evaluated": which,
        "cases": len(cases),
        "ranking": f"sampled ({sampled_negatives} negatives)" if sampled_negatives else "full",
        "exclude_history": exclude_history,
        "engine": "local" if engine is None else engine.describe(),
        "eval_seconds": round(t.seconds, 3),
        "fit_seconds": None if fit_seconds is None else round(fit_seconds, 3),
        "fit_info": getattr(model, "fit_info_", None),
        "unreachable_targets": unreachable,
        "leakage": leak.to_dict(),
        "peak_memory_mb": round(peak_memory_mb(), 1),
        "peak_memory_scope": peak_memory_scope(),
        "versions": package_versions(),
        "machine": machine(),
    }
    return Report(card["model"], table, per_case, card, whys=whys, lists=lists)


def _why_dict(w) -> dict | None:
    """A case's ``why`` as JSON (None when the model gave none)."""
    try:
        why = as_why(w)
    except TypeError:  # a model outside the Why contract: keep what it said, as text
        return {"extra": {"raw": str(w)}}
    return None if why.is_empty() else why.to_dict()


def _ranks(cases: list[Case], lists: list[list[str]]) -> np.ndarray:
    """1-based rank of each case's target in its list, 0 when absent."""
    out = np.zeros(len(cases), dtype=np.int64)
    for n, (c, items) in enumerate(zip(cases, lists)):
        try:
            out[n] = items.index(c.target) + 1
        except ValueError:
            pass
    return out


def _nanmean(xs) -> float:
    vals = np.asarray(xs, dtype=np.float64)
    vals = vals[~np.isnan(vals)]
    return float(vals.mean()) if len(vals) else float("nan")


def _attribute_metrics(table: dict, catalog, cases: list[Case], lists: list[list[str]], ks: list[int],
                       attributes: Sequence[str], chunk: int = 256) -> None:
    """Diversity@k and Coverage@k per attribute, and catalog coverage, vectorised in chunks."""
    K = ks[-1]
    idx = np.full((len(lists), K), -1, dtype=np.int64)
    index = catalog._index
    for r, items in enumerate(lists):
        row = [index[i] for i in items[:K] if i in index]
        idx[r, : len(row)] = row
    hist = [catalog.indices(c.history, skip_unknown=True) for c in cases]
    for attr in attributes:
        attrs = item_attributes(catalog, attr)
        if not attrs:
            continue
        sets = [attrs.get(it.id, set()) for it in catalog]
        if not any(sets):
            continue
        tab = M.attribute_table(sets)
        div: dict[int, list[np.ndarray]] = {k: [] for k in ks}
        for start in range(0, len(idx), chunk):
            for k, v in M.diversity_batch(idx[start:start + chunk], tab, ks).items():
                div[k].append(v)
        cov = M.coverage_batch(idx, hist, tab, ks)
        for k in ks:
            table[f"diversity_{attr}@{k}"] = _nanmean(np.concatenate(div[k]))
            table[f"coverage_{attr}@{k}"] = _nanmean(cov[k])
    for k in ks:
        table[f"catalog_coverage@{k}"] = M.catalog_coverage(lists, len(catalog), k)


def _sampled_ranks(model, split, cases, n_neg, seed, batch_size, bar) -> np.ndarray:
    if not capabilities_of(model).scores_all_items:
        raise TypeError(f"{type(model).__name__} does not score every item; sampled metrics need that")
    from genrec.models.base import ScoringRecommender, score_block_rows

    rng = np.random.default_rng(seed)
    cat = split.catalog
    n = len(cat)
    # Bounded memory: no more score rows at once than the model's score budget allows (ranks do not change).
    batch_size = min(batch_size, score_block_rows(n, getattr(model, "score_block_bytes",
                                                             ScoringRecommender.score_block_bytes)))
    out = np.zeros(len(cases), dtype=np.int64)
    for start in range(0, len(cases), batch_size):
        batch = cases[start:start + batch_size]
        enc, _ = model.encode_histories([list(c.history) for c in batch])
        scores = np.asarray(model.score(enc))
        for j, c in enumerate(batch):
            t = cat.index_of(c.target)
            banned = set(enc[j].tolist()) | {t}
            negs: list[int] = []
            while len(negs) < min(n_neg, n - len(banned)):
                x = int(rng.integers(n))
                if x not in banned:
                    banned.add(x)
                    negs.append(x)
            out[start + j] = 1 + int(np.sum(scores[j, negs] > scores[j, t]))
        bar.update(len(batch))
    return out
