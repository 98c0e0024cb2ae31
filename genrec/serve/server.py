"""Start-up: configuration from arguments and the environment, warnings, and uvicorn."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("genrec.serve")


def run(model_dir: str | Path, db_url: str = "sqlite:///genrec.db", host: str = "127.0.0.1", port: int = 8000,
        token: str | None = None, protect_reads: bool | None = None, open_writes: bool | None = None,
        log_level: str = "info") -> None:
    """Load the model and serve it with uvicorn (one worker). Token defaults to ``$GENREC_TOKEN``;
    ``protect_reads`` and ``open_writes`` to ``$GENREC_PROTECT_READS`` and ``$GENREC_OPEN_WRITES``.

    Raises :class:`GenrecError` (the CLI exits non-zero) when the model folder or database cannot be used.
    """
    import uvicorn

    from genrec.serve.app import create_app

    token = token or os.environ.get("GENREC_TOKEN") or None
    if protect_reads is None:
        protect_reads = env_flag("GENREC_PROTECT_READS")
    if open_writes is None:
        open_writes = env_flag("GENREC_OPEN_WRITES")
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO))
    app = create_app(model_dir, db_url, token=token, protect_reads=protect_reads, open_writes=open_writes)
    for w in app.state.auth.warnings(host):
        log.warning(w)
    uvicorn.run(app, host=host, port=port, log_level=log_level, workers=1)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
