"""``/api/tasks/{id}``: progress of background work (X-Maps computed on demand), and trying it again."""

from __future__ import annotations

from fastapi import APIRouter, status

from xfv.web.api.deps import BUSY, HexId, ServicesDep
from xfv.web.schemas import TaskOut

router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.get("/{task_id}", response_model=TaskOut)
def get_task(task_id: HexId, services: ServicesDep) -> TaskOut:
    """A task's state: ``queued``, ``running`` (with ``done`` / ``total``), ``done`` or ``error`` with the reason
    (also when its work stopped making progress)."""
    return TaskOut.of(services.task(task_id))


@router.post("/{task_id}/retry", response_model=TaskOut, status_code=status.HTTP_202_ACCEPTED, responses=BUSY)
def retry_task(task_id: HexId, services: ServicesDep) -> TaskOut:
    """Start a task that ended in ``error`` (or stalled) again, as a new task; an unfinished one is returned as it
    is, a finished one is started again."""
    return TaskOut.of(services.retry_task(task_id))
