"""Photos for the bounded-cost tests and ``benchmarks/bounded_detection.py``: a no-face landscape of any size
(sky, hills and blurred clouds, drawn at a low resolution and upscaled, so its content does not depend on the size
and its JPEG stays small, as a real photo's would) and a constant-colour image."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def landscape(width: int, height: int, seed: int = 0) -> np.ndarray:
    """``uint8 (height, width, 3)``: blue sky over green hills with white clouds, no face anywhere."""
    rng = np.random.default_rng(seed)
    h, w = 120, 160
    y = np.linspace(0, 1, h)[:, None, None]
    sky = (1 - y) * np.array([90, 150, 230]) + y * np.array([190, 215, 240])
    ground = np.array([70, 120, 50]) + rng.normal(0, 6, (h, w, 3))
    horizon = 60 + 12 * np.sin(np.linspace(0, 3 * np.pi, w) + rng.uniform(0, 6))
    small = np.where(np.arange(h)[:, None, None] > horizon[None, :, None], ground, sky)
    for _ in range(5):
        cx, cy, rx, ry = rng.uniform(0, w), rng.uniform(5, 40), rng.uniform(8, 25), rng.uniform(3, 8)
        yy, xx = np.mgrid[0:h, 0:w]
        cloud = np.clip(1.2 - ((xx - cx) / rx) ** 2 - ((yy - cy) / ry) ** 2, 0, 1)[..., None]
        small = small * (1 - cloud) + 245 * cloud
    small = cv2.GaussianBlur(np.clip(small, 0, 255).astype(np.float32), (5, 5), 1.5)
    return np.clip(cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def save_landscape(path: Path, width: int, height: int) -> Path:
    Image.fromarray(landscape(width, height)).save(path, quality=90)
    return path


def save_constant(path: Path, width: int, height: int, colour=(120, 140, 160)) -> Path:
    Image.new("RGB", (width, height), colour).save(path)
    return path
