"""``/api/tasks/{id}``: progress of background work (X-Maps computed on demand)."""

from __future__ import annotations

from fastapi import APIRouter

from xfv.store.queries import NotFoundError
from xfv.web.api.deps import ServicesDep
from xfv.web.schemas import TaskOut
from xfv.web.tasks import Task

router = APIRouter(prefix="/tasks", tags=["tasks"])


def task_out(task: Task) -> TaskOut:
    return TaskOut(id=task.id, state=task.state, done=task.done, total=task.total, error=task.error,
                   result=task.result)


@router.get("/{task_id}", response_model=TaskOut)
def get_task(task_id: str, services: ServicesDep) -> TaskOut:
    task = services.tasks.get(task_id)
    if task is None:
        raise NotFoundError(f"No task {task_id!r}.")
    return task_out(task)
