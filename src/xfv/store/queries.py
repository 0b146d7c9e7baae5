"""Read-side queries of the platform: dataset overview, the pair table (filter, sort, page), pair details.

Sorting and filtering only ever use the column expressions in :data:`SORT_COLUMNS` and typed values: no SQL is
assembled from request strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Integer, and_, case, cast, false, func, or_, select
from sqlalchemy.orm import Session, aliased

from xfv.errors import NotFoundError
from xfv.store.models import (
    CalibrationRecord,
    Dataset,
    Image,
    ImageQualityRecord,
    ModelRecord,
    Pair,
    Result,
    XMapRecord,
)

_Image1 = aliased(Image, name="image1")
_Image2 = aliased(Image, name="image2")
_Result = aliased(Result, name="result")
_Quality1 = aliased(ImageQualityRecord, name="quality1")
_Quality2 = aliased(ImageQualityRecord, name="quality2")
_PAIR_QUALITY = case((_Quality1.quality <= _Quality2.quality, _Quality1.quality), else_=_Quality2.quality)

SORT_COLUMNS: dict[str, ColumnElement] = {
    "id": Pair.id,
    "fold": Pair.fold,
    "label": Pair.label,
    "image1": _Image1.path,
    "image2": _Image2.path,
    "identity1": _Image1.identity,
    "identity2": _Image2.identity,
    "heuristic1": _Image1.quality,
    "heuristic2": _Image2.quality,
    "quality1": _Quality1.quality,
    "quality2": _Quality2.quality,
    "quality": _PAIR_QUALITY,
    "distance": _Result.distance,
    "threshold": _Result.threshold,
    "prediction": _Result.prediction,
    "correct": _Result.correct,
    "confidence": _Result.confidence,
}
RESULT_COLUMNS = {"distance", "threshold", "prediction", "correct", "confidence"}
QUALITY_COLUMNS = {"quality1", "quality2", "quality"}  # the model's image qualities (image_qualities)


MODEL_FILTERS = ("prediction", "correct", "confidence_min", "confidence_max", "quality_min", "quality_max")
NO_FACE = "centre"
"""The detector name of a face that was not found: the centre of the photo was compared instead."""


@dataclass(frozen=True)
class ModelFilter:
    """A filter on one model's results: ``field`` one of :data:`MODEL_FILTERS` (prediction, correct: bool)."""

    model: str
    field: str
    value: bool | float

    def __post_init__(self) -> None:
        if self.field not in MODEL_FILTERS:
            raise ValueError(f"Cannot filter on {self.field!r}; expected one of {list(MODEL_FILTERS)}.")


@dataclass(frozen=True)
class PairQuery:
    """Filters, sort and page of the pair table. ``model`` picks whose results are sorted on and filtered by
    ``prediction``, ``correct``, the confidence range and the quality range (of the pair: the lower of its two
    images' qualities for that model); ``where`` filters any model's results (all must hold).
    Comparing models: ``disagree`` keeps the pairs whose predictions differ among these models, ``all_wrong`` those
    every one of them gets wrong (both need each model's result). ``face_found``: False keeps the pairs where some
    model's pipeline found no face in an image, True those where every model found both."""

    dataset: str
    model: str | None = None
    pair_id: int | None = None
    where: tuple[ModelFilter, ...] = ()
    fold: int | None = None
    label: int | None = None
    prediction: bool | None = None
    correct: bool | None = None
    confidence_min: float | None = None
    confidence_max: float | None = None
    quality_min: float | None = None
    quality_max: float | None = None
    identity: str | None = None
    path: str | None = None
    disagree: tuple[str, ...] = ()
    all_wrong: tuple[str, ...] = ()
    face_found: bool | None = None
    sort: str = "id"
    page: int = 1
    page_size: int = 20

    def __post_init__(self) -> None:
        for name, models in (("disagree", self.disagree), ("all_wrong", self.all_wrong)):
            if len(set(models)) != len(models):
                raise ValueError(f"{name} names a model twice: {list(models)}.")
        if self.sort.lstrip("-") not in SORT_COLUMNS:
            raise ValueError(f"Cannot sort by {self.sort!r}; expected one of {sorted(SORT_COLUMNS)} "
                             "with an optional leading '-'.")
        if self.page < 1 or not 1 <= self.page_size <= 500:
            raise ValueError(f"page must be >= 1 and page_size in 1..500, got {self.page} and {self.page_size}.")


@dataclass
class PairRow:
    pair: Pair
    image1: Image
    image2: Image
    results: dict[str, Result] = field(default_factory=dict)
    qualities: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # model -> both images


