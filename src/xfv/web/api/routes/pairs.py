"""``/api/pairs``: the explorer's table (filters, sort, page) and one pair's details."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from sqlalchemy import select

from xfv.errors import NotFoundError, XfvError
from xfv.store.models import Dataset, Image, Result
from xfv.store.queries import (
    NO_FACE,
    ModelFilter,
    PairQuery,
    PairRow,
    dataset_size,
    default_model,
    get_dataset,
    get_pair,
    list_pairs,
    pair_neighbours,
)
from xfv.web.api.deps import PairId, ServicesDep, SessionDep
from xfv.web.schemas import (
    MODEL_LIST,
    Comparison,
    ImageOut,
    ModelView,
    NeighboursOut,
    PairDetail,
    PairFilters,
    PairOut,
    PairPage,
    ResultOut,
)
from xfv.xmaps import DEFAULT_METHOD, IMAGE_SIZE, METHODS

router = APIRouter(prefix="/pairs", tags=["pairs"])
LABELS = {1: "same", 0: "different"}


def image_url(dataset: str, path: str, size: int | None = None) -> str:
    url = f"/api/datasets/{quote(dataset)}/images/{quote(path)}"
    return f"{url}?size={size}" if size else url


def pair_out(row: PairRow, dataset: str, thumbnail_size: int, model: str | None = None) -> PairOut:
    """A pair; ``quality1``/``quality2`` are ``model``'s image qualities (default: the first model with results)."""
    model = model if model in row.qualities else next(iter(row.qualities), None)
    quality1, quality2 = row.qualities.get(model, (None, None))
    return PairOut(
        id=row.pair.id, dataset=dataset, position=row.pair.position, fold=row.pair.fold, label=LABELS[row.pair.label],
        image1=row.image1.path, image2=row.image2.path, identity1=row.image1.identity, identity2=row.image2.identity,
        quality1=quality1, quality2=quality2, heuristic1=row.image1.quality, heuristic2=row.image2.quality,
        thumbnail1=image_url(dataset, row.image1.path, thumbnail_size),
        thumbnail2=image_url(dataset, row.image2.path, thumbnail_size),
        results={name: result_out(r, row.qualities.get(name, (None, None))) for name, r in row.results.items()},
    )


def result_out(r: Result, qualities: tuple[float | None, float | None] = (None, None)) -> ResultOut:
    """A model's result on a pair; ``qualities``: both images' qualities for that model."""
    q1, q2 = qualities
    faces = [r.face1, r.face2]
    return ResultOut(distance=r.distance, threshold=r.threshold, prediction=LABELS[int(r.prediction)],
                     correct=r.correct, confidence=r.confidence, calibration=r.calibration, engine=r.engine,
                     faces=faces, face_found=None if None in faces else NO_FACE not in faces,
                     cscore=r.cscore, quality1=q1, quality2=q2,
                     quality=None if q1 is None or q2 is None else min(q1, q2))


def image_out(image: Image, dataset: str, thumbnail_size: int, qualities: dict[str, float] | None = None) -> ImageOut:
    return ImageOut(path=image.path, identity=image.identity, quality=image.quality, width=image.width,
                    height=image.height, sha256=image.sha256, aligned=image.aligned,
                    url=image_url(dataset, image.path), thumbnail=image_url(dataset, image.path, thumbnail_size),
                    qualities=qualities or {})


def pair_query(filters: PairFilters, dataset: str, model: str | None) -> PairQuery:
    """The store's query for the API's filters (``where`` items parsed as MODEL:FIELD:VALUE)."""
    return PairQuery(
        dataset=dataset, model=model, pair_id=filters.id, where=tuple(_where(item) for item in filters.where),
        fold=filters.fold, label=None if filters.label is None else int(filters.label == "same"),
        prediction=None if filters.prediction is None else filters.prediction == "same",
        correct=filters.correct, confidence_min=filters.confidence_min, confidence_max=filters.confidence_max,
        quality_min=filters.quality_min, quality_max=filters.quality_max, identity=filters.identity,
        path=filters.path, disagree=_models(filters.disagree), all_wrong=_models(filters.all_wrong),
        face_found=filters.face_found, sort=filters.sort, page=filters.page, page_size=filters.page_size,
    )


def _models(names: str | None) -> tuple[str, ...]:
    """``M1,M2,...`` as a tuple of names, each once (a model named twice is compared with itself: it agrees)."""
    return tuple(dict.fromkeys(names.split(","))) if names else ()


