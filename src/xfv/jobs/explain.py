"""Explaining one stored pair for the platform: its aligned faces, the X-Maps of every method, stored at once.

Used by ``xfv precompute`` and by the web app's on-demand X-Maps alike, so both give the same maps for a pair.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from xfv.errors import NotFoundError
from xfv.faces import detect_and_align, load_image, model_detector
from xfv.jobs.embeddings import dataset_detector
from xfv.models import EmbeddingModel
from xfv.store.db import transaction
from xfv.store.maps import encode_map
from xfv.store.models import ModelRecord, Pair, XMapRecord, utcnow
from xfv.xmaps import (
    METHODS,
    PATCH_METHODS,
    CoalitionDesign,
    Explanation,
    OcclusionCache,
    OcclusionConfig,
    Progress,
    XMapExplainer,
)
from xfv.xmaps.occlusion import IMAGE_SIZE

FINAL_SCALE = 0


MIN_RATE_PASSES = 256  # fewer passes than this measure start-up more than speed: no rate is recorded


def make_explainer(model: EmbeddingModel, *, disk_cache: bool = True) -> XMapExplainer:
    """The explainer the platform uses: paper defaults, occlusion embeddings cached on disk (``disk_cache=False``:
    kept in memory only, for faces that must leave no file behind, e.g. uploaded photos)."""
    return XMapExplainer(model, cache=OcclusionCache() if disk_cache else None)


def passes_per_face(explainer: XMapExplainer | None = None) -> int:
    """Forward passes the X-Maps of every method need for one face: the original, the occlusions (methods 1-3)
    and the masked faces (method 4); a pair needs twice that unless a face's embeddings are cached. Without an
    explainer: those of :func:`make_explainer`'s (the explainer's defaults), for any model."""
    occlusion = explainer.occlusion if explainer else OcclusionConfig()
    masks = explainer.coalitions.masks if explainer else CoalitionDesign().masks
    return 1 + occlusion.count() + masks


def measure_rate(model: EmbeddingModel, batch: int = 64, batches: int = 2) -> float:
    """Forward passes per second of ``model`` on batches of ``batch`` 112 x 112 faces (a warm-up batch first): the
    speed X-Maps run at, measured when no X-Map job has measured it yet."""
    faces = np.random.default_rng(0).integers(0, 256, (batch, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    model.embed(faces)
    started = time.perf_counter()
    for _ in range(batches):
        model.embed(faces)
    return batch * batches / (time.perf_counter() - started)


def job_rate(passes: int, seconds: float) -> float | None:
    """The passes per second of an X-Map job that ran ``passes`` forward passes in ``seconds``; None below
    :data:`MIN_RATE_PASSES` (mostly cached: such a job measures its overhead, not the model)."""
    return passes / seconds if passes >= MIN_RATE_PASSES and seconds > 0 else None


def record_rate(session: Session, model_id: int, rate: float | None) -> None:
    """Store the model's measured X-Map speed (passes per second here, its newest measurement); None: keep it."""
    record = session.get(ModelRecord, model_id)
    if record is not None and rate is not None:
        record.passes_per_second, record.rate_measured_at = float(rate), utcnow()


def aligned_face(root: str | Path, relative: str, model: EmbeddingModel, *, data: bytes | None = None) -> np.ndarray:
    """A dataset image as the 112 x 112 crop in the model's template (the detector of the benchmark pipeline).

    ``data``: the file's bytes, read elsewhere (a cluster worker need not see the dataset's folder).
    """
    image = load_image(Path(root) / relative if data is None else data)
    # several faces: the detector picks the subject, as in the embedding jobs
    return detect_and_align(image, alignment=model.config.alignment, size=IMAGE_SIZE,
                            detector=model_detector(dataset_detector(), model.config.detector), name=relative).crop


def explain_pair(factory: sessionmaker[Session], pair_id: int, model: EmbeddingModel, *,
                 explainer: XMapExplainer | None = None, progress: Progress | None = None,
                 publish: Callable[[Explanation], None] | None = None) -> None:
    """Compute and store all X-Maps of one pair (methods, scales), in one transaction (replacing old ones).

    ``publish``: called with each explanation of :meth:`~xfv.xmaps.XMapExplainer.stream` as it arrives (partial
    ones, then the final one, before it is stored), e.g. to show maps while they are computed; only the final maps
    are stored, the same as without it."""
    with factory() as session:
        pair = session.get(Pair, pair_id)
        if pair is None:
            raise NotFoundError(f"No pair with id {pair_id}.")
        root, path1, path2 = pair.dataset.root, pair.image1.path, pair.image2.path
    started = time.perf_counter()
    face1, face2 = aligned_face(root, path1, model), aligned_face(root, path2, model)
    explainer = explainer or make_explainer(model)
    if publish is None:
        explanation = explainer.explain(face1, face2, methods=METHODS, progress=progress)
    else:
        for explanation in explainer.stream(face1, face2, methods=METHODS, progress=progress):
            publish(explanation)
    with transaction(factory) as session:
        record = session.scalar(select(ModelRecord).where(ModelRecord.name == model.name))
        if record is None or record.fingerprint != model.fingerprint:
            raise NotFoundError(f"Model {model.name!r} has no results in the database with this configuration; "
                                "run 'xfv precompute' with it first.")
        replace_maps(session, pair_id, record.id, explanation_rows(explanation),
                     map_options(explanation, model.engine))
        record_rate(session, record.id, job_rate(explanation.forward_passes, time.perf_counter() - started))


MapRow = tuple[int, int, int, bytes]
"""``(method, image, scale, encoded map)``: one row of a pair's X-Maps; scale 0 is the final map."""


def explanation_rows(explanation: Explanation) -> list[MapRow]:
    """Every map of an explanation to store: the final map (scale 0) and each patch size's, both images."""
    return [(method, image, scale, encode_map(xmap))
            for method in sorted(explanation.maps) for image in (1, 2)
            for scale, xmap in ((FINAL_SCALE, explanation.map(method, image)),
                                *((p, explanation.scale_map(method, image, p))
                                  for p in sorted(explanation.scale_maps[method])))]


def expected_rows(occlusion: OcclusionConfig) -> int:
    """How many rows a pair's complete X-Maps have (see :func:`explanation_rows`): per method and image the final
    map, and for methods 1-3 one per patch size."""
    return sum(2 * (1 + (len(occlusion.patch_sizes) if method in PATCH_METHODS else 0)) for method in METHODS)


def map_options(explanation: Explanation, engine: str = "") -> dict:
    """What a stored map was computed with (the ``options`` column): occlusion, distance and the model's engine."""
    return {"occlusion": repr(explanation.occlusion), "distance": explanation.distance,
            **({"engine": engine} if engine else {})}


def replace_maps(session: Session, pair_id: int, model_id: int, rows: list[MapRow], options: dict) -> None:
    """Replace a pair's stored maps of one model by ``rows`` (in the caller's transaction)."""
    session.execute(delete(XMapRecord).where(XMapRecord.pair_id == pair_id, XMapRecord.model_id == model_id))
    session.add_all(XMapRecord(pair_id=pair_id, model_id=model_id, method=method, image=image, scale=scale,
                               data=data, options=options) for method, image, scale, data in rows)
