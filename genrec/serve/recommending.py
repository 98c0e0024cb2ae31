"""``POST /recommend`` in the domain: history from the store or the request, the model's list
filtered (deleted, excluded, category), and its ``why`` restated for the final list."""

from __future__ import annotations

import logging
import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from genrec.core.why import Why, as_why
from genrec.serve import schemas as S

if TYPE_CHECKING:
    from genrec.serve.service import Service

log = logging.getLogger("genrec.serve")
HISTORY_EVENTS = 5 * S.MAX_HISTORY  # latest events read to build a stored user's history


def recommend(svc: "Service", req: S.RecommendRequest) -> dict:
    """The response body of ``POST /recommend`` (see :class:`genrec.serve.schemas.RecommendResponse`)."""
    notes: list[str] = []
    unresolved: list[str] = []
    if req.user is not None:
        rows = svc.store.history(req.user, limit=HISTORY_EVENTS)
        if rows is None:
            rows = []
            notes.append(f"unknown user {req.user!r} (no events yet): recommendations do not depend on the user")
        ids = [r.item_id for r in rows]
        times = {r.item_id: r for r in rows}
    else:
        ids, unresolved = svc.state.resolve(req.history or [])
        times = {}
        if unresolved:
            one = len(unresolved) == 1
            notes.append(f"{len(unresolved)} history entr{'y' if one else 'ies'} matched no item id or title "
                         f"and {'was' if one else 'were'} ignored")
    history = _dedup_last(ids)[-S.MAX_HISTORY:]
    if len(history) < len(ids):
        notes.append(f"history of {len(ids)} events used as {len(history)} distinct items "
                     f"(latest occurrence kept, at most {S.MAX_HISTORY})")
    history_out = []
    for i in history:
        r = times.get(i)
        history_out.append(svc.ref(i, time=datetime.fromtimestamp(r.ts, tz=timezone.utc) if r else None, event_id=r.id if r else None))

    catalog = svc.catalog
    excluded = svc.state.deleted | set(req.exclude_ids)
    cat = req.category.casefold() if req.category else None

    def keep(item_id: str) -> bool:
        if item_id in excluded:
            return False
        if cat is None:
            return True
        it = catalog.get(item_id)
        return it is not None and any(c.casefold() == cat for c in it.categories)

    kept, raw_why, model_notes = _fetch(svc, history, req, keep, len(excluded))
    notes += list(model_notes)
    kept = kept[:req.k]
    if len(kept) < req.k:
        notes.append(f"only {len(kept)} item(s) passed the filters")
    final = [i for i, _ in kept]
    why = _read_why(raw_why, svc.name, notes).restricted_to(final)
    items = []
    for rank, (i, s) in enumerate(kept, 1):
        it = catalog.get(i)
        expl = why.explanation_for(i)
        items.append({"rank": rank, "item_id": i, "title": it.title if it else i, "score": _finite(s),
                      "brand": it.brand if it else None, "categories": list(it.categories) if it else [],
                      "queries": why.queries_for(i), "explanation": expl.to_dict() if expl else None})
    return {"model": svc.name, "user": req.user, "k": req.k, "history": history_out, "unresolved": unresolved,
            "items": items, "why": _jsonable(why.to_dict()), "notes": notes}


def _fetch(svc: "Service", history: list[str], req: S.RecommendRequest, keep: Callable[[str], bool],
           n_excluded: int) -> tuple:
    """``(kept (item, score) pairs, why, notes)``: the model's list filtered by ``keep``.

    A model taking ``exclude=`` is asked for exactly ``k`` with every item ``keep`` refuses
    (excluded ids; outside the category) passed in: its merge gives each query k/m slots, so the
    first k of a longer list would favour the first queries. Others are asked for ``k`` plus the
    number excluded, then for more (x4) while fewer than ``k`` pass.
    """
    extra: frozenset[str] = frozenset()
    if svc.takes_exclude:
        extra = (svc.state.outside(req.category) | svc.state.deleted | frozenset(req.exclude_ids) if req.category
                 else frozenset(req.exclude_ids))
    n_items = len(svc.catalog)
    ask = min(n_items, req.k if svc.takes_exclude else req.k + n_excluded)
    while True:
        items, scores, why, model_notes = svc.batcher.submit(history, max(ask, 1), req.exclude_history, extra)
        got = list(zip(items, scores))
        kept = [(i, s) for i, s in got if keep(i)]
        if len(kept) >= req.k or ask >= n_items or len(got) < ask:
            return kept, why, model_notes
        ask = min(n_items, ask * 4)


def _read_why(raw: Any, model: str, notes: list[str]) -> Why:
    """The model's ``why`` through :func:`genrec.core.why.as_why`; an unreadable one is dropped
    with a note (a model's odd explanation must not fail the request)."""
    try:
        return as_why(raw)
    except (TypeError, ValueError) as e:
        log.warning("%s returned a why that cannot be read: %s", model, e)
        notes.append(f"the model's explanation could not be read ({e})")
        return Why()


def _dedup_last(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i in reversed(ids):
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out[::-1]


def _finite(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _jsonable(x: Any) -> Any:
    from fastapi.encoders import jsonable_encoder

    try:
        return jsonable_encoder(x, custom_encoder={float: lambda f: f if math.isfinite(f) else None})
    except Exception:  # noqa: BLE001 - a model's odd `extra` must not fail the request
        return {**x, "extra": {"unreadable": str(x.get("extra"))}} if isinstance(x, dict) else str(x)
