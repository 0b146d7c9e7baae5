"""``/api/models``: registered models and whether the database holds their results."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from xfv.models import list_models
from xfv.store.models import ModelRecord
from xfv.web.api.deps import SessionDep
from xfv.web.schemas import ModelOut

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=list[ModelOut])
def models(session: SessionDep) -> list[ModelOut]:
    stored = {record.name: record for record in session.scalars(select(ModelRecord))}
    names = sorted(set(list_models()) | set(stored))
    return [ModelOut(name=name, description=list_models().get(name, ""), in_database=name in stored,
                     fingerprint=stored[name].fingerprint if name in stored else None) for name in names]
