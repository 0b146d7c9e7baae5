"""The HTML pages: landing, explorer, viewer, "explain your pair", and the confidence figure they show.

Pages are rendered from Jinja2 templates; the tables and maps are filled by plain JS from the REST API.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from xfv.confidence import Calibration
from xfv.errors import NotFoundError
from xfv.models import list_models
from xfv.store.models import CalibrationRecord, ModelRecord, XMapRecord
from xfv.store.queries import dataset_summaries, get_dataset, get_model, get_pair, model_results
from xfv.web.api.deps import PairId, SessionDep, SettingsDep
from xfv.web.plots import confidence_figure
from xfv.xmaps import DEFAULT_METHOD, METHOD_DESCRIPTIONS, METHODS

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


@router.get("/", response_class=HTMLResponse)
def landing(request: Request, session: SessionDep) -> HTMLResponse:
    preview = session.execute(
        select(XMapRecord.pair_id, ModelRecord.name).join(ModelRecord)
        .order_by(ModelRecord.name != "dlib", XMapRecord.pair_id).limit(1)  # the default model's first pair
    ).first()
    return templates.TemplateResponse(request, "index.html", {
        "datasets": dataset_summaries(session), "preview": preview, "models": list_models(), "methods": METHODS,
    })


@router.get("/explorer", response_class=HTMLResponse)
def explorer(request: Request, session: SessionDep) -> HTMLResponse:
    return templates.TemplateResponse(request, "explorer.html", {"datasets": dataset_summaries(session)})


@router.get("/viewer/{pair_id}", response_class=HTMLResponse)
def viewer(request: Request, pair_id: PairId, session: SessionDep,
           model: str | None = Query(None, max_length=100), method: int = Query(DEFAULT_METHOD, ge=1, le=max(METHODS))) -> HTMLResponse:
    row = get_pair(session, pair_id)
    return templates.TemplateResponse(request, "viewer.html", {
        "pair_id": pair_id, "models": sorted(row.results), "model": model, "method": method,
        "methods": METHOD_DESCRIPTIONS,
    })


@router.get("/explain", response_class=HTMLResponse)
def explain(request: Request, settings: SettingsDep) -> HTMLResponse:
    return templates.TemplateResponse(request, "explain.html", {
        "models": list_models(), "default_model": settings.upload_model,
        "max_mb": settings.max_upload_bytes / 2**20,
        "methods": METHOD_DESCRIPTIONS, "default_method": DEFAULT_METHOD,
    })


@router.get("/plots/confidence.png", response_class=Response)
def confidence_plot(session: SessionDep, dataset: str = Query(..., max_length=100),
                    model: str = Query(..., max_length=100)) -> Response:
    """Fig. 2 for one dataset and model: distance histograms, bin-wise ratio, fitted curve, C-Score."""
    stored_dataset, stored_model = get_dataset(session, dataset), get_model(session, model)
    rows = model_results(session, stored_dataset, stored_model)
    if not rows:
        raise NotFoundError(f"Model {model!r} has no results on dataset {dataset!r}.")
    distances, labels, _ = (np.array(column) for column in zip(*rows))
    record = session.scalar(select(CalibrationRecord).where(
        CalibrationRecord.model_id == stored_model.id, CalibrationRecord.dataset_id == stored_dataset.id,
        CalibrationRecord.fold.is_(None)))
    calibration = Calibration.from_dict(record.parameters) if record else None
    png = confidence_figure(distances, labels, calibration, f"{model} on {dataset}: {len(rows)} pairs")
    return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=60"})
