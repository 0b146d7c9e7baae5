"""Bounded work of the web app: a thread pool with a queue cap, and background tasks kept in the database.

:class:`BoundedPool` runs CPU work (detection, embedding, X-Maps) off the event loop; when ``workers + queue``
jobs are already admitted, a new one is refused with :class:`~xfv.errors.BusyError` (503 with ``Retry-After``)
instead of waiting behind them. :class:`TaskRunner` runs keyed tasks in such a pool and records each task in
the ``tasks`` table, so that a task is still listed after a restart and an unfinished one is queued again.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from xfv.errors import BusyError
from xfv.store.db import transaction
from xfv.store.models import TaskRecord, utcnow
from xfv.xmaps import Progress

State = Literal["queued", "running", "done", "error"]
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
    id: str
    key: str
    state: State = "queued"
    done: int = 0
    total: int = 0
    error: str | None = None
    result: dict = field(default_factory=dict)


class TaskRunner:
    """Runs the work named by a key (``work_for(key)``) in a :class:`BoundedPool`, one task per key at a time
    (a second request joins the first). Unfinished tasks live in memory with their progress; every state change
    is written to the ``tasks`` table, which answers for finished ones."""

    def __init__(self, factory: sessionmaker[Session], pool: BoundedPool, work_for: Callable[[str], Work]) -> None:
        self._factory, self.pool, self._work_for = factory, pool, work_for
        self._live: dict[str, Task] = {}
        self._by_key: dict[str, str] = {}
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
        with self._lock:
            task = self._live.get(task_id)
        if task is not None:
            return task
        with self._factory() as session:
            record = session.get(TaskRecord, task_id)
            return None if record is None else Task(record.id, record.key, record.state, record.done,  # type: ignore[arg-type]
                                                    record.total, record.error, record.result)

    def running(self, key: str) -> Task | None:
        """The unfinished task of ``key``, if any."""
        with self._lock:
            task_id = self._by_key.get(key)
            return self._live.get(task_id) if task_id else None

    def _run(self, task: Task) -> None:
        def progress(done: int, total: int) -> None:
            task.done, task.total = done, total

        task.state = "running"
        try:
            self._write(task)
            task.result = self._work_for(task.key)(progress)
            task.state = "done"
        except Exception as error:  # noqa: BLE001 - reported to the polling page, never lost in a thread
            task.error = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
            task.state = "error"
        finally:
            try:
                self._write(task)
            finally:
                with self._lock:
                    self._live.pop(task.id, None)
                    self._by_key.pop(task.key, None)

    def _write(self, task: Task) -> None:
        finished = utcnow() if task.state in ("done", "error") else None
        with transaction(self._factory) as session:
            session.execute(update(TaskRecord).where(TaskRecord.id == task.id).values(
                state=task.state, done=task.done, total=task.total, error=task.error, result=task.result,
                finished_at=finished))

    def shutdown(self) -> None:
        self.pool.shutdown()
