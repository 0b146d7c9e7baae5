"""Uploaded pairs: ``POST /api/verify`` (verdict only) and ``POST /api/explain`` (verdict, faces, live X-Maps)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile, status

from xfv.errors import NotFoundError, TooLargeError
from xfv.web.api.deps import ServicesDep, SessionDep
from xfv.web.schemas import ExplainOut, TaskOut, VerifyOut
from xfv.web.services import (
    Services,
    UploadedPair,
    align_upload,
    check_upload,
    embedding_model,
    png_bytes,
    render_map,
)
from xfv.xmaps import METHODS

router = APIRouter(tags=["uploads"])
ImageIndex = Annotated[int, Path(ge=1, le=2)]
PNG = {200: {"content": {"image/png": {}}}}
ModelField = Annotated[str | None, Form(max_length=100, description="model name; default: the configured one")]


def _read(upload: UploadFile, field_name: str, services: Services) -> bytes:
    limit = services.settings.max_upload_bytes
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(f"{field_name}: the file is larger than the limit of {limit} bytes.")
    return data


def _prepare(image1: UploadFile, image2: UploadFile, model_name: str | None, session, services: Services):
    model = embedding_model(model_name or services.settings.upload_model)
    faces = []
    for field_name, upload in (("image1", image1), ("image2", image2)):
        photo = check_upload(_read(upload, field_name, services), field_name, services.settings)
        faces.append(align_upload(photo, field_name, model))
    verdict = services.verify(session, model, faces[0], faces[1])
    return model, faces, verdict


@router.post("/verify", response_model=VerifyOut, responses={413: {"description": "too large"},
                                                             422: {"description": "not an image, or no face"}})
def verify(image1: Annotated[UploadFile, File()], image2: Annotated[UploadFile, File()], session: SessionDep,
           services: ServicesDep, model: ModelField = None) -> VerifyOut:
    """Detect, align and compare the faces of two photos: distance, threshold, prediction, C-Score."""
    chosen, _, verdict = _prepare(image1, image2, model, session, services)
    return VerifyOut(model=chosen.name, **vars(verdict))


def _explain_out(upload: UploadedPair, services: Services) -> ExplainOut:
    task = services.tasks.get(upload.task_id) if upload.task_id else None
    if task is None:
        raise NotFoundError(f"The X-Map task of upload {upload.id!r} has expired; upload the pair again.")
    return ExplainOut(
        id=upload.id, model=upload.model, **vars(upload.verdict),
        faces=[f"/api/uploads/{upload.id}/faces/{i}.png" for i in (1, 2)], task=TaskOut.of(task),
        xmaps={f"{m}-{i}": f"/api/uploads/{upload.id}/xmaps/{m}/{i}.png" for m in METHODS for i in (1, 2)},
    )


@router.post("/explain", response_model=ExplainOut, status_code=status.HTTP_202_ACCEPTED)
def explain(image1: Annotated[UploadFile, File()], image2: Annotated[UploadFile, File()], session: SessionDep,
            services: ServicesDep, model: ModelField = None) -> ExplainOut:
    """Verify two photos and start their X-Maps (all methods) in the background; poll the task."""
    chosen, faces, verdict = _prepare(image1, image2, model, session, services)
    upload = services.add_upload(chosen, faces[0], faces[1], verdict)
    services.explain_upload(upload)
    return _explain_out(upload, services)


@router.get("/uploads/{upload_id}", response_model=ExplainOut)
def upload_state(upload_id: str, services: ServicesDep) -> ExplainOut:
    return _explain_out(services.upload(upload_id), services)


@router.get("/uploads/{upload_id}/faces/{image}.png", response_class=Response, responses=PNG)
def upload_face(upload_id: str, image: ImageIndex, services: ServicesDep) -> Response:
    upload = services.upload(upload_id)
    return Response(png_bytes(upload.face1 if image == 1 else upload.face2), media_type="image/png")


@router.get("/uploads/{upload_id}/xmaps/{method}/{image}.png", response_class=Response, responses=PNG)
def upload_xmap(upload_id: str, method: Annotated[int, Path(ge=1, le=3)], image: ImageIndex, services: ServicesDep,
                kind: Literal["blend", "map"] = Query("blend")) -> Response:
    upload = services.upload(upload_id)
    xmap = upload.maps.get((method, image))
    if xmap is None:
        raise NotFoundError(f"The X-Maps of upload {upload_id!r} are not ready yet; poll its task.")
    face = upload.face1 if image == 1 else upload.face2
    return Response(render_map(face, xmap, kind), media_type="image/png")
