"""Limits on what one request may cost the server: an ASGI middleware, :class:`RequestLimits`.

- **Admission.** At most ``workers`` requests are served at once (the database pool holds a connection for each,
  so none waits for one); the others wait in line, first come first served. A request that cannot be answered
  within ``timeout`` gets 503 with ``Retry-After``: at once when that is certain (the rounds of ``workers``
  requests ahead of it, and its own, would take longer even at the shortest of the last :data:`SERVICE_WINDOW`
  service times, once :data:`SERVICE_MIN` are known: a cold start's slow first requests refuse no one), else at
  its deadline.
  Uploads (``POST /api/verify``, ``/api/explain``) are not counted here: they have pools of their own
  (:mod:`xfv.web.tasks`), and must declare a ``Content-Length`` (411) within two photos' limit (413).
- **Deadline.** Every request is answered within ``timeout`` s of its arrival (of its body's end, for one with a
  body; ``upload_timeout`` for an upload, whose detection alone may take seconds on a large photo, in a pool whose
  queue is bounded): if the app has not started its answer by then (a hung database, say), the client gets 503 with
  ``Retry-After``. The work goes on in the background, since a thread blocked in a database driver cannot be
  interrupted, and its answer is dropped; its place stays taken until it ends.
- **Bodies.** A read of the request body waits at most ``body_timeout`` s for data, and the whole body must have
  arrived ``body_timeout`` s plus its declared length at ``body_min_rate`` bytes/s after the request: a stalled or
  trickling body gets 408 and the connection is closed.

A timeout for request headers and the cap on connections belong to the HTTP server (:mod:`xfv.web.server`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
UNLIMITED = ("/static/", "/favicon.ico")  # files served as they are: cheap, no database
UPLOADS = ("/api/verify", "/api/explain")
MULTIPART_OVERHEAD = 64 * 1024
SERVICE_WINDOW = 16  # service times the prediction of a wait looks at (the shortest of them)
SERVICE_MIN = 8  # service times needed before a wait is predicted at all

Answer = Callable[[Scope, int, str, dict[str, str]], Response]
"""Builds the response for an error (JSON for the API, a page for the browser): scope, status, detail, headers."""


@dataclass(frozen=True)
class Limits:
    """The settings of :class:`RequestLimits` (see the module docstring); ``upload_bytes`` is one photo's limit."""

    workers: int
    timeout: float
    upload_timeout: float
    body_timeout: float
    body_min_rate: int
    retry_after: int
    upload_bytes: int


