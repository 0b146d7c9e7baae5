"""The image-statistics quality score (sharpness x exposure x contrast) of an aligned face crop.

It needs no model and says nothing about the face model's view of the image: ``docs/quality.md`` measures it
against the model-based score (:mod:`xfv.quality.stability`) by the error-versus-discard curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SHARPNESS_SCALE = 60.0  # variance of the Laplacian at which the sharpness term reaches 1 - 1/e (LFW crops: 20-150)
CONTRAST_SCALE = 40.0  # grey-level standard deviation from which contrast counts as full


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
