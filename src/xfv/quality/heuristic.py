"""The image-statistics quality score (sharpness x exposure x contrast) of an aligned face crop, and the face's
sharpness on its own, the second measure the quality-aware C-Score reads, on the model's own crop (docs/quality.md).

They need no model and say nothing about the face model's view of the image: ``docs/quality.md`` measures them
against the model-based score (:mod:`xfv.quality.stability`) by the error-versus-discard curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SHARPNESS_SCALE = 60.0  # variance of the Laplacian at which the sharpness term reaches 1 - 1/e (LFW crops: 20-150)
CONTRAST_SCALE = 40.0  # grey-level standard deviation from which contrast counts as full


SHARPNESS = "sharpness"  # the measure's name in calibrations
SHARPNESS_SIZE = 112  # the sharpness measure reads a face crop at this size (the model's crop, resized)


@dataclass(frozen=True)
class ImageQuality:
    """Measures on the aligned grey crop; ``quality`` in [0, 100] combines them (see :func:`quality_score`)."""

    quality: float
    sharpness: float
    brightness: float
    contrast: float


def quality_score(crop: np.ndarray) -> ImageQuality:
    """Image quality of an aligned ``uint8 (H, W, 3)`` face crop.

    ``sharpness`` = variance of the Laplacian of the grey crop (blur lowers it), ``brightness`` = mean grey
    level (0-255), ``contrast`` = grey-level standard deviation. ``quality = 100 * s * e * c`` with
    ``s = 1 - exp(-sharpness / 60)``, ``e = 1 - ((brightness - 127.5) / 127.5)^2`` (under/over-exposure) and
    ``c = min(1, contrast / 40)``.
    """
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY).astype(np.float64)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    brightness = float(grey.mean())
    contrast = float(grey.std())
    s = 1.0 - np.exp(-sharpness / SHARPNESS_SCALE)
    e = max(0.0, 1.0 - ((brightness - 127.5) / 127.5) ** 2)
    c = min(1.0, contrast / CONTRAST_SCALE)
    return ImageQuality(float(100.0 * s * e * c), sharpness, brightness, contrast)


def sharpness_measure(laplacian_variance: float | np.ndarray) -> float | np.ndarray:
    """The sharpness measure: ``log(1 + S)`` of the variance ``S`` of the Laplacian of a grey 112 px face crop; the
    log makes blur's multiplicative effect additive."""
    return np.log1p(laplacian_variance)


def crop_sharpness(crop: np.ndarray) -> float:
    """:func:`sharpness_measure` of an aligned crop, resized to 112 px first if it has another size (the quality-aware
    C-Score reads it on the crop the model embeds: :mod:`xfv.quality.rating`)."""
    crop = np.ascontiguousarray(crop)
    if crop.shape[0] != SHARPNESS_SIZE:
        crop = cv2.resize(crop, (SHARPNESS_SIZE, SHARPNESS_SIZE),
                          interpolation=cv2.INTER_AREA if crop.shape[0] > SHARPNESS_SIZE else cv2.INTER_LINEAR)
    return float(sharpness_measure(quality_score(crop).sharpness))

