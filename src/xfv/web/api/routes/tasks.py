"""``/api/tasks/{id}``: progress of background work (X-Maps computed on demand)."""

from __future__ import annotations

from fastapi import APIRouter

from xfv.errors import NotFoundError
from xfv.web.api.deps import HexId, ServicesDep
from xfv.web.schemas import TaskOut

router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.get("/{task_id}", response_model=TaskOut)
def get_task(task_id: HexId, services: ServicesDep) -> TaskOut:
    task = services.tasks.get(task_id)
    if task is None:
        raise NotFoundError(f"No task {task_id!r}.")
    return TaskOut.of(task)
