"""Request (input) and response (output) models of the REST API, kept apart."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from xfv.store.queries import MODEL_FILTERS, SORT_COLUMNS

SORT_PATTERN = r"^-?(" + "|".join(sorted(SORT_COLUMNS)) + r")$"
# MODEL:FIELD:VALUE, each field with the values it takes (the schema documents them, the route checks them).
WHERE_VALUES = {"prediction": "same|different", "correct": "true|false",
                "confidence_min": r"0(\.[0-9]+)?|1(\.0+)?", "confidence_max": r"0(\.[0-9]+)?|1(\.0+)?",
                "quality_min": r"-?(0(\.[0-9]+)?|1(\.0+)?)", "quality_max": r"-?(0(\.[0-9]+)?|1(\.0+)?)"}
WHERE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*:(" + "|".join(
    f"{field}:({WHERE_VALUES[field]})" for field in MODEL_FILTERS) + r")$"
MODEL_LIST = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*(,[A-Za-z0-9][A-Za-z0-9_.+-]*)+$"  # two or more model names
Label = Literal["same", "different"]
TEXT = r"^[^\x00]*$"  # any text but NUL, which PostgreSQL cannot store
DB_INT_MAX = 2**31 - 1  # the largest value of an INTEGER column (PostgreSQL); ids, folds and pages stay below


# -- input ---------------------------------------------------------------------------------------------------
class PairFilters(BaseModel):
    """Query parameters of ``GET /api/pairs``: filters, sort (a column, optional leading ``-``) and page."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = Field(None, pattern=TEXT, max_length=100, description="dataset name; default: the first one")
    model: str | None = Field(None, pattern=TEXT, max_length=100, description="model whose results are filtered and sorted on")
    id: int | None = Field(None, ge=1, le=DB_INT_MAX, description="only this pair (the explorer's id search)")
    where: list[Annotated[str, Field(max_length=130, pattern=WHERE_PATTERN)]] = Field(
        default_factory=list, max_length=20,
        description="per-model filters MODEL:FIELD:VALUE, e.g. lbp:correct:false, dlib:prediction:same, "
                    "dlib:confidence_min:0.9; all must hold")
    fold: int | None = Field(None, ge=0, le=DB_INT_MAX)
    label: Label | None = None
    prediction: Label | None = None
    correct: bool | None = None
    confidence_min: float | None = Field(None, ge=0.0, le=1.0)
    confidence_max: float | None = Field(None, ge=0.0, le=1.0)
    quality_min: float | None = Field(None, ge=-1.0, le=1.0, description="pair quality (the lower image quality "
                                      "for `model`, docs/quality.md) at least this")
    quality_max: float | None = Field(None, ge=-1.0, le=1.0, description="pair quality at most this")
    identity: str | None = Field(None, pattern=TEXT, max_length=100, description="substring of either identity")
    path: str | None = Field(None, pattern=TEXT, max_length=200, description="substring of either image path")
    disagree: str | None = Field(None, pattern=MODEL_LIST, max_length=300,
                                 description="M1,M2[,...]: only pairs whose predictions differ among these models")
    all_wrong: str | None = Field(None, pattern=MODEL_LIST, max_length=300,
                                  description="M1,M2[,...]: only pairs every one of these models gets wrong")
    face_found: bool | None = Field(None, description="false: only pairs where some model's pipeline found no face "
                                                      "in an image; true: only pairs where every model found both")
    sort: str = Field("id", pattern=SORT_PATTERN, description=f"one of {sorted(SORT_COLUMNS)}, '-' for descending")
    page: int = Field(1, ge=1, le=DB_INT_MAX)
    page_size: int = Field(20, ge=1, le=500)


