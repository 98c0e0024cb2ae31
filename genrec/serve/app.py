"""The HTTP service: a FastAPI app over one loaded model, a database, and a web page.

Behaviour worth knowing:
- ``POST /recommend`` for a ``user`` with no stored events answers 200 with the model's answer to an
  empty history (popular-style fallback for most models) and says so in ``notes``; only
  ``GET /users/{id}/history`` answers 404 for an unknown user.
- A history is deduplicated (the latest occurrence of an item counts) and its last
  ``MAX_HISTORY`` items are used.
- Deleted items stay in the catalog (so old histories still resolve) but are never recommended,
  never resolved from a title, and ``GET /items/{id}`` answers 404 for them. Their ids cannot be
  reused (409).
- One process serves one model: run a single uvicorn worker (the model's catalog changes in
  memory; other workers would not see it).
- Writes need the bearer token; with no token configured they answer 403 unless the service was
  started with ``open_writes`` (``genrec serve --open-writes``, for local development).
- Models whose ``recommend`` takes ``exclude=`` (GPT4Rec, title-bm25) are asked for exactly ``k``
  items with deleted, excluded and (under a category filter) out-of-category ids passed in: their
  merge gives each query k/m slots, so the first k of a longer list would favour the first queries.
  Their BM25 search masks those ids (bm25s `weight_mask`), so it stays about k deep however many
  are passed.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import secrets
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Sequence

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from genrec.data.catalog import Catalog, Item
from genrec.errors import GenrecError
from genrec.serve import schemas as S
from genrec.serve.metrics import BodyLimitMiddleware, Metrics, MetricsMiddleware
from genrec.serve.store import Conflict, ItemRow, Store
from genrec.text import clean_title

log = logging.getLogger("genrec.serve")
STATIC = Path(__file__).parent / "static"
MAX_BODY = 1_000_000
HISTORY_EVENTS = 5 * S.MAX_HISTORY  # latest events read to build a stored user's history
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


class Service:
    """The model, its catalog as changed through the API, and the store; the app's state."""

    def __init__(self, model: Any, store: Store) -> None:
        if getattr(model, "catalog", None) is None:
            raise GenrecError("the model has no catalog: fit or load it before serving")
        self.model, self.store = model, store
        self.name: str = getattr(model, "name", type(model).__name__)
        self.lock = threading.RLock()  # the model and its catalog: one writer or recommender at a time
        # Catalog writes and event writes: an item cannot be deleted between an event's existence
        # check and its insert. Taken before ``lock``; recommends never wait for it.
        self.catalog_lock = threading.RLock()
        # Replaced, never mutated, so readers without a lock see one whole set.
        self.deleted: frozenset[str] = frozenset()
        self.api_items: set[str] = set()
        self.takes_exclude = _takes_exclude(model)
        # Ids outside a category, per (catalog version, category): building one walks the catalog
        # in Python (tens of ms for a 12k-item catalog), too slow for every filtered request.
        self._catalog_version = 0
        self._outside_cache: dict[tuple[int, str], frozenset[str]] = {}
        self._replay()
        self._titles = self._title_index()
        self.batcher = Batcher(self._run_batch)

    def _run_batch(self, histories: list[list[str]], k: int, exclude_history: bool,
                   exclude: frozenset[str]) -> list[tuple]:
        """One model call for several requests (same ``k``, ``exclude_history`` and ``exclude``)."""
        with self.lock:
            if self.takes_exclude:
                recs = self.model.recommend(histories, k=k, exclude_history=exclude_history,
                                            exclude=self.deleted | exclude)
            else:
                recs = self.model.recommend(histories, k=k, exclude_history=exclude_history)
        if len(recs) != len(histories):
            raise GenrecError(f"{self.name}.recommend returned {len(recs)} results for {len(histories)} histories")
        return [(recs.items[n], recs.scores[n], recs.why[n], recs.notes[n]) for n in range(len(histories))]

    @property
    def catalog(self) -> Catalog:
        return self.model.catalog

    # -- catalog state ----------------------------------------------------------------------------
    def _catalog_changed(self) -> None:
        """Called before and after every change to the model's catalog: a category set built by a
        request that ran during the change is keyed by a version no later request uses."""
        self._catalog_version += 1
        self._outside_cache = {}

    def outside(self, category: str) -> frozenset[str]:
        """Ids of the items none of whose categories equals ``category`` (case-folded)."""
        cat = category.casefold()
        key = (self._catalog_version, cat)  # read first: a change while we build gives a dead key
        hit = self._outside_cache.get(key)
        if hit is None:
            hit = frozenset(it.id for it in self.catalog if not any(c.casefold() == cat for c in it.categories))
            cache = self._outside_cache
            if len(cache) >= 256:
                cache.clear()
            cache[key] = hit
        return hit

    def _replay(self) -> None:
        """Re-apply items added, changed or deleted through the API (restart loses nothing)."""
        self._catalog_changed()
        rows = self.store.item_rows()
        new = [r for r in rows if r.item_id not in self.catalog]
        new_ids = {r.item_id for r in new}
        if new:
            self.model.add_items([_to_item(r) for r in new])
        self.api_items = {r.item_id for r in rows if r.origin == "api"}
        self.deleted = frozenset(r.item_id for r in rows if r.deleted)
        if rows:
            log.info("re-applied %d catalog change(s) from the database (%d new, %d deleted)",
                     len(rows), len(new), len(self.deleted))
        changed = [_to_item(r) for r in rows if r.item_id not in new_ids]
        if changed:
            self.model.update_items(changed)

    def _title_index(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for it in self.catalog:
            if it.title and it.id not in self.deleted:
                out.setdefault(it.title, it.id)
        return out

    def live(self, item_id: str) -> Item | None:
        it = self.catalog.get(item_id)
        return None if it is None or item_id in self.deleted else it

    def add_item(self, body: S.ItemIn) -> Item:
        row = ItemRow(item_id=body.id, title=body.title, brand=body.brand, categories=list(body.categories),
                      text=body.text, origin="api")
        with self.catalog_lock, self.lock:
            if body.id in self.catalog:
                raise Conflict(f"item {body.id!r} already exists" + (" (deleted; ids are not reused)"
                                                                     if body.id in self.deleted else ""))
            self._catalog_changed()
            try:
                with self.store.write() as conn:
                    self.store.insert_item(conn, row)
                    self.model.add_items([_to_item(row)])  # raises -> the insert rolls back
            except BaseException:
                if body.id in self.catalog:  # added to the model but not committed: hide it
                    self.deleted = self.deleted | {body.id}
                raise
            finally:
                self._catalog_changed()
            self.api_items.add(body.id)
            it = self.catalog[body.id]
            if it.title:
                self._titles.setdefault(it.title, it.id)
            return it

    def patch_item(self, item_id: str, patch: S.ItemPatch) -> Item:
        """Change an item in the model and the database, or in neither (the model is put back if
        its update or the commit fails)."""
        with self.catalog_lock, self.lock:
            old = self.live(item_id)
            if old is None:
                raise KeyError(item_id)
            new = _patched(old, patch)
            changing = False
            self._catalog_changed()
            try:
                with self.store.write() as conn:
                    self._save_row(conn, new, deleted=False)
                    changing = True
                    self.model.update_items([new])  # raises -> the row rolls back
            except BaseException:
                if changing:
                    self._restore(old)
                raise
            finally:
                self._catalog_changed()
            self._titles = self._title_index()
            return self.catalog[item_id]

    def _restore(self, old: Item) -> None:
        """Put ``old`` back in the model after a failed change (it may have been half applied)."""
        try:
            self.model.update_items([old])
        except Exception:  # noqa: BLE001 - the original error is the one to report
            log.exception("could not restore item %r in the model after a failed change", old.id)

    def delete_item(self, item_id: str) -> None:
        """Delete in the database, then in memory (replacing two references, which cannot fail)."""
        with self.catalog_lock:
            it = self.live(item_id)
            if it is None:
                raise KeyError(item_id)
            with self.store.write() as conn:
                self._save_row(conn, it, deleted=True)
            self.deleted = self.deleted | {item_id}
            self._titles = self._title_index()

    def _save_row(self, conn: Any, it: Item, deleted: bool) -> None:
        row = ItemRow(item_id=it.id, title=it.title, brand=it.brand, categories=list(it.categories), text=it.text,
                      origin="api" if it.id in self.api_items else "model", deleted=deleted)
        if self.store.get_item_row(conn, it.id) is None:
            self.store.insert_item(conn, row)
        else:
            self.store.update_item(conn, row)

    # -- events -----------------------------------------------------------------------------------
    def add_events(self, events: Sequence[S.EventIn]) -> list[int]:
        """Store events for live items, all or none: 422 naming unknown or deleted items."""
        with self.catalog_lock:  # no item is deleted between this check and the insert
            bad = sorted({e.item for e in events if self.live(e.item) is None})
            if bad:
                raise HTTPException(422, f"unknown or deleted item id(s): {', '.join(map(repr, bad[:10]))}"
                                         + (f" and {len(bad) - 10} more" if len(bad) > 10 else ""))
            now = time.time()
            return self.store.add_events([(e.user, e.item, e.time.timestamp() if e.time else now) for e in events])

    # -- history ----------------------------------------------------------------------------------
    def resolve(self, entries: Sequence[str]) -> tuple[list[str], list[str]]:
        """Item ids for ``entries`` (ids, else exact cleaned titles) and the unresolved entries."""
        ids, unresolved = [], []
        for e in entries:
            if e in self.catalog:
                ids.append(e)
            else:
                hit = self._titles.get(clean_title(e))
                (ids.append(hit) if hit is not None else unresolved.append(e))
        return ids, unresolved

    def ref(self, item_id: str, **extra: Any) -> dict:
        it = self.catalog.get(item_id)
        return {"item_id": item_id, "title": it.title if it else None, **extra}

    # -- recommend --------------------------------------------------------------------------------
    def _fetch(self, history: list[str], req: S.RecommendRequest, keep: Callable[[str], bool],
               n_excluded: int) -> tuple:
        """``(kept (item, score) pairs, why, notes)``: the model's list filtered by ``keep``.

        A model taking ``exclude=`` is asked for exactly ``k`` with every item ``keep`` refuses
        (excluded ids; outside the category) passed in. Others are asked for ``k`` plus the number
        excluded, then for more (x4) while fewer than ``k`` pass.
        """
        extra: frozenset[str] = frozenset()
        if self.takes_exclude:
            extra = (self.outside(req.category) | self.deleted | frozenset(req.exclude_ids) if req.category
                     else frozenset(req.exclude_ids))
        n_items = len(self.catalog)
        ask = min(n_items, req.k if self.takes_exclude else req.k + n_excluded)
        while True:
            items, scores, why, model_notes = self.batcher.submit(history, max(ask, 1), req.exclude_history, extra)
            got = list(zip(items, scores))
            kept = [(i, s) for i, s in got if keep(i)]
            if len(kept) >= req.k or ask >= n_items or len(got) < ask:
                return kept, why, model_notes
            ask = min(n_items, ask * 4)

    def recommend(self, req: S.RecommendRequest) -> dict:
        notes: list[str] = []
        unresolved: list[str] = []
        history_out: list[dict] = []
        if req.user is not None:
            rows = self.store.history(req.user, limit=HISTORY_EVENTS)
            if rows is None:
                rows = []
                notes.append(f"unknown user {req.user!r} (no events yet): recommendations do not depend on the user")
            ids = [r.item_id for r in rows]
            times = {r.item_id: r for r in rows}
        else:
            ids, unresolved = self.resolve(req.history or [])
            times = {}
            if unresolved:
                one = len(unresolved) == 1
                notes.append(f"{len(unresolved)} history entr{'y' if one else 'ies'} matched no item id or title "
                             f"and {'was' if one else 'were'} ignored")
        history = _dedup_last(ids)[-S.MAX_HISTORY:]
        if len(history) < len(ids):
            notes.append(f"history of {len(ids)} events used as {len(history)} distinct items "
                         f"(latest occurrence kept, at most {S.MAX_HISTORY})")
        for i in history:
            r = times.get(i)
            history_out.append(self.ref(i, time=_dt(r.ts) if r else None, event_id=r.id if r else None))

        excluded = self.deleted | set(req.exclude_ids)
        cat = req.category.casefold() if req.category else None

        def keep(item_id: str) -> bool:
            if item_id in excluded:
                return False
            if cat is None:
                return True
            it = self.catalog.get(item_id)
            return it is not None and any(c.casefold() == cat for c in it.categories)

        kept, why, model_notes = self._fetch(history, req, keep, len(excluded))
        notes += list(model_notes)
        kept = kept[:req.k]
        if len(kept) < req.k:
            notes.append(f"only {len(kept)} item(s) passed the filters")
        final = [i for i, _ in kept]
        out = {"model": self.name, "user": req.user, "k": req.k, "history": history_out, "unresolved": unresolved,
               "notes": notes}
        queries, item_queries = _queries(why, set(final))
        out["queries"] = queries
        if isinstance(why, dict):
            why = dict(why)
            if queries is not None:  # the model's why covered the over-fetched list: restate it for `final`
                out["filled_by_popularity"] = sum(1 for i in final if not item_queries.get(i))
                why.update(queries=queries, filled_by_popularity=out["filled_by_popularity"])
            out["why"] = _jsonable(why)
        elif isinstance(why, str):
            out["explanation"] = why
        elif why is not None:
            out["why"] = _jsonable(why)
        rows_out = []
        for rank, (i, s) in enumerate(kept, 1):
            it = self.catalog.get(i)
            rows_out.append({"rank": rank, "item_id": i, "title": it.title if it else i,
                             "score": float(s) if s is not None and math.isfinite(float(s)) else None,
                             "brand": it.brand if it else None, "categories": list(it.categories) if it else [],
                             "queries": item_queries.get(i, [])})
        out["items"] = rows_out
        return out


class _Job:
    __slots__ = ("history", "key", "result", "error", "done")

    def __init__(self, history: list[str], key: tuple[int, bool, frozenset[str]]) -> None:
        self.history, self.key = history, key
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False


class Batcher:
    """Micro-batching of concurrent recommend calls (no added wait).

    Requests that arrive while the model is busy queue up; the next free request thread runs
    every queued job with the same ``(k, exclude_history, exclude)`` as one ``model.recommend`` call and
    hands each caller its own result. A batched model call (GPT4Rec's generation, a scoring
    model's matrix product) costs far less than the same calls one by one. ``k`` is part of the
    key because GPT4Rec's merge gives each query a share of ``k``: results for different ``k``
    are not prefixes of each other.
    """

    def __init__(self, run: Any, max_batch: int = 32) -> None:
        self.run, self.max_batch = run, max_batch
        self.cv = threading.Condition()
        self.pending: list[_Job] = []
        self.busy = False
        self.calls = self.jobs = 0

    def submit(self, history: list[str], k: int, exclude_history: bool,
               exclude: frozenset[str] = frozenset()) -> tuple:
        job = _Job(history, (k, exclude_history, exclude))
        with self.cv:
            self.pending.append(job)
        while True:
            with self.cv:
                while not job.done and self.busy:
                    self.cv.wait()
                if job.done:
                    break
                self.busy = True
                key = self.pending[0].key
                batch = [j for j in self.pending if j.key == key][: self.max_batch]
                taken = set(map(id, batch))
                self.pending = [j for j in self.pending if id(j) not in taken]
            self.calls += 1
            self.jobs += len(batch)
            try:
                results = self.run([j.history for j in batch], *key)
                for j, r in zip(batch, results):
                    j.result = r
            except BaseException as e:  # noqa: BLE001 - handed to every caller of the batch
                for j in batch:
                    j.error = e
            finally:
                with self.cv:
                    for j in batch:
                        j.done = True
                    self.busy = False
                    self.cv.notify_all()
        if job.error is not None:
            if isinstance(job.error, ValueError):
                raise HTTPException(422, f"the model rejected the request: {job.error}") from job.error
            raise job.error
        return job.result


# -- helpers ---------------------------------------------------------------------------------------
def _takes_exclude(model: Any) -> bool:
    """Whether ``model.recommend`` accepts ``exclude=`` (item ids it must never return)."""
    try:
        return "exclude" in inspect.signature(model.recommend).parameters
    except (TypeError, ValueError):  # a builtin or C-implemented recommend: no signature
        return False


def _to_item(r: ItemRow) -> Item:
    return Item(id=r.item_id, title=r.title, brand=r.brand, categories=tuple(r.categories), text=r.text)


def _patched(old: Item, patch: S.ItemPatch) -> Item:
    """``old`` with the fields the patch sets (the schema has already refused nulls where not allowed)."""
    fields = patch.model_dump(exclude_unset=True)
    return Item(id=old.id, title=fields.get("title", old.title), brand=fields.get("brand", old.brand),
                categories=tuple(fields.get("categories", old.categories)), text=fields.get("text", old.text),
                extra=dict(old.extra))


def _dedup_last(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i in reversed(ids):
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out[::-1]


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _queries(why: Any, final: set[str]) -> tuple[list[dict] | None, dict[str, list[int]]]:
    """GPT4Rec-shaped ``why`` -> queries limited to the returned items, and item -> query indices."""
    if not isinstance(why, dict) or not isinstance(why.get("queries"), list):
        return None, {}
    out, by_item = [], {}
    for n, q in enumerate(why["queries"]):
        if not isinstance(q, dict):
            continue
        its = [str(i) for i in (q.get("items") or []) if str(i) in final]
        score = q.get("score")
        try:
            score = float(score) if score is not None and math.isfinite(float(score)) else None
        except (TypeError, ValueError):
            score = None
        for i in its:
            by_item.setdefault(i, []).append(len(out))
        out.append({"query": str(q.get("query", "")), "score": score, "items": its})
    return out, by_item


def _jsonable(x: Any) -> Any:
    from fastapi.encoders import jsonable_encoder

    try:
        return jsonable_encoder(x, custom_encoder={float: lambda f: f if math.isfinite(f) else None})
    except Exception:  # noqa: BLE001 - a model's odd why must not fail the request
        return str(x)


def _item_out(svc: Service, it: Item) -> dict:
    return {"id": it.id, "title": it.title, "brand": it.brand, "categories": list(it.categories), "text": it.text,
            "source": "api" if it.id in svc.api_items else "model"}


# -- the app ---------------------------------------------------------------------------------------
def create_app(model_or_dir: Any, db_url: str = "sqlite:///genrec.db", token: str | None = None,
               protect_reads: bool = False, open_writes: bool = False) -> FastAPI:
    """The service for a model object or a saved model folder, persisting to ``db_url``.

    Write endpoints (and read endpoints too when ``protect_reads``) require
    ``Authorization: Bearer <token>``. Without a ``token`` they answer 403, unless ``open_writes``
    (local development: anyone who can reach the service may write). Raises :class:`GenrecError`
    when the model folder or the database cannot be opened.
    """
    if isinstance(model_or_dir, (str, Path)):
        from genrec.models.registry import load_model

        p = Path(model_or_dir)
        if not p.is_dir():
            raise GenrecError(f"model folder {p} does not exist; train one with "
                              "`genrec train --model NAME --out PATH` and pass --model-dir PATH")
        model = load_model(p)
    else:
        model = model_or_dir
    store = Store(db_url)
    svc = Service(model, store)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # noqa: ANN202
        yield
        store.close()

    app = FastAPI(title="genrec", version=_version(), lifespan=lifespan, docs_url=None,
                  description="Recommendations with their reasons, over one trained genrec model. Write endpoints "
                              "need `Authorization: Bearer <token>` (403 when the service has no token, unless "
                              "it was started with --open-writes).",
                  responses={422: {"model": S.Error}})
    app.state.service, app.state.metrics = svc, metrics
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    bearer = HTTPBearer(auto_error=False)

    def _check(creds: HTTPAuthorizationCredentials | None) -> None:
        if token is None:
            if open_writes:
                return
            raise HTTPException(403, "this service has no token configured, so writes (and protected reads) are "
                                     "disabled: set GENREC_TOKEN, or start it with --open-writes "
                                     "(GENREC_OPEN_WRITES=1) for local development")
        if creds is None or not secrets.compare_digest(creds.credentials.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    def need_write(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        _check(creds)

    def need_read(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if protect_reads:
            _check(creds)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                for e in exc.errors()]
        return JSONResponse({"detail": errs}, status_code=422)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - last resort
        log.exception("internal error")
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    rd, wr = [Depends(need_read)], [Depends(need_write)]

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": CSP,
                                                            "X-Content-Type-Options": "nosniff",
                                                            "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _mount_docs(app)

    @app.get("/health", response_model=S.Health, tags=["service"])
    def health() -> dict:
        """Liveness and what is served (always open)."""
        ok = store.ping()
        return {"status": "ok" if ok else "degraded", "model": svc.name, "items": len(svc.catalog) - len(svc.deleted),
                "deleted_items": len(svc.deleted), "database": store.backend, "database_ok": ok,
                "auth": _auth_modes(token is not None, open_writes, protect_reads)}

    @app.get("/metrics", tags=["service"], dependencies=rd)
    def get_metrics() -> dict:
        """Request counts by status and latency percentiles (ms) per endpoint; model calls and batching."""
        b = svc.batcher
        return {**metrics.snapshot(), "model": {"calls": b.calls, "requests": b.jobs,
                                                "mean_batch": round(b.jobs / b.calls, 2) if b.calls else 0.0}}

    @app.post("/recommend", response_model=S.RecommendResponse, response_model_exclude_none=False, tags=["recommend"],
              dependencies=rd, responses={401: {"model": S.Error}, 403: {"model": S.Error}})
    def recommend(req: S.RecommendRequest) -> dict:
        """Recommend for a stored user or an explicit history (ids or titles), with the model's reasons.

        A user with no events gets the model's answer for an empty history (popular items for most
        models), with a note; deleted and excluded items are never returned.
        """
        return svc.recommend(req)

    @app.post("/events", response_model=S.EventsOut, tags=["users"], dependencies=wr,
              responses={401: {"model": S.Error}, 403: {"model": S.Error}})
    def post_events(body: S.EventsIn) -> dict:
        """Record interactions (atomically: all or none). The next recommendation uses them."""
        ids = svc.add_events(body.events)
        return {"recorded": len(ids), "event_ids": ids}

    @app.get("/users", response_model=list[S.UserSummary], tags=["users"], dependencies=rd)
    def list_users(limit: int = Query(100, ge=1, le=1000),
                   prefix: Annotated[S.NoControl, Query(max_length=200)] = "") -> list[dict]:
        """Users with events, most recently active first."""
        return [{"user": u, "events": n, "last_time": _dt(t)} for u, n, t in store.list_users(limit, prefix)]

    @app.get("/users/{user_id:path}/history", response_model=S.UserHistory, tags=["users"], dependencies=rd,
             responses={404: {"model": S.Error}})
    def user_history(user_id: S.NoControl, limit: int = Query(S.MAX_HISTORY, ge=1, le=100_000)) -> dict:
        """The user's last ``limit`` events, oldest first; 404 for a user with no events."""
        rows = store.history(user_id, limit)
        if rows is None:
            raise HTTPException(404, f"unknown user {user_id!r}: no events recorded")
        return {"user": user_id, "count": len(rows),
                "events": [svc.ref(r.item_id, time=_dt(r.ts), event_id=r.id) for r in rows]}

    @app.get("/items/{item_id:path}", response_model=S.ItemOut, tags=["items"], dependencies=rd,
             responses={404: {"model": S.Error}})
    def get_item(item_id: S.NoControl) -> dict:
        it = svc.live(item_id)
        if it is None:
            raise HTTPException(404, f"unknown item {item_id!r}" + (" (deleted)" if item_id in svc.deleted else ""))
        return _item_out(svc, it)

    @app.post("/items", response_model=S.ItemOut, status_code=201, tags=["items"], dependencies=wr,
              responses={401: {"model": S.Error}, 403: {"model": S.Error}, 409: {"model": S.Error}})
    def add_item(body: S.ItemIn) -> dict:
        """Add an item (cold start): text models can retrieve it at once; persisted."""
        with _model_refusal():
            return _item_out(svc, svc.add_item(body))

    @app.patch("/items/{item_id:path}", response_model=S.ItemOut, tags=["items"], dependencies=wr,
               responses={401: {"model": S.Error}, 403: {"model": S.Error}, 404: {"model": S.Error}})
    def patch_item(item_id: S.NoControl, body: S.ItemPatch) -> dict:
        """Change an item's title, brand, categories or text; persisted.

        Give only the fields to change. ``brand: null`` clears the brand; ``title``, ``categories``
        and ``text`` cannot be null (422): send ``[]`` or ``""`` to clear the latter two.
        """
        try:
            with _model_refusal():
                return _item_out(svc, svc.patch_item(item_id, body))
        except KeyError:
            raise HTTPException(404, f"unknown item {item_id!r}") from None

    @app.delete("/items/{item_id:path}", status_code=204, tags=["items"], dependencies=wr,
                responses={401: {"model": S.Error}, 403: {"model": S.Error}, 404: {"model": S.Error}})
    def delete_item(item_id: S.NoControl) -> Response:
        """Delete an item: never recommended again; persisted. Its id cannot be reused."""
        try:
            svc.delete_item(item_id)
        except KeyError:
            raise HTTPException(404, f"unknown item {item_id!r}") from None
        return Response(status_code=204)

    return app


def _auth_modes(has_token: bool, open_writes: bool, protect_reads: bool) -> dict:
    """What /health says about access: ``token``, ``open`` or ``disabled`` for writes and reads."""
    guarded = "token" if has_token else ("open" if open_writes else "disabled")
    return {"writes": guarded, "reads": guarded if protect_reads else "open"}


@contextmanager
def _model_refusal() -> Iterator[None]:
    """A ValueError from the model's add/update (e.g. a title it cannot index) -> 422."""
    try:
        yield
    except ValueError as e:
        raise HTTPException(422, f"the model rejected the change: {e}") from e


def _mount_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI 5) served from the assets the fastapi-offline package ships, so the page
    works without internet; FastAPI's default loads them from a CDN (our fallback when the package
    is missing). Only the package's static files are used, not its FastAPI subclass."""
    from fastapi.openapi.docs import get_swagger_ui_html

    try:
        import fastapi_offline
    except ImportError:
        js, css, icon = ("https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js",
                         "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css",
                         "https://fastapi.tiangolo.com/img/favicon.png")
    else:
        app.mount("/docs-assets", StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"),
                  name="docs-assets")
        js, css, icon = "/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/docs-assets/favicon.png"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="genrec API", swagger_js_url=js,
                                   swagger_css_url=css, swagger_favicon_url=icon)


def _version() -> str:
    from genrec import __version__

    return __version__


def run(model_dir: str | Path, db_url: str = "sqlite:///genrec.db", host: str = "127.0.0.1", port: int = 8000,
        token: str | None = None, protect_reads: bool | None = None, open_writes: bool | None = None,
        log_level: str = "info") -> None:
    """Load the model and serve it with uvicorn (one worker). Token defaults to ``$GENREC_TOKEN``;
    ``protect_reads`` and ``open_writes`` to ``$GENREC_PROTECT_READS`` and ``$GENREC_OPEN_WRITES``.

    Raises :class:`GenrecError` (the CLI exits non-zero) when the model folder or database cannot be used.
    """
    import uvicorn

    token = token or os.environ.get("GENREC_TOKEN") or None
    if protect_reads is None:
        protect_reads = _env_flag("GENREC_PROTECT_READS")
    if open_writes is None:
        open_writes = _env_flag("GENREC_OPEN_WRITES")
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO))
    app = create_app(model_dir, db_url, token=token, protect_reads=protect_reads, open_writes=open_writes)
    if token is None and not open_writes:
        log.warning("no GENREC_TOKEN: write endpoints answer 403 (set GENREC_TOKEN, or --open-writes for "
                    "local development)")
    elif token is None and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s with open writes: anyone who can reach it can change the catalog "
                    "(set GENREC_TOKEN)", host)
    uvicorn.run(app, host=host, port=port, log_level=log_level, workers=1)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
