"""Colour blending, Algorithm 2 (method.md §4): the map's colour over the face's lightness.

The normalised map is coloured with a diverging map (default ``red-green``: red at -1 = dissimilar, white
at 0, green at +1 = similar; ``PiYG``: matplotlib's map, as in the authors' code). The result takes its hue
from the coloured map (HLS), its saturation from the coloured map (HSV) and its lightness from the face (HLS).
"""

from __future__ import annotations

import cv2
import numpy as np

COLORMAPS = ("red-green", "PiYG")


def colorize(similarity: np.ndarray, colormap: str = "red-green") -> np.ndarray:
    """A map in [-1, 1] as ``float32 (H, W, 3)`` RGB in [0, 1]."""
    values = np.clip(np.asarray(similarity, dtype=np.float32), -1.0, 1.0)
    if colormap == "red-green":
        fade = 1.0 - np.abs(values)  # white at 0, full colour at +-1
        red = np.where(values < 0, 1.0, fade)
        green = np.where(values > 0, 1.0, fade)
        return np.stack([red, green, fade], axis=-1).astype(np.float32)
    if colormap == "PiYG":
        from matplotlib import colormaps

        return colormaps["PiYG"]((values + 1.0) / 2.0)[..., :3].astype(np.float32)
    raise ValueError(f"colormap must be one of {COLORMAPS}, got {colormap!r}.")


def blend(face: np.ndarray, similarity: np.ndarray, colormap: str = "red-green") -> np.ndarray:
    """Algorithm 2: ``uint8 (H, W, 3)`` RGB face coloured by a normalised map (resized to the face)."""
    if not isinstance(face, np.ndarray) or face.ndim != 3 or face.shape[2] != 3 or face.dtype != np.uint8:
        shape = getattr(face, "shape", None)
        raise ValueError(
            f"face must be a uint8 (H, W, 3) RGB image, got {type(face).__name__} of shape {shape}."
        )
    similarity = np.asarray(similarity, dtype=np.float32)
    if similarity.ndim != 2:
        raise ValueError(f"similarity must be a 2-d map, got shape {similarity.shape}.")
    height, width = face.shape[:2]
    if similarity.shape != (height, width):
        similarity = cv2.resize(similarity, (width, height), interpolation=cv2.INTER_LINEAR)
    colored = colorize(similarity, colormap)
    hue = cv2.cvtColor(colored, cv2.COLOR_RGB2HLS)[..., 0]
    saturation = cv2.cvtColor(colored, cv2.COLOR_RGB2HSV)[..., 1]
    lightness = cv2.cvtColor(face.astype(np.float32) / 255.0, cv2.COLOR_RGB2HLS)[..., 1]
    hls = np.stack([hue, lightness, saturation], axis=-1)
    rgb = cv2.cvtColor(hls, cv2.COLOR_HLS2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
