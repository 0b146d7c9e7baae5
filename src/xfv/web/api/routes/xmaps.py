"""X-Maps of stored pairs: state, on-demand computation (a background task to poll), PNG images and arrays."""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from fastapi import APIRouter, Query, Response, status
from sqlalchemy.orm import Session

from xfv.errors import NotFoundError
from xfv.store.maps import decode_map
from xfv.store.models import Pair
from xfv.store.queries import get_model, get_pair, stored_scales, stored_xmaps
from xfv.web.api.deps import BUSY, PNG, ImageIndex, Method, ModelName, PairId, Scale, ServicesDep, SessionDep
from xfv.web.schemas import TaskOut, XMapStatus
from xfv.web.services import Services, png_bytes, render_map, stored_face, xmap_task_key

router = APIRouter(prefix="/pairs", tags=["xmaps"])


@router.get("/{pair_id}/xmaps/{model}", response_model=XMapStatus)
def get_xmaps(pair_id: PairId, model: ModelName, session: SessionDep, services: ServicesDep) -> XMapStatus:
    get_pair(session, pair_id)
    return services.xmap_status(session, pair_id, model)


@router.post("/{pair_id}/xmaps/{model}", response_model=XMapStatus, status_code=status.HTTP_202_ACCEPTED,
             responses=BUSY)
def compute_xmaps(pair_id: PairId, model: ModelName, session: SessionDep, services: ServicesDep) -> XMapStatus:
    """Start computing the pair's X-Maps (all methods) unless stored or running; poll ``/api/tasks/{id}``."""
    get_pair(session, pair_id)
    current = services.xmap_status(session, pair_id, model)
    if current.ready or current.task is not None:
        return current
    task = services.explain_stored_pair(pair_id, model)
    return current.model_copy(update={"task": TaskOut.of(task)})


def _stored_map(session: Session, services: Services, pair_id: int, model: str, method: int, image: int,
                scale: int) -> tuple[np.ndarray, dict[str, str]]:
    """The stored map, else the latest version the running task has (never cached), with headers that say which."""
    record = get_model(session, model)
    stored = stored_xmaps(session, pair_id, record, scale).get((method, image))
    served = services.partials.version(xmap_task_key(pair_id, model), method, image, scale,
                                       None if stored is None else decode_map(stored.data))
    if served is None:
        scales = stored_scales(session, pair_id, record)
        if scales and scale not in scales:
            raise NotFoundError(f"Pair {pair_id} has no stored X-Map of scale {scale} for model {model!r}; stored "
                                f"scales: {', '.join(map(str, scales))} (0: multi-scale, else the patch size).")
        raise NotFoundError(f"Pair {pair_id} has no stored X-Map for model {model!r}, method {method}, image {image}: "
                            f"POST /api/pairs/{pair_id}/xmaps/{model} computes it.")
    return served


@router.delete("/{pair_id}/xmaps/{model}/task", response_model=XMapStatus)
def cancel_xmaps(pair_id: PairId, model: ModelName, session: SessionDep, services: ServicesDep) -> XMapStatus:
    """Stop the task computing the pair's X-Maps before its next batch: it ends ``cancelled`` (``task`` in the
    answer), its partial maps are dropped and nothing of them is stored. Without a running task: the status as is."""
    get_pair(session, pair_id)
    stopped = services.cancel_pair_task(pair_id, model)
    current = services.xmap_status(session, pair_id, model)
    return current.model_copy(update={"task": TaskOut.of(stopped)}) if stopped is not None else current


def _face(session: Session, pair_id: PairId, model: ModelName, image: int):
    pair = session.get(Pair, pair_id)
    if pair is None:
        raise NotFoundError(f"No pair with id {pair_id}.")
    chosen = pair.image1 if image == 1 else pair.image2
    return stored_face(pair.dataset.root, chosen.path, get_model(session, model).name)


@router.get("/{pair_id}/xmaps/{model}/{method}/{image}.png", response_class=Response, responses=PNG)
def xmap_png(pair_id: PairId, model: ModelName, method: Method, image: ImageIndex, session: SessionDep,
             services: ServicesDep,
             kind: Literal["blend", "map"] = Query("blend", description="blend: over the face; map: colours only"),
             scale: Scale = 0) -> Response:
    """The map blended over the face (or alone): the stored one, else, while its task runs, the latest version
    (``X-XMap-State: partial``, ``X-XMap-Stage``, ``Cache-Control: no-store``)."""
    xmap, headers = _stored_map(session, services, pair_id, model, method, image, scale)
    face = _face(session, pair_id, model, image) if kind == "blend" else None
    return Response(render_map(face, xmap, kind), media_type="image/png", headers=headers)


@router.get("/{pair_id}/xmaps/{model}/{method}/{image}.npy", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
def xmap_array(pair_id: PairId, model: ModelName, method: Method, image: ImageIndex, session: SessionDep,
               services: ServicesDep, scale: Scale = 0) -> Response:
    """The normalised map as a NumPy ``.npy`` file (float32 112 x 112 in [-1, 1], as stored); the latest version
    while the task runs, as the PNG route."""
    buffer = io.BytesIO()
    xmap, headers = _stored_map(session, services, pair_id, model, method, image, scale)
    np.save(buffer, xmap.astype(np.float32), allow_pickle=False)
    suffix = f"-s{scale}" if scale else ""
    return Response(buffer.getvalue(), media_type="application/octet-stream", headers={**headers,
        "Content-Disposition": f'attachment; filename="xmap-{pair_id}-{model}-m{method}-{image}{suffix}.npy"'})


@router.get("/{pair_id}/faces/{image}.png", response_class=Response, responses=PNG)
def aligned_face_png(pair_id: PairId, image: ImageIndex, session: SessionDep,
                     model: str = Query(..., max_length=100, description="whose alignment template")) -> Response:
    """The aligned 112 x 112 crop the model sees (and the X-Maps are drawn on)."""
    return Response(png_bytes(_face(session, pair_id, model, image)), media_type="image/png")