def get_dataset(session: Session, name: str) -> Dataset:
    dataset = session.scalar(select(Dataset).where(Dataset.name == name))
    if dataset is None:
        raise NotFoundError(f"No dataset named {name!r}.")
    return dataset


def get_model(session: Session, name: str) -> ModelRecord:
    model = session.scalar(select(ModelRecord).where(ModelRecord.name == name))
    if model is None:
        raise NotFoundError(f"No model named {name!r} in the database.")
    return model


def default_model(session: Session, dataset: Dataset) -> ModelRecord | None:
    """The model whose results the table shows first: ``dlib`` if it has results, else the first by name."""
    models = session.scalars(
        select(ModelRecord).where(ModelRecord.id.in_(
            select(Result.model_id).join(Pair, Pair.id == Result.pair_id).where(Pair.dataset_id == dataset.id)
        )).order_by(ModelRecord.name)
    ).all()
    return next((m for m in models if m.name == "dlib"), models[0] if models else None)


IMAGE_COLUMNS = {"image1", "image2", "identity1", "identity2", "heuristic1", "heuristic2"}


def _filtered(session: Session, query: PairQuery):
    """The ids of the matching pairs (a select, joining images and results only where needed) and their order."""
    dataset = get_dataset(session, query.dataset)
    model = get_model(session, query.model) if query.model else default_model(session, dataset)
    key = query.sort.lstrip("-")
    needs_result = key in RESULT_COLUMNS or any(
        v is not None for v in (query.prediction, query.correct, query.confidence_min, query.confidence_max))
    needs_images = key in IMAGE_COLUMNS or bool(query.identity) or bool(query.path)
    needs_quality = key in QUALITY_COLUMNS or query.quality_min is not None or query.quality_max is not None
    if (needs_result or needs_quality) and model is None:
        raise NotFoundError(f"Dataset {dataset.name!r} has no results yet: run 'xfv precompute' first.")
    ids = select(Pair.id).where(Pair.dataset_id == dataset.id)
    if needs_images:
        ids = ids.join(_Image1, Pair.image1_id == _Image1.id).join(_Image2, Pair.image2_id == _Image2.id)
    if needs_result:
        ids = ids.outerjoin(_Result, and_(_Result.pair_id == Pair.id, _Result.model_id == model.id))
    if needs_quality:
        ids = _join_qualities(ids, _Quality1, _Quality2, model.id)
    for condition in _conditions(query):
        ids = ids.where(condition)
    joined: dict[str, object] = {model.name: _Result} if needs_result else {}
    compared = (*query.disagree, *query.all_wrong)
    on_results = [f for f in query.where if not f.field.startswith("quality")]
    on_quality = [f for f in query.where if f.field.startswith("quality")]
    for name in dict.fromkeys((*(f.model for f in on_results), *compared)):  # one join per filtered model
        if name not in joined:
            joined[name] = aliased(Result, name=f"where{len(joined)}")
            ids = ids.join(joined[name], and_(joined[name].pair_id == Pair.id,
                                              joined[name].model_id == get_model(session, name).id))
        for f in (f for f in on_results if f.model == name):
            ids = ids.where(_model_condition(joined[name], f))
    for index, name in enumerate(dict.fromkeys(f.model for f in on_quality)):  # one join per model's qualities
        if needs_quality and name == model.name:
            pair_quality = _PAIR_QUALITY
        else:
            q1 = aliased(ImageQualityRecord, name=f"whereq1_{index}")
            q2 = aliased(ImageQualityRecord, name=f"whereq2_{index}")
            ids = _join_qualities(ids, q1, q2, get_model(session, name).id)
            pair_quality = case((q1.quality <= q2.quality, q1.quality), else_=q2.quality)
        for f in (f for f in on_quality if f.model == name):
            ids = ids.where(pair_quality >= float(f.value) if f.field == "quality_min" else
                            pair_quality <= float(f.value))
    if query.disagree:  # one model never disagrees with itself
        first, *others = (joined[name] for name in query.disagree)
        ids = ids.where(or_(false(), *(other.prediction != first.prediction for other in others)))
    for name in query.all_wrong:
        ids = ids.where(joined[name].correct.is_(False))
    if query.face_found is not None:
        lost = select(Result.id).where(Result.pair_id == Pair.id, or_(Result.face1 == NO_FACE, Result.face2 == NO_FACE))
        ids = ids.where(~lost.exists() if query.face_found else lost.exists())
    column = SORT_COLUMNS[key]
    order = column.desc() if query.sort.startswith("-") else column.asc()
    return ids, (order.nulls_last(), Pair.id)


