"""Rating a face for the quality-aware C-Score: both measures from the crop the model embeds (the model's own
detection and template), in the same batch as its embedding (docs/quality.md).

Per face the rating is one row, cached per image beside its embedding: the ``P`` cosine distances between the
embedding and those of its perturbations (:mod:`xfv.quality.stability`), then the sharpness measure of the same crop
(:func:`xfv.quality.heuristic.crop_sharpness`). :func:`qualities` turns rows into the measures of
:data:`QUALITY_MEASURES`. A face's quality therefore always belongs to the face that was verified: no second
detector, no other crop.
"""

from __future__ import annotations

import numpy as np

from xfv.models import EmbeddingModel
from xfv.quality.heuristic import SHARPNESS, crop_sharpness
from xfv.quality.stability import MEASURE as STABILITY
from xfv.quality.stability import embed_with_perturbations, perturbation_distances, stability_from_distances

QUALITY_MEASURES = (STABILITY, SHARPNESS)  # what the quality-aware C-Score reads, in this order


def rate_crops(model: EmbeddingModel, crops: np.ndarray,
               perturbations: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The embeddings ``(N, D)`` of the model's crops and their ratings ``(N, P + 1)`` (the perturbation distances,
    then the crop's sharpness measure), from one batched model call."""
    if not perturbations:
        raise ValueError("a rating needs at least one perturbation (xfv.quality.stability.PERTURBATIONS).")
    embeddings, perturbed = embed_with_perturbations(model, crops, perturbations)
    sharpness = np.array([[crop_sharpness(crop)] for crop in crops], dtype=np.float64).reshape(len(crops), 1)
    return embeddings, np.concatenate([perturbation_distances(embeddings, perturbed), sharpness], axis=1)


def qualities(ratings: np.ndarray, measures: tuple[str, ...] = QUALITY_MEASURES) -> np.ndarray:
    """``(N, M)``: the ``measures`` (of :data:`QUALITY_MEASURES`) of each rated face."""
    unknown = [m for m in measures if m not in QUALITY_MEASURES]
    if unknown:
        raise ValueError(f"Unknown quality measure(s) {unknown}; expected some of {list(QUALITY_MEASURES)}.")
    ratings = np.asarray(ratings, dtype=np.float64)
    columns = {STABILITY: stability_from_distances(ratings[:, :-1]), SHARPNESS: ratings[:, -1]}
    return np.stack([columns[m] for m in measures], axis=1)
