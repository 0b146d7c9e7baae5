"""``/api/datasets``: the stored datasets with counts and accuracies, and their image files."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import FileResponse

from xfv.store.queries import dataset_summaries, get_dataset, get_image
from xfv.web.api.deps import SessionDep
from xfv.web.schemas import TEXT, DatasetOut
from xfv.web.services import served_path, thumbnail

router = APIRouter(prefix="/datasets", tags=["datasets"])
CACHE = {"Cache-Control": "public, max-age=86400"}


@router.get("", response_model=list[DatasetOut])
def list_datasets(session: SessionDep) -> list[DatasetOut]:
    return [DatasetOut(**asdict(summary)) for summary in dataset_summaries(session)]


@router.get("/{name}/images/{path:path}", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
def dataset_image(name: Annotated[str, Path(max_length=100, pattern=TEXT)],
                  path: Annotated[str, Path(max_length=500, pattern=TEXT)],
                  session: SessionDep,
                  size: int | None = Query(None, ge=16, le=512, description="thumbnail size; omit for the file")) -> Response:
    """An image registered in the dataset (never any other file), or its thumbnail."""
    dataset = get_dataset(session, name)
    file = served_path(dataset.root, get_image(session, dataset, path).path)
    if size is None:
        return FileResponse(file, headers=CACHE)
    return Response(thumbnail(file, size), media_type="image/jpeg", headers=CACHE)
