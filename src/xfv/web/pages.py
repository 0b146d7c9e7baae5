"""The HTML pages: landing, explorer, viewer, "explain your pair", and the figures they show.

Pages are rendered from Jinja2 templates; the tables and maps are filled by plain JS from the REST API. The
figures are drawn by :mod:`xfv.confidence.plots` (the renderer of ``xfv evaluate``) from the stored fits.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from xfv.confidence import ECE_BINS
from xfv.confidence.plots import plot_cscore_fit, plot_reliability
from xfv.errors import NotFoundError, XfvError
from xfv.jobs import POOR_ECE, passes_per_face
from xfv.models import runnable_models
from xfv.store.models import ModelRecord, XMapRecord
from xfv.store.queries import dataset_summaries, get_pair
from xfv.web.api.deps import PairId, ServicesDep, SessionDep, SettingsDep
from xfv.web.services import png_bytes
from xfv.xmaps import DEFAULT_METHOD, DESCRIPTIONS, METHODS, OcclusionConfig, colorize

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
PNG_CACHE = {"Cache-Control": "max-age=60"}
CSCORE_CEILING = 0.9995  # a C-Score that would round to 1.000 reads "> 0.999" (as the pages' script shows it)


def format_cscore(value: float | None) -> str:
    """A C-Score as the pages show it: three decimals, never a rounded "1.000" (no decision is certain)."""
    if value is None:
        return "–"
    return "> 0.999" if value >= CSCORE_CEILING else f"{value:.3f}"


templates.env.filters["cscore"] = format_cscore


def methods() -> dict[int, str]:
    """Every X-Map method with its one-line description (the method lists of the pages)."""
    return {m: DESCRIPTIONS.get(m, f"method {m}") for m in METHODS}


def scales() -> list[int]:
    """The patch sizes whose single-scale maps the viewer offers besides the final multi-scale map."""
    return list(OcclusionConfig().patch_sizes)


@router.get("/", response_class=HTMLResponse)
def landing(request: Request, session: SessionDep, services: ServicesDep) -> HTMLResponse:
    preview = session.execute(
        select(XMapRecord.pair_id, ModelRecord.name).join(ModelRecord)
        .order_by(ModelRecord.name != "dlib", XMapRecord.pair_id).limit(1)  # the default model's first pair
    ).first()
    compare = [] if preview is None else list(session.scalars(  # other models with the preview pair's maps
        select(ModelRecord.name).distinct().join(XMapRecord)
        .where(XMapRecord.pair_id == preview[0], ModelRecord.name != preview[1]).order_by(ModelRecord.name)))
    datasets = dataset_summaries(session)
    views = {(d.name, m.name): services.calibration_view(session, d.name, m.name) for d in datasets for m in d.models}
    return templates.TemplateResponse(request, "index.html", {
        "datasets": datasets, "views": views, "preview": preview, "compare": compare,
        "methods": methods(), "default_method": DEFAULT_METHOD, "poor_ece": POOR_ECE, "ece_bins": ECE_BINS,
    })


@router.get("/explorer", response_class=HTMLResponse)
def explorer(request: Request, session: SessionDep) -> HTMLResponse:
    datasets = dataset_summaries(session)
    thresholds = {d.name: {m.name: m.thresholds for m in d.models} for d in datasets}
    return templates.TemplateResponse(request, "explorer.html", {"datasets": datasets, "thresholds": thresholds})


@router.get("/viewer/{pair_id}", response_class=HTMLResponse)
def viewer(request: Request, pair_id: PairId, session: SessionDep,
           model: str | None = Query(None, max_length=100, description="the model shown first"),
           method: int | None = Query(None, ge=min(METHODS), le=max(METHODS), description="the method shown"),
           scale: str = Query("", max_length=3, description="empty: multi-scale; else a patch size"),
           models: str | None = Query(None, max_length=300, description="M1,M2: two models side by side"),
           ) -> HTMLResponse:
    """One pair; the query string carries the model (or two, side by side), method and map shown and the
    explorer's filter.

    The page's script reads them; they are validated here too, so a bad value is a 422, not a blank viewer.
    """
    row = get_pair(session, pair_id)
    compared = models.split(",") if models else []
    if models is not None and (len(compared) != 2 or compared[0] == compared[1]):
        raise XfvError(f"models must name two different models, e.g. models=dlib,sface; got {models!r}.")
    for name in (model, *compared):
        if name is not None and name not in row.results:
            raise NotFoundError(f"Pair {pair_id} has no results for model {name!r}; models: {sorted(row.results)}.")
    patch_sizes = scales()
    if scale not in ("", *map(str, patch_sizes)):
        raise XfvError(f"scale must be empty (multi-scale) or one of {patch_sizes}, got {scale!r}.")
    return templates.TemplateResponse(request, "viewer.html", {
        "pair_id": pair_id, "models": sorted(row.results), "methods": methods(), "scales": patch_sizes,
        "default_method": DEFAULT_METHOD,
    })


@router.get("/explain", response_class=HTMLResponse)
def explain(request: Request, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """Upload two photos; only the models that run by their name alone are offered (not ``onnx`` or
    ``callable``, which need a file or a function), each with the X-Map speed measured here, if any."""
    models = runnable_models()
    rates = dict(session.execute(select(ModelRecord.name, ModelRecord.passes_per_second)
                                 .where(ModelRecord.name.in_(list(models)))).all())
    return templates.TemplateResponse(request, "explain.html", {
        "models": models, "rates": rates, "passes": 2 * passes_per_face(), "default_model": settings.upload_model,
        "methods": methods(), "default_method": DEFAULT_METHOD, "max_mb": settings.max_upload_bytes / 2**20,
        "scales": scales(), "retention": retention(settings.upload_ttl_hours),
    })


def retention(hours: float) -> str:
    """``"24 hours"``, ``"2 days"``, ``"30 minutes"``: how long uploads are kept, in words."""
    if hours >= 48 and hours % 24 == 0:
        return f"{hours / 24:g} days"
    if hours >= 1:
        return f"{hours:g} hour{'s' if hours != 1 else ''}"
    return f"{hours * 60:g} minutes"


@router.get("/plots/confidence.png", response_class=Response)
def confidence_plot(session: SessionDep, services: ServicesDep, dataset: str = Query(..., max_length=100),
                    model: str = Query(..., max_length=100), fold: int = Query(0, ge=0, le=1000)) -> Response:
    """Fig. 2 of one fold: histograms and bin-wise ratios of the other folds, the C-Score curve fitted on them
    and the fold's threshold: the fit behind that fold's confidences in the explorer. Where the shipped
    calibration judges the dataset (too few pairs), its curve and t over all the dataset's pairs, whatever the fold."""
    view = services.calibration_view(session, dataset, model)
    buffer = io.BytesIO()
    if view.shipped is not None:
        plot_cscore_fit(view.distances, view.labels, view.shipped.cscore, buffer,
                        title=f"{model} on {dataset}, shipped curve")
        return Response(buffer.getvalue(), media_type="image/png", headers=PNG_CACHE)
    fit = next((f for f in view.fits if f.fold == fold), None)
    if fit is None:
        raise NotFoundError(f"Model {model!r} on {dataset!r} has no fit for fold {fold}; "
                            f"folds: {[f.fold for f in view.fits]}.")
    plot_cscore_fit(view.distances[fit.train], view.labels[fit.train], fit.cscore, buffer,
                    title=f"{model} on {dataset}, fold {fold} (fit on {int(fit.train.sum())} pairs)")
    return Response(buffer.getvalue(), media_type="image/png", headers=PNG_CACHE)


@router.get("/plots/reliability.png", response_class=Response)
def reliability_plot(session: SessionDep, services: ServicesDep, dataset: str = Query(..., max_length=100),
                     model: str = Query(..., max_length=100)) -> Response:
    """Reliability diagram of the out-of-fold C-Scores the explorer shows, beside the baselines'."""
    quality = services.calibration_view(session, dataset, model).quality
    buffer = io.BytesIO()
    plot_reliability(quality.correct, quality.confidences, buffer, title=f"Reliability: {model} on {dataset}")
    return Response(buffer.getvalue(), media_type="image/png", headers=PNG_CACHE)


@router.get("/plots/colorbar.png", response_class=Response)
def colorbar() -> Response:
    """The X-Map colour scale from -1 (left) to +1 (right), drawn by the colouring the maps use."""
    values = np.repeat(np.linspace(-1.0, 1.0, 256)[None, :], 14, axis=0)
    return Response(png_bytes((colorize(values) * 255).round().astype(np.uint8)), media_type="image/png",
                    headers={"Cache-Control": "max-age=3600"})
