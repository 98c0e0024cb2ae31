"""Slow clients: deadlines for reading a request's headers and its body, on top of uvicorn's h11
protocol.

uvicorn (0.55) has a keep-alive timeout (idle time between requests) and ``limit_concurrency``
(503 beyond N connections or tasks) but no deadline for a request that is being sent: a client
that sends half its headers, or half its body, and stops, holds its connection forever, so a few
hundred of them exhaust the server. Written here because neither uvicorn nor h11 has the option;
the subclass only starts and cancels a timer around h11's own parsing states.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("genrec.serve")


@dataclass(frozen=True)
class Limits:
    """Connection limits of ``genrec serve`` (all configurable on the command line)."""

    header_timeout: float = 10.0  # seconds from a request's first byte to the end of its headers
    body_timeout: float = 30.0  # seconds from the end of the headers to the end of the body
    keep_alive: int = 5  # seconds an idle connection is kept between requests (uvicorn)
    max_connections: int = 1000  # uvicorn's limit_concurrency: beyond it, new requests get 503


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers (or body) do not arrive
    within the deadlines of :class:`Limits` (given as ``limits`` on the class by :func:`protocol`)."""

    limits: Limits = Limits()

    def __init__(self, *args, **kw) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kw)
        self._deadline: asyncio.TimerHandle | None = None
        self._phase: str | None = None  # "headers" | "body" | None (nothing being received)

    def connection_made(self, transport) -> None:  # noqa: ANN001
        super().connection_made(transport)
        self._arm("headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def _follow(self) -> None:
        """Set the deadline from h11's view of the client: sending headers, a body, or done."""
        if self.transport is None or self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body")
        elif state is h11.IDLE and self.conn.trailing_data[0]:
            if self._phase != "headers":
                self._arm("headers")  # part of the next request's head has arrived
        elif state is not h11.IDLE or self._phase == "body":
            self._disarm()

    def _arm(self, phase: str) -> None:
        self._disarm()
        self._phase = phase
        seconds = self.limits.header_timeout if phase == "headers" else self.limits.body_timeout
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline, self._phase = None, None

    def _expire(self) -> None:
        phase, self._deadline, self._phase = self._phase, None, None
        if self.transport is not None and not self.transport.is_closing():
            log.info("closing a connection from %s: request %s not received in time", self.client, phase)
            self.transport.close()


def protocol(limits: Limits) -> type[GuardedH11Protocol]:
    """The protocol class for uvicorn's ``http=`` with these limits."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})


def uvicorn_config(app, host: str, port: int, limits: Limits, log_level: str = "info"):  # noqa: ANN001, ANN201
    """A ``uvicorn.Config`` for ``app`` with the guarded protocol and ``limits``."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level=log_level, workers=1, http=protocol(limits),
                          timeout_keep_alive=limits.keep_alive, limit_concurrency=limits.max_connections,
                          lifespan="on")
