"""The HTTP server of ``xfv serve``: Uvicorn, bounded against slow and numerous clients.

Uvicorn's own settings do most of it: ``timeout_keep_alive`` closes idle connections, ``limit_concurrency`` answers
503 (Uvicorn's plain-text one, with ``Connection: close``) to requests beyond ``max_connections`` open connections,
``h11_max_incomplete_event_size`` bounds a request's line and headers. Uvicorn has no deadline for the headers
themselves, so its h11 protocol gets one (:class:`HeaderDeadline`): from a connection's start, or from the end of
its previous answer, the next request's headers must have arrived within ``header_timeout`` s, else the
connection is closed. Request bodies have their deadlines in the app (:mod:`xfv.web.limits`).
"""

from __future__ import annotations

import asyncio
import copy
import socket

import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from xfv.web.core.config import Settings


class HeaderDeadline(H11Protocol):
    """Uvicorn's h11 protocol, closing a connection whose next request's headers take over ``header_timeout`` s."""

    header_timeout = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._serving():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._serving():  # no pipelined request already under way
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _serving(self) -> bool:
        """Whether a request's headers have arrived and its answer is not complete."""
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self._serving() and not self.transport.is_closing():
            self.transport.close()


def server_config(app, settings: Settings) -> uvicorn.Config:
    """Uvicorn's configuration for ``app`` under ``settings`` (timeouts, connection cap, header size); the app's
    own log lines (``xfv.*``: databases out of reach, failed tasks) go where Uvicorn's go."""
    protocol = type("HeaderDeadlineProtocol", (HeaderDeadline,), {"header_timeout": settings.header_timeout})
    logging_config = copy.deepcopy(LOGGING_CONFIG)
    logging_config["loggers"]["xfv"] = {"handlers": ["default"], "level": "INFO"}  # propagates: the root has none
    return uvicorn.Config(app, log_level="warning", log_config=logging_config, http=protocol,
                          timeout_keep_alive=settings.keep_alive_timeout, limit_concurrency=settings.max_connections,
                          h11_max_incomplete_event_size=settings.max_header_bytes)


def serve(app, listener: socket.socket, settings: Settings) -> None:
    """Serve ``app`` on an already bound ``listener`` until interrupted."""
    uvicorn.Server(server_config(app, settings)).run(sockets=[listener])
