"""Start-up: configuration from arguments and the environment, warnings, and uvicorn.

Environment (arguments win): ``GENREC_DB_URL`` (the database URL, so a password stays out of the
command line), ``GENREC_TOKEN``, ``GENREC_PROTECT_READS``, ``GENREC_OPEN_WRITES``, and the
slow-client limits ``GENREC_HEADER_TIMEOUT``, ``GENREC_BODY_TIMEOUT`` (seconds),
``GENREC_KEEP_ALIVE`` (seconds) and ``GENREC_MAX_CONNECTIONS``. ``GENREC_EDITS_IN_PLACE=1`` re-indexes
a title-search model in place on catalog edits, blocking recommendations meanwhile (for comparison).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from genrec.errors import GenrecError

log = logging.getLogger("genrec.serve")
DEFAULT_DB = "sqlite:///genrec.db"


def run(model_dir: str | Path, db_url: str | None = None, host: str = "127.0.0.1", port: int = 8000,
        token: str | None = None, protect_reads: bool | None = None, open_writes: bool | None = None,
        log_level: str = "info", limits=None, chat=None) -> None:  # noqa: ANN001
    """Load the model and serve it with uvicorn (one worker). Unset arguments come from the
    environment (see the module docstring); ``db_url`` defaults to ``sqlite:///genrec.db``.

    Raises :class:`GenrecError` (the CLI exits non-zero) when the model folder or database cannot
    be used, or an environment variable is malformed. ``chat``: a
    :class:`genrec.serve.chatting.ChatConfig` (its LLM, cache and what prompts may hold are logged).
    """
    import uvicorn

    from genrec.serve.app import create_app
    from genrec.serve.transport import uvicorn_config

    db_url = db_url or os.environ.get("GENREC_DB_URL") or DEFAULT_DB
    token = token or os.environ.get("GENREC_TOKEN") or None
    if protect_reads is None:
        protect_reads = env_flag("GENREC_PROTECT_READS")
    if open_writes is None:
        open_writes = env_flag("GENREC_OPEN_WRITES")
    limits = limits or limits_from_env()
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO))
    app = create_app(model_dir, db_url, token=token, protect_reads=protect_reads, open_writes=open_writes,
                     swap_edits=not env_flag("GENREC_EDITS_IN_PLACE"), chat=chat)
    for w in app.state.auth.warnings(host):
        log.warning(w)
    uvicorn.Server(uvicorn_config(app, host, port, limits, log_level)).run()


def limits_from_env():  # noqa: ANN201
    """:class:`genrec.serve.transport.Limits` with any ``GENREC_*`` overrides."""
    from genrec.serve.transport import Limits

    kw = {}
    for name, field, cast in [("GENREC_HEADER_TIMEOUT", "header_timeout", float),
                              ("GENREC_BODY_TIMEOUT", "body_timeout", float),
                              ("GENREC_KEEP_ALIVE", "keep_alive", int),
                              ("GENREC_MAX_CONNECTIONS", "max_connections", int)]:
        raw = os.environ.get(name)
        if raw:
            try:
                kw[field] = cast(raw)
            except ValueError:
                raise GenrecError(f"{name}={raw!r} is not a{'n integer' if cast is int else ' number'}") from None
            if kw[field] <= 0:
                raise GenrecError(f"{name}={raw!r} must be positive")
    return Limits(**kw)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
