"""Bounded work of the web app: a thread pool with a queue cap, and background tasks kept in the database.

:class:`BoundedPool` runs CPU work (detection, embedding, X-Maps) off the event loop; when ``workers + queue``
jobs are already admitted, a new one is refused with :class:`~xfv.errors.BusyError` (503 with ``Retry-After``)
instead of waiting behind them. :class:`TaskRunner` runs keyed tasks in such a pool and records each task in
the ``tasks`` table, so that a task is still listed after a restart and an unfinished one is queued again.
Every task ends: its work's failure, or a failed write of its end, makes it ``error`` with the reason (logged);
one that makes no progress for a while is reported as failed; a task can be cancelled between two batches of
its work (``cancelled``), and tried again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from xfv.errors import BusyError, XfvError
from xfv.store.db import TRANSIENT_ERRORS, transaction, write_with_retry
from xfv.store.models import TaskRecord, utcnow
from xfv.xmaps import Progress

log = logging.getLogger(__name__)

State = Literal["queued", "running", "done", "error", "cancelled"]
Work = Callable[[Progress], dict]


class BoundedPool:
    """``workers`` threads; at most ``workers + queue`` jobs admitted at once, beyond that ``BusyError``."""

    def __init__(self, name: str, workers: int, queue: int, retry_after: int) -> None:
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=f"xfv-{name}")
        self.name, self.limit, self.retry_after = name, workers + queue, retry_after
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        with self._lock:
            return self._admitted

    def check(self) -> None:
        """``BusyError`` if a job submitted now would be refused."""
        if self.admitted >= self.limit:
            raise BusyError(f"The server is busy ({self.limit} {self.name} jobs running or queued, the "
                            f"limit); retry in {self.retry_after} s.", self.retry_after)

    def submit(self, function: Callable, *args, force: bool = False) -> Future:
        """Run ``function(*args)`` in a thread; ``force`` admits it even when the pool is full."""
        with self._lock:
            if self._admitted >= self.limit and not force:
                raise BusyError(f"The server is busy ({self._admitted} {self.name} jobs running or queued, the "
                                f"limit is {self.limit}); retry in {self.retry_after} s.", self.retry_after)
            self._admitted += 1
        try:
            future = self._executor.submit(function, *args)
        except RuntimeError:  # shut down
            self._release()
            raise BusyError("The server is shutting down; retry later.", self.retry_after) from None
        future.add_done_callback(self._release)
        return future

    async def run(self, function: Callable, *args):
        """``function(*args)`` in the pool, awaited without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(function, *args))

    def _release(self, _future: Future | None = None) -> None:
        with self._lock:
            self._admitted -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class Task:
    """A task's public state (``state``, ``done`` / ``total``, ``error``, ``result``) and, while it runs, when it
    last made progress (``updated``, monotonic seconds) and whether it was asked to stop (``cancelled``)."""

    id: str
    key: str
    state: State = "queued"
    done: int = 0
    total: int = 0
    error: str | None = None
    result: dict = field(default_factory=dict)
    updated: float = field(default_factory=time.monotonic, repr=False, compare=False)
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    ended: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)


class TaskCancelled(XfvError):
    """Raised between two batches of a task's work once the task is cancelled."""


def describe(error: Exception) -> str:
    """What went wrong, for the page: xfv's own message; the database's first line and a word on what to do."""
    if isinstance(error, ValueError):
        return str(error)
    if isinstance(error, TRANSIENT_ERRORS):
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return f"The database was unavailable ({type(error).__name__}: {reason}); try again later."
    return f"{type(error).__name__}: {error}"


FINISHED_KEPT = 1024  # finished tasks answered from memory (authoritative over the database, which may lag)