def _join_qualities(ids, quality1, quality2, model_id: int):
    """``ids`` joined (outer) with both images' qualities for the model ``model_id``."""
    return (ids.outerjoin(quality1, and_(quality1.image_id == Pair.image1_id, quality1.model_id == model_id))
            .outerjoin(quality2, and_(quality2.image_id == Pair.image2_id, quality2.model_id == model_id)))


def _model_condition(result, f: ModelFilter) -> ColumnElement[bool]:
    if f.field == "prediction":
        return result.prediction == bool(f.value)
    if f.field == "correct":
        return result.correct == bool(f.value)
    if f.field == "confidence_min":
        return result.confidence >= float(f.value)
    return result.confidence <= float(f.value)


def list_pairs(session: Session, query: PairQuery) -> tuple[int, list[PairRow]]:
    """The total number of matching pairs and the requested page, each row with every model's results.

    Two steps: the ids of the page and the total in one query (joining images and results only where a filter or
    the sort needs them), then the page's rows.
    """
    ids, order = _filtered(session, query)
    page = session.execute(
        ids.add_columns(func.count().over())  # the total, counted in the same pass
        .order_by(*order).offset((query.page - 1) * query.page_size).limit(query.page_size)
    ).all()
    page_ids = [pair_id for pair_id, _ in page]
    total = page[0][1] if page else session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    loaded = {
        pair.id: PairRow(pair, image1, image2)
        for pair, image1, image2 in session.execute(
            select(Pair, _Image1, _Image2)
            .join(_Image1, Pair.image1_id == _Image1.id)
            .join(_Image2, Pair.image2_id == _Image2.id)
            .where(Pair.id.in_(page_ids))
        ).all()
    }
    rows = [loaded[pair_id] for pair_id in page_ids]
    _attach_results(session, rows)
    return total, rows


@dataclass(frozen=True)
class Neighbours:
    """Where a pair stands in the filtered, sorted table: its 1-based ``position`` of ``total`` (0 when the
    filter excludes it) and the pairs before and after it."""

    position: int
    total: int
    previous: int | None
    next: int | None


def pair_neighbours(session: Session, query: PairQuery, pair_id: int) -> Neighbours:
    """The pairs before and after ``pair_id`` under the query's filter and sort (the page is ignored)."""
    ids, order = _filtered(session, query)
    ranked = ids.add_columns(
        func.lag(Pair.id).over(order_by=order).label("previous"),
        func.lead(Pair.id).over(order_by=order).label("next"),
        func.row_number().over(order_by=order).label("position"),
        func.count().over().label("total"),
    ).subquery()
    row = session.execute(select(ranked.c.previous, ranked.c.next, ranked.c.position, ranked.c.total)
                          .where(ranked.c.id == pair_id)).first()
    if row is None:
        total = session.scalar(select(func.count()).select_from(ids.subquery())) or 0
        return Neighbours(0, int(total), None, None)
    return Neighbours(int(row.position), int(row.total), row.previous, row.next)


def dataset_size(session: Session, name: str) -> int:
    """The number of pairs of a dataset (the M of "N of M pairs")."""
    return session.scalar(select(func.count(Pair.id)).where(Pair.dataset_id == get_dataset(session, name).id)) or 0