def _where(item: str) -> ModelFilter:
    model, field_name, text = item.split(":")
    if field_name in ("prediction", "correct"):
        allowed = {"prediction": {"same": True, "different": False}, "correct": {"true": True, "false": False}}
        if text not in allowed[field_name]:
            raise XfvError(f"where={item!r}: {field_name} must be one of {sorted(allowed[field_name])}.")
        return ModelFilter(model, field_name, allowed[field_name][text])
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    low = -1.0 if field_name.startswith("quality") else 0.0
    if not low <= value <= 1.0:
        raise XfvError(f"where={item!r}: {field_name} must be a number in [{low:g}, 1].")
    return ModelFilter(model, field_name, value)


def _chosen(filters: PairFilters, session) -> tuple[str | None, str | None]:
    dataset = filters.dataset or session.scalar(select(Dataset.name).order_by(Dataset.name).limit(1))
    if dataset is None:
        return None, None
    return dataset, filters.model or getattr(default_model(session, get_dataset(session, dataset)), "name", None)


@router.get("", response_model=PairPage)
def pairs(filters: Annotated[PairFilters, Query()], session: SessionDep, services: ServicesDep) -> PairPage:
    """Pairs of a dataset with every model's results; ``model`` is the one sorted on, ``where`` filters any."""
    dataset, model = _chosen(filters, session)
    if dataset is None:
        return PairPage(total=0, dataset_total=0, page=filters.page, page_size=filters.page_size, dataset="",
                        model=None, sort=filters.sort, items=[])
    total, rows = list_pairs(session, pair_query(filters, dataset, model))
    size = services.settings.thumbnail_size
    return PairPage(total=total, dataset_total=dataset_size(session, dataset), page=filters.page,
                    page_size=filters.page_size, dataset=dataset, model=model, sort=filters.sort,
                    items=[pair_out(row, dataset, size, model) for row in rows])


@router.get("/{pair_id}/neighbours", response_model=NeighboursOut)
def neighbours(pair_id: PairId, filters: Annotated[PairFilters, Query()], session: SessionDep) -> NeighboursOut:
    """The pairs before and after this one in the explorer's table with these filters and sort (the viewer's
    previous / next)."""
    get_pair(session, pair_id)
    dataset, model = _chosen(filters, session)
    if dataset is None:
        return NeighboursOut(position=0, total=0, previous=None, next=None)
    return NeighboursOut(**vars(pair_neighbours(session, pair_query(filters, dataset, model), pair_id)))


@router.get("/{pair_id}/compare", response_model=Comparison)
def compare(pair_id: PairId, session: SessionDep, services: ServicesDep,
            models: Annotated[str, Query(pattern=MODEL_LIST, max_length=300,
                                         description="M1,M2[,...]: the models side by side")],
            method: Annotated[int, Query(ge=min(METHODS), le=max(METHODS))] = DEFAULT_METHOD,
            scale: Annotated[int, Query(ge=0, le=IMAGE_SIZE - 1, description="0: multi-scale; else a patch size")] = 0,
            ) -> Comparison:
    """Models side by side on one pair: each one's verdict and C-Score (with the faces it found), the state and
    cost of its X-Maps, and the URLs of the same method's maps."""
    row = get_pair(session, pair_id)
    names = _models(models)
    missing = [name for name in names if name not in row.results]
    if missing:
        raise NotFoundError(f"Pair {pair_id} has no results for {missing}; models with results: "
                            f"{sorted(row.results)}.")
    suffix = f"?scale={scale}" if scale else ""
    views = [ModelView(
        model=name, result=result_out(row.results[name], row.qualities.get(name, (None, None))), xmaps=services.xmap_status(session, pair_id, name),
        maps={i: f"/api/pairs/{pair_id}/xmaps/{quote(name)}/{method}/{i}.png{suffix}" for i in (1, 2)},
        faces={i: f"/api/pairs/{pair_id}/faces/{i}.png?model={quote(name)}" for i in (1, 2)},
    ) for name in names]
    predictions = {row.results[name].prediction for name in names}
    return Comparison(pair=pair_id, label=LABELS[row.pair.label], method=method, scale=scale,
                      agree=len(predictions) == 1, models=views)


@router.get("/{pair_id}", response_model=PairDetail)
def pair_detail(pair_id: PairId, session: SessionDep, services: ServicesDep) -> PairDetail:
    """One pair: images with metadata, every model's result and the state of its X-Maps."""
    row = get_pair(session, pair_id)
    dataset = session.get(Dataset, row.pair.dataset_id).name
    size = services.settings.thumbnail_size
    return PairDetail(
        pair=pair_out(row, dataset, size),
        images=[image_out(image, dataset, size, {name: q[i] for name, q in row.qualities.items() if q[i] is not None})
                for i, image in enumerate((row.image1, row.image2))],
        xmaps={name: services.xmap_status(session, pair_id, name) for name in row.results},
    )
