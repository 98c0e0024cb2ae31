"""The HTTP layer: FastAPI routes over :class:`genrec.serve.service.Service`, and the mapping of
its domain errors to status codes. Every error answer has one body (:class:`schemas.Error`)."""

from __future__ import annotations

import logging
from typing import Annotated, Callable

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from genrec.serve import schemas as S
from genrec.serve.auth import Auth
from genrec.serve.errors import ServeError, status_of
from genrec.serve.metrics import Metrics
from genrec.serve.service import Service

log = logging.getLogger("genrec.serve")


def _doc(*codes: int) -> dict:
    """``responses=`` documenting these error statuses, all with the one error body."""
    what = {400: "Malformed request (bad encoding or Content-Length).", 401: "Missing or wrong bearer token.",
            403: "Writes are disabled: the service has no token.", 404: "Not found.",
            409: "Conflict with the stored state (an existing id, or a change made by another server).",
            413: "Request body too large.", 422: "Invalid input (the `errors` list names each field).",
            503: "The database is unavailable; retry later."}
    return {c: {"model": S.Error, "description": what[c]} for c in codes}


def error_body(status: int, detail: str, errors: list | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "errors": errors or []}, status_code=status, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                for e in exc.errors()]
        summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errs[:5])
        return error_body(422, f"invalid request: {summary}" + (f" (and {len(errs) - 5} more)" if len(errs) > 5
                                                                else ""), errs)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_body(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(ServeError)
    async def _domain(_: Request, exc: ServeError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            log.warning("%s: %s", type(exc).__name__, exc)
        return error_body(status, str(exc), headers={"Retry-After": "5"} if status == 503 else None)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - last resort
        log.exception("internal error")
        return error_body(500, f"internal error: {type(exc).__name__}")


def known_query_only(request: Request) -> None:
    """A query parameter the route does not declare is a 422 naming it, not silently ignored: a
    misspelt ``?limt=5`` would otherwise answer with the default, and the OpenAPI document (which
    lists each route's parameters) would not tell the truth."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = {p.alias for p in dependant.query_params} | {p.name for p in dependant.query_params}
    for sub in dependant.dependencies:
        known |= {p.alias for p in sub.query_params}
    unknown = sorted({k for k in request.query_params if k not in known})
    if unknown:
        raise RequestValidationError([{"loc": ("query", k), "msg": "unknown query parameter", "type": "extra_forbidden"}
                                      for k in unknown])


def build_router(svc: Service, auth: Auth, metrics: Metrics, chat_info: Callable[[], dict] | None = None) -> APIRouter:
    """The API's routes; reads need the token only when ``auth.protect_reads``. ``chat_info``:
    what ``/health`` says about ``POST /chat`` (its LLM, what it may send, where its cache writes)."""
    rd, wr = auth.dependencies()
    read_err = (401, 403) if auth.protect_reads else ()
    r = APIRouter(dependencies=[Depends(known_query_only)])

    @r.get("/health", response_model=S.Health, tags=["service"])
    def health() -> dict:
        """Liveness and what is served (always open), with the chat's LLM and where its cache writes."""
        return {**svc.health(), "auth": auth.modes(), "chat": chat_info() if chat_info else None}

    @r.get("/metrics", tags=["service"], dependencies=rd, responses=_doc(*read_err))
    def get_metrics() -> dict:
        """Request counts by status and latency percentiles (ms) per endpoint; model calls and batching."""
        return {**metrics.snapshot(), "model": svc.batcher.stats()}

    @r.post("/recommend", response_model=S.RecommendResponse, tags=["recommend"], dependencies=rd,
            responses=_doc(400, *read_err, 413, 422, 503))
    def recommend(req: S.RecommendRequest) -> dict:
        """Recommend for a stored user or an explicit history (ids or titles), with the model's reasons.

        A user with no events gets the model's answer for an empty history (popular items for most
        models), with a note; deleted and excluded items are never returned.
        """
        return svc.recommend(req)

    @r.post("/events", response_model=S.EventsOut, tags=["users"], dependencies=wr,
            responses=_doc(400, 401, 403, 404, 409, 413, 422, 503))
    def post_events(body: S.EventsIn) -> dict:
        """Record interactions (atomically: all or none). The next recommendation uses them.

        404 when an event names an unknown or deleted item (nothing is stored); 409 when an
        ``event_id`` is already stored for another user or item."""
        return svc.add_events(body.events)

    @r.get("/users", response_model=S.UsersPage, tags=["users"], dependencies=rd,
           responses=_doc(*read_err, 422, 503))
    def list_users(limit: int = Query(100, ge=1, le=1000),
                   prefix: Annotated[S.NoControl, Query(max_length=200)] = "",
                   cursor: Annotated[S.Cursor | None, Query()] = None) -> dict:
        """Users with events, most recently active first, a page at a time (``next_cursor``)."""
        return svc.users(limit, prefix, cursor)

    @r.get("/users/{user_id:path}/history", response_model=S.UserHistory, tags=["users"], dependencies=rd,
           responses=_doc(*read_err, 404, 422, 503))
    def user_history(user_id: S.PathId, limit: int = Query(S.MAX_HISTORY, ge=1, le=100_000)) -> dict:
        """The user's last ``limit`` events, oldest first; 404 for a user with no events."""
        return svc.user_history(user_id, limit)

    @r.get("/items/{item_id:path}", response_model=S.ItemOut, tags=["items"], dependencies=rd,
           responses=_doc(*read_err, 404, 422))
    def get_item(item_id: S.PathId) -> dict:
        """An item of the catalog; 404 for unknown and deleted items."""
        return svc.item(item_id)

    @r.post("/items", response_model=S.ItemOut, status_code=201, tags=["items"], dependencies=wr,
            responses=_doc(400, 401, 403, 409, 413, 422, 503))
    def add_item(body: S.ItemIn) -> dict:
        """Add an item (cold start): text models can retrieve it at once; persisted."""
        return svc.add_item(body)

    @r.patch("/items/{item_id:path}", response_model=S.ItemOut, tags=["items"], dependencies=wr,
             responses=_doc(400, 401, 403, 404, 409, 413, 422, 503))
    def patch_item(item_id: S.PathId, body: S.ItemPatch) -> dict:
        """Change an item's title, brand, categories or text; persisted.

        Give only the fields to change. ``brand: null`` clears the brand; ``title``, ``categories``
        and ``text`` cannot be null (422): send ``[]`` or ``""`` to clear the latter two.
        """
        return svc.patch_item(item_id, body)

    @r.delete("/items/{item_id:path}", status_code=204, tags=["items"], dependencies=wr,
              responses=_doc(401, 403, 404, 409, 422, 503))
    def delete_item(item_id: S.PathId) -> Response:
        """Delete an item: never recommended again; persisted. Its id cannot be reused."""
        svc.delete_item(item_id)
        return Response(status_code=204)

    return r
