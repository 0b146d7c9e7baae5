"""Loading photos: any format Pillow reads, EXIF rotation applied, converted to 8-bit RGB."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


def load_image(source: str | Path | bytes) -> np.ndarray:
    """Read an image file (or its bytes) as ``uint8 (H, W, 3)`` RGB.

    EXIF orientation is applied; grayscale, palette, CMYK and 16-bit images are converted; an alpha channel
    is composited onto white. Pillow's decompression-bomb guard stays active. Raises ``ValueError`` for
    files that are not images or are truncated.
    """
    name = "<upload>" if isinstance(source, (bytes, bytearray)) else str(source)
    if not isinstance(source, (bytes, bytearray)) and not Path(source).is_file():
        raise FileNotFoundError(f"Image file {name!r} not found.")
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with Image.open(stream) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, rgba)
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(image, dtype=np.float64)
                image = Image.fromarray(np.uint8(np.clip(array / max(array.max(), 1) * 255, 0, 255)))
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except UnidentifiedImageError:
        raise ValueError(f"{name} is not an image file Pillow can read.") from None
    except Image.DecompressionBombError as error:
        raise ValueError(f"{name} has too many pixels: {error}") from None
    except (OSError, SyntaxError) as error:
        raise ValueError(f"{name} could not be decoded (truncated or corrupt?): {error}") from None
    if rgb.shape[0] < 8 or rgb.shape[1] < 8:
        raise ValueError(f"{name} is too small ({rgb.shape[1]} x {rgb.shape[0]} pixels).")
    return np.ascontiguousarray(rgb)
