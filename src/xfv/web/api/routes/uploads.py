"""Uploaded pairs: ``POST /api/verify`` (verdict only) and ``POST /api/explain`` (verdict, faces, live X-Maps);
an explained pair's faces, maps and report until it expires, and ``DELETE /api/uploads/{id}``.

The photos are read here and handed to the services' bounded upload pool: the event loop never detects a face,
and a full pool answers 503 with ``Retry-After`` at once. Every answer about an upload is sent with
``Cache-Control: no-store`` (:mod:`xfv.web.headers`).
"""

from __future__ import annotations

import io
from datetime import UTC, timedelta
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status

from xfv.confidence import confidence_reading
from xfv.errors import NotFoundError, TooLargeError
from xfv.store.models import UploadRecord
from xfv.store.uploads import upload_map, upload_task_key
from xfv.web.api.deps import PNG, UPLOAD_ERRORS, HexId, ImageIndex, Method, Scale, ServicesDep, SessionDep
from xfv.web.partials import map_states
from xfv.web.schemas import TEXT, ExplainOut, ReportOut, TaskOut, VerifyOut
from xfv.web.services import Services, png_face, render_map
from xfv.xmaps import DESCRIPTIONS, METHODS
from xfv.xmaps.explainer import FINAL

router = APIRouter(tags=["uploads"])
ModelField = Annotated[str | None, Form(max_length=100, pattern=TEXT, description="model name; default: the configured one")]


async def _read(upload: UploadFile, field_name: str, services: Services) -> bytes:
    limit = services.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(f"{field_name}: the file is larger than the limit of {limit} bytes.")
    return data


@router.post("/verify", response_model=VerifyOut, responses=UPLOAD_ERRORS)
async def verify(image1: Annotated[UploadFile, File()], image2: Annotated[UploadFile, File()],
                 services: ServicesDep, model: ModelField = None) -> VerifyOut:
    """Detect, align and compare the faces of two photos: distance, threshold, prediction, C-Score."""
    data1, data2 = await _read(image1, "image1", services), await _read(image2, "image2", services)
    pair = await services.uploads.run(services.prepare, data1, data2, model)
    return VerifyOut(**pair.verdict.to_dict(), faces_found=pair.faces["found"], notes=pair.faces["notes"])


def _explain_out(upload: UploadRecord, services: Services) -> ExplainOut:
    task = services.tasks.get(upload.task_id) if upload.task_id else None
    if task is None:
        raise NotFoundError(f"The X-Map task of upload {upload.id!r} has expired; upload the pair again.")
    created = upload.created_at if upload.created_at.tzinfo else upload.created_at.replace(tzinfo=UTC)
    faces = upload.faces or {}
    stages, eta = services.partials.running(upload_task_key(upload.id), task)
    if task.state == "done":
        stages = dict.fromkeys(METHODS, FINAL)
    return ExplainOut(
        id=upload.id, model=upload.model, distance=upload.distance, threshold=upload.threshold,
        prediction=upload.prediction, confidence=upload.confidence, calibration=upload.calibration,
        engine=upload.engine or "", faces_found=faces.get("found"), notes=faces.get("notes", []),
        cscore=upload.cscore, quality1=upload.quality1, quality2=upload.quality2, quality_note=upload.quality_note,
        reading=None if upload.confidence is None else confidence_reading(upload.confidence),
        faces=[f"/api/uploads/{upload.id}/faces/{i}.png" for i in (1, 2)], task=TaskOut.of(task),
        xmaps={f"{m}-{i}": f"/api/uploads/{upload.id}/xmaps/{m}/{i}.png" for m in METHODS for i in (1, 2)},
        map_states=map_states(stages),  # type: ignore[arg-type]
        eta_seconds=None if eta is None else round(eta, 1), cancel=f"/api/uploads/{upload.id}/task",
        expires_at=created + timedelta(hours=services.settings.upload_ttl_hours),
    )


@router.post("/explain", response_model=ExplainOut, status_code=status.HTTP_202_ACCEPTED, responses=UPLOAD_ERRORS)
async def explain(image1: Annotated[UploadFile, File()], image2: Annotated[UploadFile, File()],
                  services: ServicesDep, model: ModelField = None) -> ExplainOut:
    """Verify two photos, keep their aligned faces and start their X-Maps (all methods); poll the task."""
    services.tasks.check_room()
    data1, data2 = await _read(image1, "image1", services), await _read(image2, "image2", services)
    upload = await services.uploads.run(services.explain_photos, data1, data2, model)
    return _explain_out(upload, services)


@router.get("/uploads/{upload_id}", response_model=ExplainOut)
def upload_state(upload_id: HexId, session: SessionDep, services: ServicesDep) -> ExplainOut:
    return _explain_out(services.upload(session, upload_id), services)