def _conditions(query: PairQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.pair_id is not None:
        conditions.append(Pair.id == query.pair_id)
    if query.fold is not None:
        conditions.append(Pair.fold == query.fold)
    if query.label is not None:
        conditions.append(Pair.label == query.label)
    if query.prediction is not None:
        conditions.append(_Result.prediction == query.prediction)
    if query.correct is not None:
        conditions.append(_Result.correct == query.correct)
    if query.confidence_min is not None:
        conditions.append(_Result.confidence >= query.confidence_min)
    if query.confidence_max is not None:
        conditions.append(_Result.confidence <= query.confidence_max)
    if query.quality_min is not None:
        conditions.append(_PAIR_QUALITY >= query.quality_min)
    if query.quality_max is not None:
        conditions.append(_PAIR_QUALITY <= query.quality_max)
    if query.identity:
        pattern = _contains(query.identity)
        conditions.append(or_(_Image1.identity.ilike(pattern, escape="\\"), _Image2.identity.ilike(pattern, escape="\\")))
    if query.path:
        pattern = _contains(query.path)
        conditions.append(or_(_Image1.path.ilike(pattern, escape="\\"), _Image2.path.ilike(pattern, escape="\\")))
    return conditions


def _contains(text: str) -> str:
    """A LIKE pattern matching ``text`` literally anywhere (``%`` and ``_`` escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _attach_results(session: Session, rows: list[PairRow]) -> None:
    by_pair = {row.pair.id: row for row in rows}
    if not by_pair:
        return
    stmt = select(Result, ModelRecord.name).join(ModelRecord).where(Result.pair_id.in_(by_pair)).order_by(ModelRecord.name)
    for result, model_name in session.execute(stmt).all():
        by_pair[result.pair_id].results[model_name] = result
    images = {image_id for row in rows for image_id in (row.pair.image1_id, row.pair.image2_id)}
    known: dict[tuple[int, str], float] = {
        (image_id, name): quality for image_id, name, quality in session.execute(
            select(ImageQualityRecord.image_id, ModelRecord.name, ImageQualityRecord.quality)
            .join(ModelRecord, ModelRecord.id == ImageQualityRecord.model_id)
            .where(ImageQualityRecord.image_id.in_(images))).all()}
    for row in rows:
        for name in row.results:
            row.qualities[name] = (known.get((row.pair.image1_id, name)), known.get((row.pair.image2_id, name)))


def get_pair(session: Session, pair_id: int) -> PairRow:
    """One pair with its images and every model's results."""
    row = session.execute(
        select(Pair, _Image1, _Image2)
        .join(_Image1, Pair.image1_id == _Image1.id)
        .join(_Image2, Pair.image2_id == _Image2.id)
        .where(Pair.id == pair_id)
    ).first()
    if row is None:
        raise NotFoundError(f"No pair with id {pair_id}.")
    pair_row = PairRow(*row)
    _attach_results(session, [pair_row])
    return pair_row


def get_image(session: Session, dataset: Dataset, path: str) -> Image:
    """The image registered under ``path`` in ``dataset`` (only registered files are ever served)."""
    image = session.scalar(select(Image).where(Image.dataset_id == dataset.id, Image.path == path))
    if image is None:
        raise NotFoundError(f"Dataset {dataset.name!r} has no image {path!r}.")
    return image


@dataclass(frozen=True)
class ModelSummary:
    name: str
    pairs: int
    accuracy: float
    mean_confidence: float | None
    xmap_pairs: int
    thresholds: dict[int, float] = field(default_factory=dict)  # per fold: the t its pairs were judged with
    faces_not_found: int = 0  # pairs with an image in which the model's pipeline found no face


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    format: str
    pairs: int
    images: int
    folds: int
    models: list[ModelSummary]
    example_identity: str | None = None  # an identity with the most images (a search that finds something)


def dataset_summaries(session: Session) -> list[DatasetSummary]:
    """Every dataset with its counts and, per model, accuracy over the pairs with results."""
    summaries = []
    for dataset in session.scalars(select(Dataset).order_by(Dataset.name)):
        pairs, folds = session.execute(
            select(func.count(Pair.id), func.count(func.distinct(Pair.fold))).where(Pair.dataset_id == dataset.id)
        ).one()
        images = session.scalar(select(func.count(Image.id)).where(Image.dataset_id == dataset.id)) or 0
        model_rows = session.execute(
            select(ModelRecord.name, func.count(Result.id), func.avg(cast(Result.correct, Integer)),
                   func.avg(Result.confidence))
            .join(Result, Result.model_id == ModelRecord.id)
            .join(Pair, Pair.id == Result.pair_id)
            .where(Pair.dataset_id == dataset.id)
            .group_by(ModelRecord.name)
            .order_by(ModelRecord.name)
        ).all()
        xmap_counts = dict(session.execute(
            select(ModelRecord.name, func.count(func.distinct(XMapRecord.pair_id)))
            .join(XMapRecord, XMapRecord.model_id == ModelRecord.id)
            .join(Pair, Pair.id == XMapRecord.pair_id)
            .where(Pair.dataset_id == dataset.id)
            .group_by(ModelRecord.name)
        ).all())
        thresholds: dict[str, dict[int, float]] = {}
        for name, fold, threshold in session.execute(
            select(ModelRecord.name, Pair.fold, func.max(Result.threshold))
            .join(Result, Result.model_id == ModelRecord.id).join(Pair, Pair.id == Result.pair_id)
            .where(Pair.dataset_id == dataset.id).group_by(ModelRecord.name, Pair.fold).order_by(Pair.fold)
        ).all():
            thresholds.setdefault(name, {})[int(fold)] = float(threshold)
        lost = dict(session.execute(
            select(ModelRecord.name, func.count(Result.id))
            .join(Result, Result.model_id == ModelRecord.id).join(Pair, Pair.id == Result.pair_id)
            .where(Pair.dataset_id == dataset.id, or_(Result.face1 == NO_FACE, Result.face2 == NO_FACE))
            .group_by(ModelRecord.name)
        ).all())
        example = session.scalar(
            select(Image.identity).where(Image.dataset_id == dataset.id).group_by(Image.identity)
            .order_by(func.count(Image.id).desc(), Image.identity).limit(1))
        models = [ModelSummary(name, int(count), float(acc or 0.0), None if conf is None else float(conf),
                               int(xmap_counts.get(name, 0)), thresholds.get(name, {}), int(lost.get(name, 0)))
                  for name, count, acc, conf in model_rows]
        summaries.append(DatasetSummary(dataset.name, dataset.format, int(pairs), int(images), int(folds), models,
                                        example))
    return summaries


def model_results(session: Session, dataset: Dataset, model: ModelRecord) -> list[tuple[float, int, int, float, bool]]:
    """``(distance, label, fold, confidence, correct)`` of every pair of ``dataset`` with a result of ``model``."""
    return [tuple(row) for row in session.execute(
        select(Result.distance, Pair.label, Pair.fold, Result.confidence, Result.correct)
        .join(Pair, Pair.id == Result.pair_id)
        .where(Pair.dataset_id == dataset.id, Result.model_id == model.id)
        .order_by(Pair.position)
    ).all()]


def model_pair_qualities(session: Session, dataset: Dataset, model: ModelRecord) -> list[tuple[float | None, float | None]]:
    """``(quality1, quality2)`` of ``model`` for every pair of ``dataset`` with a result of ``model``, in the order of
    :func:`model_results` (None where an image has no stored quality)."""
    q1, q2 = aliased(ImageQualityRecord), aliased(ImageQualityRecord)
    return [tuple(row) for row in session.execute(
        select(q1.quality, q2.quality)
        .select_from(Result).join(Pair, Pair.id == Result.pair_id)
        .outerjoin(q1, and_(q1.image_id == Pair.image1_id, q1.model_id == model.id))
        .outerjoin(q2, and_(q2.image_id == Pair.image2_id, q2.model_id == model.id))
        .where(Pair.dataset_id == dataset.id, Result.model_id == model.id)
        .order_by(Pair.position)
    ).all()]


def results_variant(session: Session, dataset: Dataset, model: ModelRecord) -> str | None:
    """The C-Score variant behind the stored confidences of ``model`` on ``dataset`` (None: stored before variants,
    the paper's)."""
    return session.scalar(
        select(Result.cscore).join(Pair, Pair.id == Result.pair_id)
        .where(Pair.dataset_id == dataset.id, Result.model_id == model.id).limit(1))


def results_calibration(session: Session, dataset: Dataset, model: ModelRecord) -> str | None:
    """The name of the calibration behind the stored results of ``model`` on ``dataset`` (one per precompute)."""
    return session.scalar(
        select(Result.calibration).join(Pair, Pair.id == Result.pair_id)
        .where(Pair.dataset_id == dataset.id, Result.model_id == model.id).limit(1))


def fold_calibrations(session: Session, dataset: Dataset, model: ModelRecord) -> dict[int, tuple[float, dict]]:
    """Per fold k the stored threshold t_k and the Eq. 2 parameters fitted on the other folds."""
    records = session.scalars(select(CalibrationRecord).where(
        CalibrationRecord.model_id == model.id, CalibrationRecord.dataset_id == dataset.id,
        CalibrationRecord.fold.is_not(None)))
    return {r.fold: (r.threshold, r.parameters["cscore"]) for r in records}


def latest_calibration(session: Session, model: ModelRecord) -> CalibrationRecord | None:
    """The newest all-pairs calibration of ``model`` (fold NULL), on any dataset."""
    return session.scalar(
        select(CalibrationRecord)
        .where(CalibrationRecord.model_id == model.id, CalibrationRecord.fold.is_(None))
        .order_by(CalibrationRecord.created_at.desc(), CalibrationRecord.id.desc())
        .limit(1)
    )


def stored_xmaps(session: Session, pair_id: int, model: ModelRecord,
                 scale: int = 0) -> dict[tuple[int, int], XMapRecord]:
    """The stored maps of a pair for ``model`` and ``scale`` (0: final, else a patch size) by ``(method, image)``."""
    records = session.scalars(select(XMapRecord).where(
        XMapRecord.pair_id == pair_id, XMapRecord.model_id == model.id, XMapRecord.scale == scale))
    return {(r.method, r.image): r for r in records}


def stored_scales(session: Session, pair_id: int, model: ModelRecord) -> list[int]:
    """The scales stored for a pair and ``model`` (0: the final map, then the patch sizes)."""
    return sorted(session.scalars(select(XMapRecord.scale).distinct().where(
        XMapRecord.pair_id == pair_id, XMapRecord.model_id == model.id)))
