"""Model-based face image quality: how stable the model's embedding of a face stays under small perturbations.

The idea of SER-FIQ (Terhörst et al., CVPR 2020: a face the model represents robustly keeps its embedding under
random sub-networks) without dropout, so that it works for any embedding model treated as a black box: the
aligned crop is perturbed in a few fixed, deterministic ways (:data:`PERTURBATIONS`), every perturbed crop is
embedded in one batch with the original, and the quality is

    ``q = 1 - mean_i d(N(I), N(P_i(I)))``  (Eq. 1's cosine distance, averaged over the perturbations),

in [-1, 1], 1 when no perturbation moves the embedding. It is comparable within one model only (each model has
its own distance scale). The perturbations are geometric (mirror, shifts, zooms) and occlusions of the regions
a face is recognised by; none removes detail that a degraded photo lacks already (a blur would move a sharp face
more than a blurred one, the wrong way round).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from xfv.models import EmbeddingModel

MEASURE = "stability"  # the name calibrations and the database record for this quality
SHIFT = 0.03  # of the crop side
ZOOM = 0.08
PATCH = 0.25  # occluding patch side, of the crop side
GREY = 127
# Patch centres (x, y) as fractions of the crop: both eyes, the nose, the mouth (between the dlib chip's and the
# ArcFace template's positions; a quarter-side patch covers either).
REGIONS = {"eye1": (0.33, 0.42), "eye2": (0.67, 0.42), "nose": (0.5, 0.6), "mouth": (0.5, 0.78)}


def _affine(crop: np.ndarray, scale: float, dx: float, dy: float) -> np.ndarray:
    size = crop.shape[0]
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), 0.0, scale)
    matrix[:, 2] += (dx * size, dy * size)
    return cv2.warpAffine(crop, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _occlude(crop: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    size = crop.shape[0]
    half = PATCH * size / 2
    x0, y0 = round(centre[0] * size - half), round(centre[1] * size - half)
    x1, y1 = round(centre[0] * size + half), round(centre[1] * size + half)
    out = crop.copy()
    out[max(0, y0):y1, max(0, x0):x1] = GREY
    return out


PERTURBATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "flip": lambda c: np.ascontiguousarray(c[:, ::-1]),
    "shift+": lambda c: _affine(c, 1.0, SHIFT, SHIFT),
    "shift-": lambda c: _affine(c, 1.0, -SHIFT, -SHIFT),
    "zoom+": lambda c: _affine(c, 1.0 + ZOOM, 0.0, 0.0),
    "zoom-": lambda c: _affine(c, 1.0 - ZOOM, 0.0, 0.0),
    **{f"occlude-{name}": (lambda c, centre=centre: _occlude(c, centre)) for name, centre in REGIONS.items()},
}

# The stored quality: the five geometric perturbations (5 extra passes per image). docs/quality.md chose them by the
# error-versus-discard curve over the occlusions and all nine together.
DEFAULT_PERTURBATIONS = ("flip", "shift+", "shift-", "zoom+", "zoom-")


def perturbed_crops(crops: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """``(N * len(names), S, S, 3)``: each crop's perturbations in the order of ``names``, crop by crop."""
    unknown = [n for n in names if n not in PERTURBATIONS]
    if unknown:
        raise ValueError(f"Unknown perturbation(s) {unknown}; expected names from {list(PERTURBATIONS)}.")
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[1] != crops.shape[2] or crops.shape[3] != 3 or crops.dtype != np.uint8:
        raise ValueError(f"crops must be uint8 (N, S, S, 3), got {crops.dtype} {crops.shape}.")
    if not len(crops) or not names:
        return crops[:0]
    return np.stack([PERTURBATIONS[name](crop) for crop in crops for name in names])


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)


def perturbation_distances(embeddings: np.ndarray, perturbed: np.ndarray) -> np.ndarray:
    """``(N, P)`` cosine distances between each embedding ``(N, D)`` and its ``P`` perturbed ones ``(N, P, D)``."""
    return 1.0 - np.einsum("nd,npd->np", _unit(embeddings), _unit(perturbed))


def stability_from_distances(distances: np.ndarray) -> np.ndarray:
    """``q = 1 - mean_i d_i`` per row of an ``(N, P)`` array of perturbation distances."""
    return 1.0 - np.asarray(distances, dtype=np.float64).mean(axis=1)


def embed_with_perturbations(model: EmbeddingModel, crops: np.ndarray,
                             names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The embeddings of the crops ``(N, D)`` and of their perturbations ``(N, P, D)``, in one batched call."""
    crops = np.asarray(crops)
    batch = np.concatenate([crops, perturbed_crops(crops, names)]) if len(crops) else crops
    embeddings = model.embed(batch)
    n = len(crops)
    return embeddings[:n], embeddings[n:].reshape(n, len(names), embeddings.shape[1])
