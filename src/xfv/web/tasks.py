"""Background work with progress that pages poll: X-Maps computed on demand, in a small thread pool."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from xfv.xmaps import Progress

State = Literal["running", "done", "error"]


@dataclass
class Task:
    id: str
    key: str
    state: State = "running"
    done: int = 0
    total: int = 0
    error: str | None = None
    result: dict = field(default_factory=dict)


class TaskRunner:
    """Runs ``work(progress)`` in a thread; one task per ``key`` at a time (a second request joins it)."""

    def __init__(self, workers: int = 2, kept: int = 200) -> None:
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="xfv-task")
        self._tasks: OrderedDict[str, Task] = OrderedDict()
        self._running: dict[str, str] = {}
        self._lock = threading.Lock()
        self._kept = kept

    def submit(self, key: str, work: Callable[[Progress], dict]) -> Task:
        with self._lock:
            if key in self._running:
                return self._tasks[self._running[key]]
            task = Task(id=uuid.uuid4().hex, key=key)
            self._tasks[task.id] = task
            self._running[key] = task.id
            while len(self._tasks) > self._kept:
                self._tasks.popitem(last=False)
        self._executor.submit(self._run, task, work)
        return task

    def get(self, task_id: str) -> Task | None:
        with self._lock:
            return self._tasks.get(task_id)

    def running(self, key: str) -> Task | None:
        with self._lock:
            task_id = self._running.get(key)
            return self._tasks.get(task_id) if task_id else None

    def _run(self, task: Task, work: Callable[[Progress], dict]) -> None:
        def progress(done: int, total: int) -> None:
            task.done, task.total = done, total

        try:
            task.result = work(progress)
            task.state = "done"
        except Exception as error:  # noqa: BLE001 - reported to the polling page, never lost in a thread
            task.error = f"{type(error).__name__}: {error}"
            task.state = "error"
        finally:
            with self._lock:
                self._running.pop(task.key, None)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
