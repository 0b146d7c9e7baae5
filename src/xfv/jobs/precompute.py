"""Precompute a dataset for the platform: every pair's distance, fold-wise threshold and C-Score per model,
each image's model-based quality, the calibrations, and X-Maps for a chosen number of pairs.

The stored confidence is the quality-aware C-Score (docs/quality.md), out of fold like the paper's, whose fold
fits are stored beside it (Fig. 2); a dataset too small for a calibration of its own is judged by the model's
shipped calibration, by its default variant. Each result names its calibration and variant.

Idempotent and resumable: a model's results for a dataset are written in one transaction (thresholds and
C-Scores depend on all pairs, so they are one unit), X-Maps in batches of whole pairs (:mod:`xfv.jobs.cluster`,
in-process or on Dask); finished pairs are skipped on the next run, and the embedding and occlusion caches make
an interrupted unit cheap to redo.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Integer, cast, delete, func, select
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from xfv.confidence import Calibration, CScore
from xfv.confidence.calibration_file import QUALITY_AWARE, QualityMeasure
from xfv.confidence.quality_aware import QualityAwareCScore
from xfv.datasets import Pair as PairRecord
from xfv.datasets import PairList
from xfv.jobs.cluster import ModelSpec, PairWork, distinct_images, run_in_process, run_on_cluster, store_maps
from xfv.jobs.embeddings import pair_distances_and_qualities
from xfv.jobs.evaluate import VARIANT_METHODS, evaluate_scores
from xfv.jobs.explain import expected_rows, job_rate, make_explainer, passes_per_face, record_rate
from xfv.jobs.verify import dataset_calibration
from xfv.models import EmbeddingModel
from xfv.quality import QUALITY_MEASURES, STABILITY
from xfv.quality.stability import DEFAULT_PERTURBATIONS, MEASURE
from xfv.store.db import transaction
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
from xfv.store.queries import get_dataset, results_calibration

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True)
class PrecomputeReport:
    dataset: str
    model: str
    pairs: int
    results_computed: bool
    accuracy: float
    xmaps_computed: int
    xmaps_skipped: int
    # this run's X-Maps: distinct images, forward passes they need (cached ones included), wall time
    xmap_images: int = 0
    xmap_passes: int = 0
    xmap_seconds: float = 0.0
    calibration: str = ""  # the name of the calibration behind the stored thresholds and C-Scores
    passes_run: int = 0  # forward passes run in this process (not counting cached embeddings nor a cluster's)


def register_model(session: Session, model: EmbeddingModel) -> ModelRecord:
    """The model's row, created if new; a changed fingerprint drops the model's stale results and maps."""
    record = session.scalar(select(ModelRecord).where(ModelRecord.name == model.name))
    if record is None:
        record = ModelRecord(name=model.name, fingerprint=model.fingerprint, description=repr(model))
        session.add(record)
    elif record.fingerprint != model.fingerprint:
        for table in (Result, CalibrationRecord, XMapRecord, ImageQualityRecord):
            session.execute(delete(table).where(table.model_id == record.id))
        record.fingerprint, record.description = model.fingerprint, repr(model)
    session.flush()
    return record


def dataset_pair_list(session: Session, dataset: Dataset) -> tuple[PairList, list[int]]:
    """The stored pairs as a :class:`PairList` (in pair-list order) and their database ids."""
    image1, image2 = Image.__table__.alias("i1"), Image.__table__.alias("i2")
    rows = session.execute(
        select(Pair.id, Pair.position, Pair.fold, Pair.label, image1.c.path, image2.c.path,
               image1.c.identity, image2.c.identity)
        .join(image1, image1.c.id == Pair.image1_id)
        .join(image2, image2.c.id == Pair.image2_id)
        .where(Pair.dataset_id == dataset.id)
        .order_by(Pair.position)
    ).all()
    pairs = [PairRecord(position, fold, label, p1, p2, id1, id2)
             for _, position, fold, label, p1, p2, id1, id2 in rows]
    return PairList(dataset.name, Path(dataset.root), pairs), [row[0] for row in rows]


def xmap_selection(pair_ids: list[int], count: int | None, positions: Sequence[int] | None = None) -> list[int]:
    """``count`` pairs spread evenly over the list (so over folds and both labels); None: all pairs.
    ``positions``: these pairs instead (0-based places in the pair list), e.g. pairs that share images."""
    if positions is not None:
        outside = [p for p in positions if not 0 <= p < len(pair_ids)]
        if outside:
            raise ValueError(f"Pair positions {outside} are outside the dataset's {len(pair_ids)} pairs.")
        return [pair_ids[p] for p in dict.fromkeys(positions)]
    if count is None or count >= len(pair_ids):
        return list(pair_ids)
    if count <= 0:
        return []
    return [pair_ids[i] for i in np.linspace(0, len(pair_ids) - 1, count).round().astype(int)]


def precompute(
    factory: sessionmaker[Session], dataset_name: str, model: EmbeddingModel, *, xmaps: int | None = 0,
    progress: bool = False, client: Client | None = None, spec: ModelSpec | None = None,
    xmap_positions: Sequence[int] | None = None,
) -> PrecomputeReport:
    """Results and calibrations of ``model`` on the dataset, then X-Maps for ``xmaps`` pairs (None: all), or for
    the pairs at ``xmap_positions`` in the list.

    X-Maps run in work units (:mod:`xfv.jobs.cluster`): in this process, or on the Dask ``client``'s cluster,
    whose workers build the model from ``spec`` (default: ``model``'s name with default options). Pairs whose
    maps are all stored are skipped, so an interrupted run resumes where it stopped. In this process, the
    progress bar counts forward passes, and the passes per second measured are stored with the model (the
    viewer's estimate of what a map job costs).
    """
    with transaction(factory) as session:
        dataset = get_dataset(session, dataset_name)
        record = register_model(session, model)
        pair_list, pair_ids = dataset_pair_list(session, dataset)
        done = session.scalar(select(func.count(Result.id)).join(Pair).where(
            Pair.dataset_id == dataset.id, Result.model_id == record.id, Result.calibration.is_not(None),
            Result.cscore.is_not(None),  # results from before the image qualities are recomputed
            Result.face1.is_not(None), Result.face2.is_not(None))) or 0
    if not pair_ids:
        raise ValueError(f"Dataset {dataset_name!r} has no pairs; run 'xfv ingest' first.")
    computed = done != len(pair_ids)
    if computed:
        _compute_results(factory, dataset, record, model, pair_list, pair_ids, progress)
    with factory() as session:
        accuracy = session.scalar(select(func.avg(cast(Result.correct, Integer))).join(Pair).where(
            Pair.dataset_id == dataset.id, Result.model_id == record.id))
        calibration = results_calibration(session, dataset, record) or ""
    selected = xmap_selection(pair_ids, xmaps, xmap_positions)
    explainer = make_explainer(model)
    with factory() as session:
        complete = set(session.scalars(
            select(XMapRecord.pair_id).where(XMapRecord.model_id == record.id, XMapRecord.pair_id.in_(selected))
            .group_by(XMapRecord.pair_id).having(func.count(XMapRecord.id) == expected_rows(explainer.occlusion))))
    by_id = dict(zip(pair_ids, pair_list.pairs))
    root = str(pair_list.root)
    todo = [PairWork(pair_id, (root, by_id[pair_id].image1), (root, by_id[pair_id].image2))
            for pair_id in selected if pair_id not in complete]
    images = len(distinct_images(todo))
    passes = passes_per_face(explainer)
    started = time.perf_counter()
    ran = [0]  # forward passes the model ran in this process (cached embeddings run none)
    if client is None:
        bar = tqdm(total=images * passes, desc=f"X-Maps ({model.name}, {len(todo)} pairs, {images} images)",
                   unit="pass", unit_scale=True, disable=not progress or not todo)

        def on_passes(count: int) -> None:
            ran[0] += count
            bar.update(count)

        results = run_in_process(explainer, todo, on_passes)
        with bar:
            store_maps(factory, model, record.id, results)
    else:
        results = run_on_cluster(client, spec or ModelSpec(model.name), todo)
        with tqdm(total=len(todo), desc=f"X-Maps ({model.name})", unit="pair", disable=not progress) as bar:
            store_maps(factory, model, record.id, results, on_stored=bar.update)
    seconds = time.perf_counter() - started
    if job_rate(ran[0], seconds):
        with transaction(factory) as session:
            record_rate(session, record.id, job_rate(ran[0], seconds))
    return PrecomputeReport(dataset.name, model.name, len(pair_ids), computed, float(accuracy or 0.0),
                            len(todo), len(selected) - len(todo), images, images * passes, seconds, calibration,
                            ran[0])


def _compute_results(factory: sessionmaker[Session], dataset: Dataset, record: ModelRecord, model: EmbeddingModel,
                     pair_list: PairList, pair_ids: list[int], progress: bool) -> None:
    """Distances (Eq. 1), image qualities, the fold-wise fits, and each pair's threshold and C-Score (Eq. 3) out
    of fold (the quality-aware variant); on a dataset too small for a calibration, from the model's shipped one
    (:func:`dataset_calibration`, its default variant), named per result either way; the detector that found each
    face."""
    detectors: dict[str, str] = {}
    labels = np.array([p.label for p in pair_list.pairs])
    folds = np.array([p.fold for p in pair_list.pairs])
    distances, quality1, quality2 = pair_distances_and_qualities(  # both measures from the crop the model embeds
        pair_list, model, progress=progress, perturbations=DEFAULT_PERTURBATIONS, measures=QUALITY_MEASURES,
        detectors=detectors)
    stability1, stability2 = (q[:, QUALITY_MEASURES.index(STABILITY)] for q in (quality1, quality2))
    evaluation = evaluate_scores(distances, labels, folds, quality1=quality1, quality2=quality2)
    calibration = Calibration.fit(distances, labels, model=model.name, dataset=dataset.name,
                                  fingerprint=model.fingerprint)
    t = calibration.threshold
    calibration = calibration.with_variants(
        continuous=CScore(continuous=True).fit(distances, labels, t),
        quality_aware=QualityAwareCScore().fit(distances, labels, quality1, quality2, t),
        quality=QualityMeasure.of(QUALITY_MEASURES, DEFAULT_PERTURBATIONS, quality1, quality2),
        quality_dataset=dataset.name, quality_pairs=len(distances), default=QUALITY_AWARE)
    shipped, calibration_name = dataset_calibration(calibration, model.fingerprint)
    if shipped is None:
        columns = evaluation.columns
        threshold = columns["threshold"].astype(float)
        prediction = columns["prediction"] == "same"
        confidence, variant = evaluation.confidences[VARIANT_METHODS[QUALITY_AWARE]], QUALITY_AWARE
    else:
        threshold = np.full(len(distances), float(shipped.threshold))
        prediction = shipped.predictions(distances)
        if shipped.quality is not None and shipped.quality.perturbations != DEFAULT_PERTURBATIONS:
            raise ValueError(f"The shipped calibration of {model.name} reads the stability under "
                             f"{shipped.quality.perturbations}, not {DEFAULT_PERTURBATIONS}: refit it.")
        scored = shipped.score(distances, quality1, quality2)
        confidence, variant = scored.confidence, scored.variant
    correct = prediction == (labels == 1)
    with transaction(factory) as session:
        image_ids = dict(session.execute(select(Image.path, Image.id).where(Image.dataset_id == dataset.id)).all())
        session.execute(delete(Result).where(Result.model_id == record.id, Result.pair_id.in_(pair_ids)))
        session.execute(delete(CalibrationRecord).where(CalibrationRecord.model_id == record.id,
                                                        CalibrationRecord.dataset_id == dataset.id))
        session.execute(delete(ImageQualityRecord).where(ImageQualityRecord.model_id == record.id,
                                                         ImageQualityRecord.image_id.in_(image_ids.values())))
        rated = {}
        for pair, q1, q2 in zip(pair_list.pairs, stability1, stability2):
            rated.setdefault(image_ids[pair.image1], float(q1))
            rated.setdefault(image_ids[pair.image2], float(q2))
        session.add_all(ImageQualityRecord(image_id=image_id, model_id=record.id, measure=MEASURE, quality=q)
                        for image_id, q in rated.items())
        session.add_all(Result(
            pair_id=pair_id, model_id=record.id, distance=float(distances[i]), threshold=float(threshold[i]),
            prediction=bool(prediction[i]), correct=bool(correct[i]),
            confidence=None if confidence is None or not np.isfinite(confidence[i]) else float(confidence[i]),
            calibration=calibration_name, cscore=variant, engine=model.engine,
            face1=detectors[str(pair_list.path(pair.image1))], face2=detectors[str(pair_list.path(pair.image2))],
        ) for i, (pair_id, pair) in enumerate(zip(pair_ids, pair_list.pairs)))
        for fold in evaluation.summary["folds"]:
            session.add(CalibrationRecord(model_id=record.id, dataset_id=dataset.id, fold=int(fold["fold"]),
                                          threshold=float(fold["threshold"]), accuracy=fold.get("accuracy"),
                                          parameters=_json_ready(fold)))
        session.add(CalibrationRecord(model_id=record.id, dataset_id=dataset.id, fold=None,
                                      threshold=float(calibration.threshold),
                                      accuracy=float(evaluation.summary["accuracy_mean"]),
                                      parameters=calibration.to_dict()))


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
