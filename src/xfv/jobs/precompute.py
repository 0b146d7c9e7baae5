"""Precompute a dataset for the platform: every pair's distance, fold-wise threshold and C-Score per model,
the calibrations, and X-Maps for a chosen number of pairs.

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

from xfv.confidence import Calibration
from xfv.datasets import Pair as PairRecord
from xfv.datasets import PairList
from xfv.jobs.cluster import ModelSpec, PairWork, distinct_images, run_in_process, run_on_cluster, store_maps
from xfv.jobs.embeddings import pair_distances
from xfv.jobs.evaluate import evaluate_scores
from xfv.jobs.explain import expected_rows, job_rate, make_explainer, passes_per_face, record_rate
from xfv.jobs.verify import dataset_calibration
from xfv.models import EmbeddingModel
from xfv.store.db import transaction
from xfv.store.models import CalibrationRecord, Dataset, Image, ModelRecord, Pair, Result, XMapRecord
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
        for table in (Result, CalibrationRecord, XMapRecord):
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
    """Distances (Eq. 1), the fold-wise fits, and each pair's threshold and C-Score (Eq. 3) out of fold; on a
    dataset too small for a calibration, from the model's shipped one (:func:`dataset_calibration`), named per
    result either way."""
    detectors: dict[str, str] = {}
    distances = pair_distances(pair_list, model, progress=progress, detectors=detectors)
    labels = np.array([p.label for p in pair_list.pairs])
    folds = np.array([p.fold for p in pair_list.pairs])
    evaluation = evaluate_scores(distances, labels, folds)
    calibration = Calibration.fit(distances, labels, model=model.name, dataset=dataset.name,
                                  fingerprint=model.fingerprint)
    shipped, calibration_name = dataset_calibration(calibration, model.fingerprint)
    if shipped is None:
        columns = evaluation.columns
        threshold = columns["threshold"].astype(float)
        prediction = columns["prediction"] == "same"
        confidence = columns.get("confidence")
    else:
        threshold = np.full(len(distances), float(shipped.threshold))
        prediction = shipped.predictions(distances)
        confidence = shipped.confidence(distances)
    correct = prediction == (labels == 1)
    with transaction(factory) as session:
        session.execute(delete(Result).where(Result.model_id == record.id, Result.pair_id.in_(pair_ids)))
        session.execute(delete(CalibrationRecord).where(CalibrationRecord.model_id == record.id,
                                                        CalibrationRecord.dataset_id == dataset.id))
        session.add_all(Result(
            pair_id=pair_id, model_id=record.id, distance=float(distances[i]), threshold=float(threshold[i]),
            prediction=bool(prediction[i]), correct=bool(correct[i]),
            confidence=None if confidence is None or not np.isfinite(confidence[i]) else float(confidence[i]),
            calibration=calibration_name, engine=model.engine, face1=detectors[str(pair_list.path(pair.image1))],
            face2=detectors[str(pair_list.path(pair.image2))],
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