# -- output --------------------------------------------------------------------------------------------------
class ResultOut(BaseModel):
    distance: float
    threshold: float
    prediction: Label
    correct: bool
    confidence: float | None
    calibration: str | None = Field(description="where the threshold and C-Score come from: out of fold, or the "
                                                "shipped calibration (datasets too small for their own)")
    engine: str | None = Field(None, description="what computed the embeddings: runtime, provider, precision")
    faces: list[str | None] = Field(description="per image, the detector that found the face in this model's "
                                                "pipeline; 'centre': none did, the centre of the photo was compared")
    face_found: bool | None = Field(description="whether both faces were found (None: not recorded); when false, "
                                                "the C-Score does not hold: it is calibrated on found faces")
    cscore: str | None = Field(None, description="the C-Score variant of the confidence: paper, continuous or "
                                                 "quality-aware (docs/quality.md)")
    quality1: float | None = Field(None, description="image 1's quality for this model (embedding stability, "
                                                     "docs/quality.md; higher is better)")
    quality2: float | None = Field(None, description="image 2's quality for this model")
    quality: float | None = Field(None, description="the pair's quality: the lower of the two")


class ImageOut(BaseModel):
    path: str
    identity: str
    quality: float
    width: int
    height: int
    sha256: str
    aligned: bool
    url: str
    thumbnail: str
    qualities: dict[str, float] = Field(default_factory=dict, description="per model the image's quality "
                                        "(embedding stability, docs/quality.md); `quality` is the image statistics")


class PairOut(BaseModel):
    id: int
    dataset: str
    position: int
    fold: int
    label: Label
    image1: str
    image2: str
    identity1: str
    identity2: str
    quality1: float | None = Field(description="image 1's quality for the table's model (embedding stability, "
                                               "docs/quality.md; sort key quality1), None if not computed")
    quality2: float | None = Field(description="image 2's quality for the table's model (sort key quality2)")
    heuristic1: float = Field(description="image 1's image-statistics quality, 0-100 (sort key heuristic1)")
    heuristic2: float = Field(description="image 2's image-statistics quality, 0-100")
    thumbnail1: str
    thumbnail2: str
    results: dict[str, ResultOut]


class PairPage(BaseModel):
    total: int
    dataset_total: int = Field(description="pairs of the dataset before filtering (the M of 'N of M pairs')")
    page: int
    page_size: int
    dataset: str
    model: str | None
    sort: str
    items: list[PairOut]


class NeighboursOut(BaseModel):
    position: int = Field(description="1-based place of the pair in the filtered, sorted table; 0 if filtered out")
    total: int
    previous: int | None
    next: int | None


class CostEstimate(BaseModel):
    """What computing a pair's X-Maps will cost, before it starts."""

    passes: int = Field(description="forward passes for both faces, every method (fewer when a face is cached)")
    passes_per_second: float | None = Field(description="the model's X-Map speed measured on this server (its last "
                                                        "X-Map job); None: not measured yet")
    seconds: float | None = Field(description="passes / passes_per_second, if measured")
    measured_at: str | None = Field(None, description="when the speed was measured (ISO 8601, UTC)")


class MapState(BaseModel):
    state: Literal["partial", "final"] = Field(description="partial: a later version will replace it")
    stage: str = Field(description="what the map is built on so far, e.g. '64 of 1058 masks' (method 4), "
                                   "'28, 14 px patches' (methods 1-3), or 'final'")


class XMapStatus(BaseModel):
    model: str
    ready: bool
    methods: list[int]
    task: TaskOut | None = None
    urls: dict[str, str] = Field(default_factory=dict, description="'<method>-<image>' -> blended PNG (stored, or "
                                                                  "the latest version while the task runs)")
    map_states: dict[str, MapState] = Field(
        default_factory=dict, description="'<method>-<image>' -> the state of each map that exists so far (stored "
        "maps are final; while the task runs: method 4 first, then methods 1-3 from coarse to fine)")
    eta_seconds: float | None = Field(None, description="seconds until every map is final, at the rate so far "
                                                        "(None when no task runs, and before its first batch)")
    cancel: str | None = Field(None, description="DELETE this URL to stop the running task (it ends 'cancelled', "
                                                 "nothing stored)")
    estimate: CostEstimate | None = Field(None, description="the cost of computing them, while they are not stored")


class PairDetail(BaseModel):
    pair: PairOut
    images: list[ImageOut]
    xmaps: dict[str, XMapStatus]


