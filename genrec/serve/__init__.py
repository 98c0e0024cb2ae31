"""`genrec serve`: an HTTP API, a database and a web page over one trained model.

FastAPI, uvicorn and SQLAlchemy are imported only inside this package (``pip install 'genrec[serve]'``).
Entry points: :func:`genrec.serve.app.create_app` (a model object or a saved model folder) and
:func:`genrec.serve.server.run` (uvicorn, one worker; token from ``$GENREC_TOKEN``, reads protected
too when ``$GENREC_PROTECT_READS=1``). Without a token, writes answer 403 unless
``$GENREC_OPEN_WRITES=1`` (``genrec serve --open-writes``, for local development).

Endpoints (OpenAPI at ``/docs`` and ``/openapi.json``):

- ``POST /recommend``: ``{"user": id}`` or ``{"history": [ids or titles]}``, ``k``, ``exclude_ids``,
  ``category``; items with titles and scores, GPT4Rec's queries and which items each found, notes.
- ``POST /events``: ``{"events": [{"user", "item", "time", "event_id"}]}`` (token); used by the next
  request. ``time`` is ISO 8601 or Unix seconds (never milliseconds); a retried ``event_id`` is stored once.
- ``POST /items``, ``PATCH /items/{id}``, ``DELETE /items/{id}`` (token); ``GET /items/{id}``.
- ``GET /users?limit=&cursor=`` (a page and ``next_cursor``), ``GET /users/{id}/history`` (404 for a
  user without events), ``GET /health``, ``GET /metrics``; the web page at ``/``.
- ``POST /chat``: a message (+ ``user`` or ``history``, + ``conversation_id`` to continue) -> items with
  reasons, the queries searched and the exact LLM prompt (:mod:`genrec.serve.chatting`);
  ``POST /chat/preview`` (the prompt only), ``GET /chat/{id}``, ``DELETE /chat/{id}``.

Errors always have the body ``{"detail": "...", "errors": [...]}``; 503 when the database is down.
Start-up (:mod:`genrec.serve.server`) reads ``GENREC_DB_URL`` and the slow-client limits from the
environment.
"""
