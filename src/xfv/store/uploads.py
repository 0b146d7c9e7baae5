"""Uploaded pairs of the web app in the database: the aligned crops as PNG, the verdict, the X-Maps; expiry.

The photos themselves are never stored, only the 112 x 112 crops the model saw (a few kB each). An upload is
readable until it expires (:func:`get_upload` with the cut-off) and is deleted with its maps and tasks, on
request or once expired (:func:`delete_uploads`, :func:`expire_uploads`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from xfv.errors import NotFoundError
from xfv.store.maps import decode_map, encode_map
from xfv.store.models import TaskRecord, UploadRecord, UploadXMapRecord


def upload_task_key(upload_id: str) -> str:
    """The key of the task computing an upload's X-Maps."""
    return f"upload:{upload_id}"


def upload_of_task(key: str) -> str | None:
    """The upload id of a task key made by :func:`upload_task_key`, else None."""
    kind, _, upload_id = key.partition(":")
    return upload_id if kind == "upload" else None


def get_upload(session: Session, upload_id: str, created_after: datetime | None = None) -> UploadRecord:
    """The upload, unless it does not exist or was created before ``created_after`` (expired, not yet swept)."""
    record = session.get(UploadRecord, upload_id)
    if record is None or (created_after is not None and upload_expired(record, created_after)):
        raise NotFoundError(f"No uploaded pair {upload_id!r} (it may have expired or been deleted; upload the pair "
                            "again).")
    return record


def save_upload_maps(session: Session, upload_id: str, maps: dict[tuple[int, int, int], object]) -> None:
    """Store the X-Maps ``{(method, image, scale): map}`` of an upload (scale 0: the final map, else that patch
    size's), replacing any stored before."""
    session.execute(delete(UploadXMapRecord).where(UploadXMapRecord.upload_id == upload_id))
    session.add_all(UploadXMapRecord(upload_id=upload_id, method=method, image=image, scale=scale,
                                     data=encode_map(xmap)) for (method, image, scale), xmap in maps.items())


def upload_map(session: Session, upload_id: str, method: int, image: int, scale: int = 0):
    """One stored X-Map of an upload, or None while its task has not finished (or for a scale not stored)."""
    data = session.scalar(select(UploadXMapRecord.data).where(
        UploadXMapRecord.upload_id == upload_id, UploadXMapRecord.method == method, UploadXMapRecord.image == image,
        UploadXMapRecord.scale == scale))
    return None if data is None else decode_map(data)


def delete_uploads(session: Session, upload_ids: list[str]) -> list[str]:
    """Delete uploads with their maps and tasks; returns the ids of the tasks deleted."""
    if not upload_ids:
        return []
    keys = [upload_task_key(i) for i in upload_ids]
    tasks = list(session.scalars(select(TaskRecord.id).where(TaskRecord.key.in_(keys))))
    session.execute(delete(UploadXMapRecord).where(UploadXMapRecord.upload_id.in_(upload_ids)))
    session.execute(delete(TaskRecord).where(TaskRecord.key.in_(keys)))
    session.execute(delete(UploadRecord).where(UploadRecord.id.in_(upload_ids)))
    return tasks


def expire_uploads(session: Session, before: datetime, keep: int) -> tuple[list[str], list[str]]:
    """Delete uploads created before ``before`` and all but the newest ``keep`` (:func:`delete_uploads`), and
    finished tasks older than ``before``. Returns the ids of the uploads and of the tasks deleted."""
    newest = select(UploadRecord.id).order_by(UploadRecord.created_at.desc()).limit(keep)
    expired = list(session.scalars(select(UploadRecord.id).where(
        (UploadRecord.created_at < before) | UploadRecord.id.not_in(newest))))
    tasks = delete_uploads(session, expired)
    old = list(session.scalars(select(TaskRecord.id).where(TaskRecord.finished_at < before)))
    session.execute(delete(TaskRecord).where(TaskRecord.id.in_(old)))
    return expired, tasks + old


def upload_expired(record: UploadRecord, created_after: datetime) -> bool:
    """Whether the upload was created before ``created_after`` (SQLite keeps no zone: its times are UTC)."""
    created = record.created_at if record.created_at.tzinfo is not None else record.created_at.replace(tzinfo=UTC)
    return created < created_after
