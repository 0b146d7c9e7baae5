"""X-Maps from occluded embeddings (method.md §3): methods 1-3 (Eq. 6-8), Eq. 9, Eq. 10, blur and normalisation.

All functions take embeddings already scaled to unit length, so every cosine distance (Eq. 1) is
``1 - a.b`` and method 1's ``N x N`` distances are one matrix product. Method 4 (beyond the paper, chosen by the
faithfulness benchmark, docs/faithfulness.md) is built from random coalitions of face cells instead of single
patches: :mod:`xfv.xmaps.coalitions`.
"""

from __future__ import annotations

import cv2
import numpy as np

from xfv.xmaps.occlusion import IMAGE_SIZE, PatchGrid, odd_kernel

METHODS = (1, 2, 3, 4)
DESCRIPTIONS = {
    1: "each occlusion of one face against every occlusion of the other, averaged (Eq. 6)",
    2: "each occlusion of one face against the other face intact (Eq. 7)",
    3: "both faces occluded at the same place (Eq. 8)",
    4: "what each region adds to the similarity over random coalitions of regions (beyond the paper; "
       "docs/faithfulness.md)",
}
PATCH_METHODS = (1, 2, 3)  # built from single-patch occlusions: a map per patch size besides the final one
DEFAULT_METHOD = 4  # the platform's default view: the most faithful in docs/faithfulness.md


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (``float64``); a zero row is an error, as in Eq. 1."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(embeddings, axis=-1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(embeddings)):
        raise ValueError(
            "The model returned a zero, NaN or infinite embedding; the cosine distance is undefined."
        )
    return embeddings / norms


def _distance(dot_products: np.ndarray) -> np.ndarray:
    """Eq. 1 for unit vectors."""
    return np.clip(1.0 - dot_products, 0.0, 2.0)


def method_distances(
    method: int, occluded1: np.ndarray, occluded2: np.ndarray, original1: np.ndarray, original2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(D1, D2)`` for one patch size from unit embeddings ``F1, F2 (N, D)`` and ``N(I1), N(I2) (D,)``.

    Method 1 (Eq. 6): ``D1_i = mean_j d(F1_i, F2_j)``, ``D2_j = mean_i d(F1_i, F2_j)``.
    Method 2 (Eq. 7): ``D1_i = d(F1_i, N(I2))``, ``D2_i = d(N(I1), F2_i)``.
    Method 3 (Eq. 8): ``D1_i = D2_i = d(F1_i, F2_i)``.
    """
    if method == 1:
        matrix = _distance(occluded1 @ occluded2.T)
        return matrix.mean(axis=1), matrix.mean(axis=0)
    if method == 2:
        return _distance(occluded1 @ original2), _distance(occluded2 @ original1)
    if method == 3:
        same_place = _distance(np.einsum("nd,nd->n", occluded1, occluded2))
        return same_place, same_place
    raise ValueError(f"method must be one of {PATCH_METHODS}, got {method!r}.")


def similarity_map(distances: np.ndarray, original_distance: float, grid: PatchGrid) -> np.ndarray:
    """Eq. 9: ``S = sum_i (d_i - d_orig) M_i / N`` with ``M_i`` the binary patch footprints."""
    if len(distances) != len(grid):
        raise ValueError(
            f"Expected {len(grid)} distances for patch size {grid.patch_size}, got {len(distances)}."
        )
    total = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float64)
    for delta, (ys, xs, footprint) in zip(distances - original_distance, grid.masks()):
        total[ys, xs] += delta * footprint
    return total / len(grid)


def multiscale_map(maps: dict[int, np.ndarray]) -> np.ndarray:
    """Eq. 10: ``S_bar = sum_p S_p / (p^2 |P|)`` over the patch sizes ``P`` (small patches weigh more)."""
    return sum(s / (p * p) for p, s in maps.items()) / len(maps)


def blur_map(similarity: np.ndarray, stride: int) -> np.ndarray:
    """Gaussian blur, ``s x s`` kernel and sigma ``s``, against the stride's raster (even ``s``: ``s+1``)."""
    kernel = odd_kernel(stride)
    return cv2.GaussianBlur(similarity, (kernel, kernel), sigmaX=stride)


def normalise_map(similarity: np.ndarray) -> np.ndarray:
    """Scale to [-1, 1] by the largest absolute value (0 stays 0; an all-zero map stays zero): ``float32``."""
    peak = float(np.max(np.abs(similarity)))
    if peak == 0.0:
        return np.zeros_like(similarity, dtype=np.float32)
    return (similarity / peak).astype(np.float32)
