"""The service's domain errors. The service raises them; the routes map each to an HTTP status
(:data:`HTTP_STATUS`), so nothing below the routes knows about HTTP."""

from __future__ import annotations

from genrec.errors import GenrecError


class ServeError(GenrecError):
    """Base of the errors a request can end with (status 500 unless a subclass says otherwise)."""


class NotFound(ServeError):
    """An unknown (or deleted) item or user."""


class Conflict(ServeError):
    """A write clashes with what is stored: an id that exists, or a row another server changed
    since this one read it (optimistic concurrency: the write is refused, not merged)."""


class Rejected(ServeError):
    """Well-formed input the domain refuses: events for unknown items, a title the model cannot
    index, a request the model refuses."""


class Unavailable(ServeError):
    """The database cannot be reached or written (down, read-only, out of connections)."""


HTTP_STATUS: dict[type[ServeError], int] = {NotFound: 404, Conflict: 409, Rejected: 422, Unavailable: 503}


def status_of(exc: ServeError) -> int:
    """The HTTP status for ``exc`` (the nearest class in :data:`HTTP_STATUS`; 500 when none)."""
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
