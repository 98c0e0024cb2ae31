"""The HTTP service: a FastAPI app over one loaded model, a database, and a web page.

The pieces: :mod:`.service` (the domain, no HTTP), :mod:`.recommending` (``POST /recommend``),
:mod:`.chatting` (``POST /chat``, with :mod:`.chat_search`, :mod:`.chat_store`, :mod:`.chat_routes`),
:mod:`.catalog_state`, :mod:`.batching` (cross-thread micro-batching), :mod:`.auth`,
:mod:`.routes` (FastAPI only), :mod:`.docs` (page and /docs), :mod:`.server` (start-up).

Behaviour worth knowing:
- ``POST /recommend`` for a ``user`` with no stored events answers 200 with the model's answer to an
  empty history (popular-style fallback for most models) and says so in ``notes``; only
  ``GET /users/{id}/history`` answers 404 for an unknown user.
- A history is deduplicated (the latest occurrence of an item counts) and its last
  ``MAX_HISTORY`` items are used.
- Deleted items stay in the catalog (so old histories still resolve) but are never recommended,
  never resolved from a title, and ``GET /items/{id}`` answers 404 for them. Their ids cannot be
  reused (409).
- One process serves one model: run a single uvicorn worker.
- Models whose ``recommend`` takes ``exclude=`` (GPT4Rec, title-bm25) are asked for exactly ``k``
  items with deleted, excluded and (under a category filter) out-of-category ids passed in.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from genrec.errors import GenrecError
from genrec.serve.auth import Auth
from genrec.serve.chat_routes import build_chat_router
from genrec.serve.chatting import ChatConfig, ChatEngine
from genrec.serve.docs import mount_docs, mount_page
from genrec.serve.metrics import BodyLimitMiddleware, Metrics, MetricsMiddleware
from genrec.serve.routes import add_error_handlers, build_router
from genrec.serve.service import Service
from genrec.serve.store import Store

MAX_BODY = 1_000_000


def create_app(model_or_dir: Any, db_url: str = "sqlite:///genrec.db", token: str | None = None,
               protect_reads: bool = False, open_writes: bool = False, refresh_seconds: float = 1.0,
               swap_edits: bool = True, chat: "ChatConfig | None" = None) -> FastAPI:
    """The service for a model object or a saved model folder, persisting to ``db_url``.

    Write endpoints (and read endpoints too when ``protect_reads``) require
    ``Authorization: Bearer <token>``. Without a ``token`` they answer 403, unless ``open_writes``
    (local development: anyone who can reach the service may write). Servers sharing a database
    see each other's catalog changes within ``refresh_seconds``. ``swap_edits=False`` edits a
    title-search model in place, under the lock recommendations take (the old behaviour, kept
    for the load benchmark's comparison). ``chat`` configures ``POST /chat`` (default: no LLM, BM25
    title search; :class:`genrec.serve.chatting.ChatConfig`). Raises :class:`GenrecError`
    when the model folder or the database cannot be opened.
    """
    model = _load(model_or_dir)
    store = Store(db_url)
    svc = Service(model, store, refresh_seconds=refresh_seconds, swap_edits=swap_edits)
    auth = Auth(token, protect_reads, open_writes)
    metrics = Metrics()
    try:
        engine = ChatEngine(svc, chat)
    except ValueError as e:
        store.close()
        raise GenrecError(f"chat: {e}") from e

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # noqa: ANN202
        yield
        engine.close()
        store.close()

    app = FastAPI(title="genrec", version=_version(), lifespan=lifespan, docs_url=None,
                  description="Recommendations with their reasons, over one trained genrec model. Write endpoints "
                              "need `Authorization: Bearer <token>` (403 when the service has no token, unless "
                              "it was started with --open-writes)" + (", and so do reads" if protect_reads else
                                                                      "; reads are open") + ".")
    app.state.service, app.state.metrics, app.state.auth, app.state.chat = svc, metrics, auth, engine
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    add_error_handlers(app)
    mount_page(app)
    mount_docs(app)
    app.include_router(build_router(svc, auth, metrics, engine.info))
    app.include_router(build_chat_router(engine, auth))
    return app


def _load(model_or_dir: Any) -> Any:
    if not isinstance(model_or_dir, (str, Path)):
        return model_or_dir
    from genrec.models.registry import load_model

    p = Path(model_or_dir)
    if not p.is_dir():
        raise GenrecError(f"model folder {p} does not exist; train one with "
                          "`genrec train --model NAME --out PATH` and pass --model-dir PATH")
    return load_model(p)


def _version() -> str:
    from genrec import __version__

    return __version__