class ModelView(BaseModel):
    """One model's side of a comparison: its verdict on the pair and the pair's X-Maps of the chosen method."""

    model: str
    result: ResultOut
    xmaps: XMapStatus
    maps: dict[int, str] = Field(description="image (1, 2) -> the blended PNG of the chosen method and scale "
                                             "(served once the X-Maps are stored)")
    faces: dict[int, str] = Field(description="image -> the aligned crop in this model's template")


class Comparison(BaseModel):
    """Two or more models on one pair, side by side: verdicts, confidences and the same method's maps."""

    pair: int
    label: Label
    method: int
    scale: int
    agree: bool = Field(description="whether the models' predictions agree")
    models: list[ModelView]


class ModelResultOut(BaseModel):
    name: str
    pairs: int
    accuracy: float
    mean_confidence: float | None
    xmap_pairs: int
    thresholds: dict[int, float] = Field(description="fold -> the threshold t its pairs were judged with")
    faces_not_found: int = Field(description="pairs with an image in which the model's pipeline found no face")


class DatasetOut(BaseModel):
    name: str
    format: str
    pairs: int
    images: int
    folds: int
    models: list[ModelResultOut]
    example_identity: str | None = Field(description="an identity with the most images in the dataset")


class ModelOut(BaseModel):
    name: str
    description: str
    in_database: bool
    fingerprint: str | None


class ErrorOut(BaseModel):
    """Every error of the API: a message naming the value and what was expected."""

    detail: str
    errors: list[dict] | None = Field(None, description="request validation only: location, message and type")


class TaskOut(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "error", "cancelled"]
    done: int
    total: int
    error: str | None
    result: dict

    @classmethod
    def of(cls, task: object) -> TaskOut:
        """The public view of a background task (any object with these attributes)."""
        return cls.model_validate(task, from_attributes=True)


class VerifyOut(BaseModel):
    distance: float
    threshold: float
    prediction: Label
    confidence: float | None
    model: str
    calibration: str = Field(description="where the threshold and C-Score curve come from")
    faces_found: list[int] | None = Field(None, description="faces the detector found in each photo; the largest "
                                                            "of each was compared (None: not recorded)")
    notes: list[str] = Field(default_factory=list, description="what was chosen, in words (several faces)")
    engine: str = Field("", description="what computed the embeddings: runtime, provider, precision, threads")
    cscore: str | None = Field(None, description="the C-Score variant of the confidence: paper, continuous or "
                                                 "quality-aware (docs/quality.md)")
    quality1: float | None = Field(None, description="face 1's quality by the calibration's measure, if it has one")
    quality2: float | None = Field(None, description="face 2's quality")
    quality_note: str | None = Field(None, description="set when a face's quality lies outside what the "
                                                       "calibration has seen")
    reading: str | None = Field(None, description="the confidence in words where the number alone could mislead: "
                                                  "'more likely wrong than right' below 0.5 (the quality-aware "
                                                  "C-Score's probability that the decision is right, docs/quality.md)")


class ExplainOut(VerifyOut):
    id: str
    faces: list[str]
    task: TaskOut
    xmaps: dict[str, str] = Field(description="'<method>-<image>' -> blended PNG (served once listed in map_states)")
    map_states: dict[str, MapState] = Field(
        default_factory=dict, description="'<method>-<image>' -> the state of each map that exists so far: method 4 "
        "first, fitted on more and more masks, then methods 1-3 patch size by patch size; the PNG/npy routes serve "
        "the latest version")
    eta_seconds: float | None = Field(None, description="seconds until every map is final, at the rate so far "
                                                        "(None before the first batch and once the task ended)")
    cancel: str = Field(description="DELETE this URL to stop the X-Map task (it ends 'cancelled', nothing stored)")
    expires_at: datetime = Field(description="when the upload and everything derived from it are deleted (UTC), "
                                             "unless DELETE /api/uploads/{id} does it before")


class ReportOut(VerifyOut):
    id: str
    methods: dict[int, str] = Field(description="X-Map method -> what it compares")
    faces: list[str]
    xmaps: dict[str, dict[str, str]] = Field(description="'<method>-<image>' -> {'png', 'npy'} of the maps computed")


XMapStatus.model_rebuild()
