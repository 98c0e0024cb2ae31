"""Who may call what: a bearer token for writes (and for reads with ``protect_reads``)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

log = logging.getLogger("genrec.serve")
MIN_TOKEN = 16  # characters; shorter tokens get a warning at start


@dataclass(frozen=True)
class Auth:
    """``token`` guards writes (and reads when ``protect_reads``). Without a token, writes answer
    403 unless ``open_writes`` (local development: anyone who can reach the service may write)."""

    token: str | None = None
    protect_reads: bool = False
    open_writes: bool = False

    def modes(self) -> dict:
        """What /health says about access: ``token``, ``open`` or ``disabled`` for writes and reads."""
        guarded = "token" if self.token is not None else ("open" if self.open_writes else "disabled")
        return {"writes": guarded, "reads": guarded if self.protect_reads else "open"}

    def check(self, creds: HTTPAuthorizationCredentials | None) -> None:
        if self.token is None:
            if self.open_writes:
                return
            raise HTTPException(403, "this service has no token configured, so writes (and protected reads) are "
                                     "disabled: set GENREC_TOKEN, or start it with --open-writes "
                                     "(GENREC_OPEN_WRITES=1) for local development")
        if creds is None or not secrets.compare_digest(creds.credentials.encode(), self.token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    def dependencies(self) -> tuple[list, list]:
        """``(read, write)`` route dependencies. An open read has none, so OpenAPI does not mark it
        as needing a token."""
        bearer = HTTPBearer(auto_error=False, description="The service's token ($GENREC_TOKEN).")

        def need_token(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
            self.check(creds)

        write = [Depends(need_token)]
        return (write if self.protect_reads else []), write

    def warnings(self, host: str) -> list[str]:
        """What is risky about this configuration, one sentence each (logged at start)."""
        out = []
        t = self.token
        if t is not None:
            if t != t.strip():
                out.append("GENREC_TOKEN starts or ends with whitespace: clients that trim it will get 401")
            if len(t) < MIN_TOKEN:
                out.append(f"GENREC_TOKEN is short ({len(t)} characters; use at least {MIN_TOKEN}, e.g. "
                           "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
        if t is None and not self.open_writes:
            out.append("no GENREC_TOKEN: write endpoints answer 403 (set GENREC_TOKEN, or --open-writes for "
                       "local development)")
        elif t is None and host not in ("127.0.0.1", "localhost", "::1"):
            out.append(f"serving on {host} with open writes: anyone who can reach it can change the catalog "
                       "(set GENREC_TOKEN)")
        if not self.protect_reads:
            out.append("reads are open: anyone who can reach the service can read users' histories and "
                       "recommendations (--protect-reads or GENREC_PROTECT_READS=1 requires the token)")
        return out