class RequestLimits:
    """The ASGI middleware of the module docstring; ``answer`` renders its refusals."""

    def __init__(self, app: ASGIApp, limits: Limits, answer: Answer) -> None:
        self.app, self.limits, self._answer = app, limits, answer
        self.busy = 0  # requests being served
        self._line: deque[asyncio.Future] = deque()  # requests waiting for a place, oldest first
        self._service: deque[float] = deque(maxlen=SERVICE_WINDOW)  # the last service times, seconds

    @property
    def waiting(self) -> int:
        return sum(not future.done() for future in self._line)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNLIMITED):
            await self.app(scope, receive, send)
            return
        limits, loop = self.limits, asyncio.get_running_loop()
        exchange = _Exchange(scope, receive, send, limits, loop.time())
        upload = scope["method"] == "POST" and scope["path"] in UPLOADS
        if upload and (refusal := self._unbounded(exchange)) is not None:
            await exchange.answer(self._answer(scope, *refusal, {}))
            return
        admitted, timeout = not upload, limits.upload_timeout if upload else limits.timeout
        if admitted and not await self._admit(exchange.deadline(timeout) - loop.time()):
            await exchange.answer(self._busy_answer(scope, f"The server is busy ({self.busy} requests being served, "
                                                            f"{self.waiting} waiting)"))
            return
        started = loop.time()
        task = loop.create_task(self.app(scope, exchange.receive, exchange.send))
        task.add_done_callback(lambda done: self._finished(done, exchange, admitted, loop.time() - started))
        while True:
            if exchange.stalled:  # the app was told the client left: whatever it says is dropped
                await exchange.answer(self._answer(scope, 408, (
                    f"The request body did not arrive in time (no data for {limits.body_timeout:g} s, or slower than "
                    f"{limits.body_min_rate} bytes/s); send it again."), {"Connection": "close"}))
                return
            if exchange.started or task.done():
                break
            remaining = exchange.deadline(timeout) - loop.time()
            if remaining <= 0:
                await exchange.answer(self._busy_answer(scope, f"No answer within {timeout:g} s (the "
                                                                "database or the workers are busy or unavailable)"))
                return
            exchange.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(exchange.changed.wait(), remaining)
        await task

    def _busy_answer(self, scope: Scope, reason: str) -> Response:
        retry = self.limits.retry_after
        return self._answer(scope, 503, f"{reason}; retry in {retry} s.", {"Retry-After": str(retry)})

    def _unbounded(self, exchange: _Exchange) -> tuple[int, str] | None:
        """411 or 413 for an upload without a declared length or with one over two photos' limit."""
        if exchange.length is None:
            return 411, "An upload must declare its Content-Length."
        if exchange.length > 2 * self.limits.upload_bytes + MULTIPART_OVERHEAD:
            return 413, (f"The upload ({exchange.length} bytes) is larger than the limit of "
                         f"{self.limits.upload_bytes} bytes per image.")
        return None

    async def _admit(self, within: float) -> bool:
        """Take a place now, or wait in line for one at most ``within`` s (not at all when the predicted wait is
        longer); False when refused."""
        if self.busy < self.limits.workers and not self.waiting:
            self.busy += 1
            return True
        if within <= 0 or (len(self._service) >= SERVICE_MIN and  # the rounds ahead of it, then its own
                           (self.waiting // self.limits.workers + 2) * min(self._service) > within):
            return False
        place = asyncio.get_running_loop().create_future()
        self._line.append(place)
        try:
            await asyncio.wait_for(place, within)  # a place handed over at the last moment still counts
            return True
        except TimeoutError:
            return False
        finally:
            with contextlib.suppress(ValueError):
                self._line.remove(place)

    def _release(self) -> None:
        """Hand the place to the first one still waiting, else free it."""
        while self._line:
            place = self._line.popleft()
            if not place.done():
                place.set_result(None)
                return
        self.busy -= 1

    def _finished(self, task: asyncio.Task, exchange: _Exchange, admitted: bool, seconds: float) -> None:
        if admitted:
            self._service.append(seconds)
            self._release()
        exchange.changed.set()
        if exchange.answered and not task.cancelled() and task.exception() is not None:
            log.error("%s %s failed after its client was answered", exchange.scope["method"], exchange.scope["path"],
                      exc_info=task.exception())


class _Exchange:
    """One request under :class:`RequestLimits`: its body reads with their deadlines, whether the app has started
    its answer, and whether an answer was sent in its stead (then the app's messages are dropped)."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, limits: Limits, now: float) -> None:
        self.scope, self._receive, self._send, self._limits = scope, receive, send, limits
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"").decode("latin-1")
        self.length = int(length) if length.isdigit() and len(length) <= 18 else None
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        expected = self.length if self.length is not None else (2 * limits.upload_bytes if chunked else 0)
        self.arrived = now
        self.body_end = None if expected else now  # when the body was complete (at once without one)
        self.body_deadline = now + limits.body_timeout + expected / limits.body_min_rate
        self.started = self.answered = self.stalled = False
        self.changed = asyncio.Event()

    def deadline(self, timeout: float) -> float:
        """When the answer is due: ``timeout`` after the body's end (or the latest it may end)."""
        return (self.body_end if self.body_end is not None else self.body_deadline) + timeout

    async def receive(self) -> Message:
        if self.answered:
            return {"type": "http.disconnect"}
        if self.body_end is not None:
            return await self._receive()
        loop = asyncio.get_running_loop()
        budget = min(self._limits.body_timeout, self.body_deadline - loop.time())
        try:
            message = await asyncio.wait_for(self._receive(), max(0.0, budget))
        except TimeoutError:
            self.stalled = True
            self.changed.set()
            return {"type": "http.disconnect"}
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_end = loop.time()
            self.changed.set()
        return message

    async def send(self, message: Message) -> None:
        if self.answered or self.stalled:
            return
        if message["type"] == "http.response.start":
            self.started = True
            self.changed.set()
        await self._send(message)

    async def answer(self, response: Response) -> None:
        """Send ``response`` instead of the app's answer."""
        self.answered = True

        async def nothing() -> Message:
            return {"type": "http.disconnect"}

        await response(self.scope, nothing, self._send)
