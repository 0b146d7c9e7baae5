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
from xfv.web.services import png_bytes, render_map, stored_face

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


def _stored_map(session: Session, pair_id: int, model: str, method: int, image: int, scale: int) -> np.ndarray:
    record = get_model(session, model)
    stored = stored_xmaps(session, pair_id, record, scale).get((method, image))
    if stored is None:
        scales = stored_scales(session, pair_id, record)
        if scales and scale not in scales:
            raise NotFoundError(f"Pair {pair_id} has no stored X-Map of scale {scale} for model {model!r}; stored "
                                f"scales: {', '.join(map(str, scales))} (0: multi-scale, else the patch size).")
        raise NotFoundError(f"Pair {pair_id} has no stored X-Map for model {model!r}, method {method}, image {image}: "
                            f"POST /api/pairs/{pair_id}/xmaps/{model} computes it.")
    return decode_map(stored.data)


def _face(session: Session, pair_id: PairId, model: ModelName, image: int):
    pair = session.get(Pair, pair_id)
    if pair is None:
        raise NotFoundError(f"No pair with id {pair_id}.")
    chosen = pair.image1 if image == 1 else pair.image2
    return stored_face(pair.dataset.root, chosen.path, get_model(session, model).name)


@router.get("/{pair_id}/xmaps/{model}/{method}/{image}.png", response_class=Response, responses=PNG)
def xmap_png(pair_id: PairId, model: ModelName, method: Method, image: ImageIndex, session: SessionDep,
             kind: Literal["blend", "map"] = Query("blend", description="blend: over the face; map: colours only"),
             scale: Scale = 0) -> Response:
    xmap = _stored_map(session, pair_id, model, method, image, scale)
    face = _face(session, pair_id, model, image) if kind == "blend" else None
    return Response(render_map(face, xmap, kind), media_type="image/png")


@router.get("/{pair_id}/xmaps/{model}/{method}/{image}.npy", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
def xmap_array(pair_id: PairId, model: ModelName, method: Method, image: ImageIndex, session: SessionDep,
               scale: Scale = 0) -> Response:
    """The normalised map as a NumPy ``.npy`` file (float32 112 x 112 in [-1, 1], as stored)."""
    buffer = io.BytesIO()
    np.save(buffer, _stored_map(session, pair_id, model, method, image, scale), allow_pickle=False)
    suffix = f"-s{scale}" if scale else ""
    return Response(buffer.getvalue(), media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="xmap-{pair_id}-{model}-m{method}-{image}{suffix}.npy"'})


@router.get("/{pair_id}/faces/{image}.png", response_class=Response, responses=PNG)
def aligned_face_png(pair_id: PairId, image: ImageIndex, session: SessionDep,
                     model: str = Query(..., max_length=100, description="whose alignment template")) -> Response:
    """The aligned 112 x 112 crop the model sees (and the X-Maps are drawn on)."""
    return Response(png_bytes(_face(session, pair_id, model, image)), media_type="image/png")