class TaskRunner:
    """Runs the work named by a key (``work_for(key)``) in a :class:`BoundedPool`, one task per key at a time
    (a second request joins the first). Every state change is written to the ``tasks`` table; the state in memory
    (unfinished tasks and the last :data:`FINISHED_KEPT` finished ones) is authoritative, so that a task whose end
    could not be written (the database down, a full disk) still reads as ended here.

    The work gets a ``progress(done, total)`` callback to call between batches: it records the progress and
    raises :class:`TaskCancelled` once the task is cancelled (a place to publish partial results too). A task
    running without progress for ``stall_seconds`` reads as ``error``; :meth:`retry` starts it again. The end of
    a task is written with retries for ``write_deadline`` seconds; then ``on_end(task)`` is called (e.g. to drop
    what the task published in memory).
    """

    def __init__(self, factory: sessionmaker[Session], pool: BoundedPool, work_for: Callable[[str], Work], *,
                 stall_seconds: float = 120.0, write_deadline: float = 8.0,
                 on_end: Callable[[Task], None] | None = None) -> None:
        self._factory, self.pool, self._work_for, self._on_end = factory, pool, work_for, on_end
        self.stall_seconds, self.write_deadline = stall_seconds, write_deadline
        self._live: dict[str, Task] = {}
        self._by_key: dict[str, str] = {}
        self._finished: OrderedDict[str, Task] = OrderedDict()
        self._lock = threading.Lock()

    def submit(self, key: str) -> Task:
        """Queue the work of ``key`` (or return the unfinished task for it); ``BusyError`` when the pool is full."""
        with self._lock:
            if key in self._by_key:
                return self._live[self._by_key[key]]
            task = Task(id=uuid.uuid4().hex, key=key)
            with transaction(self._factory) as session:
                session.add(TaskRecord(id=task.id, key=key, state=task.state, done=0, total=0, result={}))
            try:
                self.pool.submit(self._run, task)
            except BusyError:
                with transaction(self._factory) as session:
                    session.execute(delete(TaskRecord).where(TaskRecord.id == task.id))
                raise
            self._live[task.id], self._by_key[key] = task, task.id
        return task

    def check_room(self) -> None:
        """``BusyError`` if a new task would be refused now (checked before costly work that leads to one)."""
        self.pool.check()

    def resume(self) -> int:
        """Queue again the tasks a previous run left queued or running (at start-up); returns their number."""
        with self._factory() as session:
            records = session.scalars(select(TaskRecord).where(TaskRecord.state.in_(("queued", "running")))
                                      .order_by(TaskRecord.created_at)).all()
        for record in records:
            task = Task(id=record.id, key=record.key)
            with self._lock:
                self._live[task.id], self._by_key[task.key] = task, task.id
            self._write(task)
            self.pool.submit(self._run, task, force=True)
        return len(records)

    def get(self, task_id: str) -> Task | None:
        """The task as it stands (a stalled one as ``error``), from memory, else from the database."""
        with self._lock:
            task = self._live.get(task_id) or self._finished.get(task_id)
        if task is not None:
            return self._as_seen(task)
        with self._factory() as session:
            record = session.get(TaskRecord, task_id)
            return None if record is None else Task(record.id, record.key, record.state, record.done,  # type: ignore[arg-type]
                                                    record.total, record.error, record.result)

    def holds(self, task_id: str) -> bool:
        """Whether the task is in memory (unfinished, or among the last finished ones)."""
        with self._lock:
            return task_id in self._live or task_id in self._finished

    def running(self, key: str) -> Task | None:
        """The unfinished task of ``key``, if any (a stalled one as ``error``)."""
        with self._lock:
            task_id = self._by_key.get(key)
            task = self._live.get(task_id) if task_id else None
        return None if task is None else self._as_seen(task)

    def retry(self, task_id: str) -> Task | None:
        """A new task for the work of an ended or stalled one (None if unknown); an unfinished task as it is."""
        task = self.get(task_id)
        if task is None:
            return None
        if task.state in ("queued", "running"):
            return task
        if task_id in self._live:  # stalled: let it go, start afresh
            self.cancel(task.key)
        return self.submit(task.key)

    def cancel(self, key: str) -> None:
        """Ask the unfinished task of ``key`` to stop at its next batch, and forget it here (its record stays)."""
        with self._lock:
            task_id = self._by_key.pop(key, None)
            task = self._live.pop(task_id, None) if task_id else None
        if task is not None:
            task.cancelled.set()

    def stop(self, task_id: str, wait: float = 10.0) -> Task | None:
        """Cancel an unfinished task: it stops before its next batch and ends ``cancelled`` (kept, to be read and
        tried again); waits up to ``wait`` s for that. None if the task is not running here."""
        with self._lock:
            task = self._live.get(task_id)
        if task is None:
            return None
        task.cancelled.set()
        task.ended.wait(wait)
        return self._as_seen(task)

    def forget(self, task_ids: list[str]) -> None:
        """Drop finished tasks from memory (their records are deleted elsewhere, e.g. with an upload)."""
        with self._lock:
            for task_id in task_ids:
                self._finished.pop(task_id, None)

    def _as_seen(self, task: Task) -> Task:
        idle = time.monotonic() - task.updated
        if task.state != "running" or idle <= self.stall_seconds:
            return task
        return dataclasses.replace(task, state="error", error=f"The task made no progress for {idle:.0f} s "
                                                              "(a hung database or model?); retry it.")

    def _run(self, task: Task) -> None:
        def progress(done: int, total: int) -> None:
            if task.cancelled.is_set():
                raise TaskCancelled(f"Task {task.id} was cancelled.")
            task.done, task.total, task.updated = done, total, time.monotonic()

        task.state, task.updated = "running", time.monotonic()
        try:
            if task.cancelled.is_set():
                raise TaskCancelled(f"Task {task.id} was cancelled.")
            self._write(task)
            task.result = self._work_for(task.key)(progress)
            task.state = "done"
        except TaskCancelled:
            task.state, task.error = "cancelled", "Cancelled before the end; nothing unfinished was stored."
        except Exception as error:  # reported to the polling page and logged, never lost in a thread
            task.error = describe(error)
            task.state = "error"
            log.warning("task %s (%s) failed: %s", task.id, task.key, task.error,
                        exc_info=None if isinstance(error, (XfvError, *TRANSIENT_ERRORS)) else error)
        finally:
            self._end(task)

    def _end(self, task: Task) -> None:
        """Write the task's end (retrying for ``write_deadline`` s), then keep it in memory as finished."""
        try:
            write_with_retry(self._factory, lambda session: self._update(session, task), deadline=self.write_deadline)
        except TRANSIENT_ERRORS as error:
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            log.error("task %s (%s) ended %s, but that could not be written to the database: %s", task.id, task.key,
                      task.state, reason)
        with self._lock:
            kept = self._live.pop(task.id, None) is not None  # not forgotten by cancel() (its upload deleted)
            if self._by_key.get(task.key) == task.id:
                del self._by_key[task.key]
            if kept:
                self._finished[task.id] = task
                while len(self._finished) > FINISHED_KEPT:
                    self._finished.popitem(last=False)
        task.ended.set()
        if self._on_end is not None:
            self._on_end(task)

    def _write(self, task: Task) -> None:
        with transaction(self._factory) as session:
            self._update(session, task)

    @staticmethod
    def _update(session: Session, task: Task) -> None:
        finished = utcnow() if task.state in ("done", "error", "cancelled") else None
        session.execute(update(TaskRecord).where(TaskRecord.id == task.id).values(
            state=task.state, done=task.done, total=task.total, error=task.error, result=task.result,
            finished_at=finished))

    def shutdown(self) -> None:
        self.pool.shutdown()
