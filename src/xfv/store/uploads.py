"""Uploaded pairs of the web app in the database: the aligned crops as PNG, the verdict, the X-Maps; expiry.

The photos themselves are never stored, only the 112 x 112 crops the model saw (a few kB each).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from xfv.errors import NotFoundError
from xfv.store.maps import decode_map, encode_map
from xfv.store.models import TaskRecord, UploadRecord, UploadXMapRecord


def upload_task_key(upload_id: str) -> str:
    """The key of the task computing an upload's X-Maps."""
    return f"upload:{upload_id}"


def get_upload(session: Session, upload_id: str) -> UploadRecord:
    record = session.get(UploadRecord, upload_id)
    if record is None:
        raise NotFoundError(f"No uploaded pair {upload_id!r} (it may have expired; upload the pair again).")
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


def expire_uploads(session: Session, before: datetime, keep: int) -> int:
    """Delete uploads created before ``before`` and all but the newest ``keep``, with their maps and tasks,
    and finished tasks older than ``before``. Returns the number of uploads deleted."""
    newest = select(UploadRecord.id).order_by(UploadRecord.created_at.desc()).limit(keep)
    expired = list(session.scalars(select(UploadRecord.id).where(
        (UploadRecord.created_at < before) | UploadRecord.id.not_in(newest))))
    if expired:
        session.execute(delete(UploadXMapRecord).where(UploadXMapRecord.upload_id.in_(expired)))
        session.execute(delete(TaskRecord).where(TaskRecord.key.in_([upload_task_key(i) for i in expired])))
        session.execute(delete(UploadRecord).where(UploadRecord.id.in_(expired)))
    session.execute(delete(TaskRecord).where(TaskRecord.finished_at < before))
    return len(expired)