@router.delete("/uploads/{upload_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_upload(upload_id: HexId, services: ServicesDep) -> Response:
    """Delete the uploaded pair now: its aligned faces, verdict, X-Maps and task (a running task stops). Nothing
    derived from the photos remains (they were never stored, nor anything computed from them outside the
    database)."""
    services.delete_upload(upload_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/uploads/{upload_id}/task", response_model=ExplainOut)
def cancel_upload_task(upload_id: HexId, services: ServicesDep) -> ExplainOut:
    """Stop the upload's X-Map task before its next batch: it ends ``cancelled``, its partial maps are dropped and
    nothing of them is stored; the upload and its verdict stay (``POST /api/tasks/{id}/retry`` starts it again).
    A task that already ended is left as it is."""
    return _explain_out(services.cancel_upload_task(upload_id), services)


@router.get("/uploads/{upload_id}/faces/{image}.png", response_class=Response, responses=PNG)
def upload_face(upload_id: HexId, image: ImageIndex, session: SessionDep, services: ServicesDep) -> Response:
    """The aligned face crop that was compared (stored as PNG; the photo itself is not kept)."""
    upload = services.upload(session, upload_id)
    return Response(upload.face1 if image == 1 else upload.face2, media_type="image/png")


@router.get("/uploads/{upload_id}/xmaps/{method}/{image}.png", response_class=Response, responses=PNG)
def upload_xmap(upload_id: HexId, method: Method, image: ImageIndex, session: SessionDep, services: ServicesDep,
                kind: Literal["blend", "map"] = Query("blend", description="blend: over the face; map: colours only"),
                scale: Scale = 0) -> Response:
    """The map blended over the face (or alone): the final one once stored, else the latest partial version
    (``X-XMap-State: partial``, ``X-XMap-Stage``; never cached, as every answer about an upload)."""
    upload = services.upload(session, upload_id)
    face = png_face(upload.face1 if image == 1 else upload.face2)
    xmap, headers = _upload_map(session, services, upload_id, method, image, scale)
    return Response(render_map(face, xmap, kind), media_type="image/png", headers={
        **headers, **_attachment(f"xmap-{upload_id[:8]}-m{method}-{image}{_suffix(scale, kind)}.png")})


def _upload_map(session, services: Services, upload_id: str, method: int, image: int,
                scale: int = 0) -> tuple[np.ndarray, dict[str, str]]:
    """The stored map, else the latest partial one in memory, with headers that say which."""
    stored = upload_map(session, upload_id, method, image, scale)
    if (served := services.partials.version(upload_task_key(upload_id), method, image, scale, stored)) is not None:
        return served
    if scale and (method == 4 or upload_map(session, upload_id, method, image) is not None):
        raise NotFoundError(f"Upload {upload_id!r} has no map of scale {scale} for method {method} (method 4 has "
                            "only its final map; the patch sizes are 7, 14 and 28).")
    raise NotFoundError(f"The X-Maps of upload {upload_id!r} are not ready yet; poll its task.")


def _suffix(scale: int, kind: str = "blend") -> str:
    return (f"-s{scale}" if scale else "") + ("-map" if kind == "map" else "")


@router.get("/uploads/{upload_id}/xmaps/{method}/{image}.npy", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
def upload_xmap_array(upload_id: HexId, method: Method, image: ImageIndex, session: SessionDep,
                      services: ServicesDep, scale: Scale = 0) -> Response:
    """The normalised map as a NumPy ``.npy`` file (float32 112 x 112 in [-1, 1]); the latest partial version
    while the task runs, as the PNG route."""
    services.upload(session, upload_id)
    buffer = io.BytesIO()
    xmap, headers = _upload_map(session, services, upload_id, method, image, scale)
    np.save(buffer, xmap.astype(np.float32), allow_pickle=False)
    return Response(buffer.getvalue(), media_type="application/octet-stream", headers={
        **headers, **_attachment(f"xmap-{upload_id[:8]}-m{method}-{image}{_suffix(scale)}.npy")})


@router.get("/uploads/{upload_id}/report.json", response_model=ReportOut)
def upload_report(upload_id: HexId, session: SessionDep, services: ServicesDep) -> ReportOut:
    """The verdict, the calibration it was judged with, and the X-Maps with their files, as one JSON report."""
    state = _explain_out(services.upload(session, upload_id), services)
    files = {key: {"png": url, "npy": url.removesuffix(".png") + ".npy"} for key, url in state.xmaps.items()
             if upload_map(session, upload_id, *map(int, key.split("-"))) is not None}
    verdict = state.model_dump(include=set(VerifyOut.model_fields))
    return ReportOut(**verdict, id=upload_id, methods={m: DESCRIPTIONS.get(m, "") for m in METHODS},
                     faces=state.faces, xmaps=files)


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'inline; filename="{name}"'}
