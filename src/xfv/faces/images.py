"""Loading photos: any format Pillow reads, EXIF rotation applied, converted to 8-bit RGB, with bounded cost.

The cost of decoding is bounded before any pixel is decoded: the width x height the header declares is checked
against ``max_pixels`` (:data:`MAX_PIXELS`, the web's upload limit too), whatever the mode (CMYK, 16-bit, alpha),
the encoding (progressive JPEG) or the scale it would be decoded at. An animated image (GIF, APNG, WebP, a
multi-page TIFF) is refused: which frame to judge is not for xfv to guess (a camera's MPO file is read as its
main picture). A JPEG larger than :data:`WORKING_PIXELS` is then decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT
scaling, Pillow's draft mode) keeping at least that many pixels; other formats more than 4 times that large are
reduced by an integer factor right after decoding. What is left (at most 4 x :data:`WORKING_PIXELS`) is more than
detection looks at (:mod:`xfv.faces.detection`) and far more than an aligned crop needs.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from xfv.errors import TooLargeError, XfvError

MAX_PIXELS = 40_000_000  # largest image decoded, width x height as declared
WORKING_PIXELS = 8_000_000  # a JPEG above this is decoded at the smallest DCT scale that keeps at least this many
MIN_SIDE = 8
STILL_MULTI_FRAME = ("MPO",)  # several frames, one picture: a camera's JPEG with its previews

# load_image checks every image's declared size itself, before decoding; Pillow's warning about sizes over its own,
# higher limit would only repeat that. Filtered once, here: warnings.catch_warnings changes process-wide state
# and is not safe in the web's worker threads.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def image_name(source: str | Path | bytes, name: str | None = None) -> str:
    """How messages call ``source``: ``name`` if given, else the path, else ``"the uploaded image"``."""
    if name is not None:
        return name
    return "the uploaded image" if isinstance(source, (bytes, bytearray)) else str(source)


def check_image_file(source: str | Path, name: str | None = None) -> None:
    """``FileNotFoundError`` unless ``source`` is a file; :class:`~xfv.errors.XfvError` for a directory."""
    name = image_name(source, name)
    path = Path(source)
    if path.is_dir():
        raise XfvError(f"{name} is a directory, not an image file.")
    if not path.is_file():
        raise FileNotFoundError(f"Image file {name!r} not found.")


def check_declared(image: Image.Image, name: str, max_pixels: int = MAX_PIXELS) -> None:
    """:class:`~xfv.errors.TooLargeError` if an opened (not yet decoded) image declares more than ``max_pixels``,
    :class:`~xfv.errors.XfvError` if it is animated."""
    width, height = image.size
    if width * height > max_pixels:
        raise TooLargeError(f"{name}: {width} x {height} pixels is more than the limit of {max_pixels} pixels.")
    if getattr(image, "is_animated", False) and image.format not in STILL_MULTI_FRAME:
        raise XfvError(f"{name} is an animated {image.format} image ({image.n_frames} frames); expected one "
                       "still photo.")


def _open_bounded(image: Image.Image, name: str, max_pixels: int) -> None:
    """:func:`check_declared`; ask a large JPEG's decoder for a reduced scale (all before ``load``)."""
    check_declared(image, name, max_pixels)
    width, height = image.size
    if image.format == "JPEG" and width * height > WORKING_PIXELS:
        scale = math.sqrt(WORKING_PIXELS / (width * height))
        image.draft(None, (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))


def load_image(source: str | Path | bytes, *, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file (or its bytes) as ``uint8 (H, W, 3)`` RGB.

    ``name``: how messages call the image (e.g. the upload's field name; default: the path). EXIF orientation is
    applied; grayscale, palette, CMYK and 16-bit images are converted; an alpha channel is composited onto white.
    Raises :class:`~xfv.errors.TooLargeError` above ``max_pixels`` (checked from the header, before decoding),
    ``FileNotFoundError`` for a missing file and :class:`~xfv.errors.XfvError` for a directory, a file that is not
    an image, an animated one, or a truncated one.
    """
    name = image_name(source, name)
    if not isinstance(source, (bytes, bytearray)):
        check_image_file(source, name)
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with Image.open(stream) as image:
            _open_bounded(image, name, max_pixels)
            image.load()
            rgb = _to_rgb(image)
    except UnidentifiedImageError:
        raise XfvError(f"{name} is not an image file Pillow can read.") from None
    except Image.DecompressionBombError:
        raise TooLargeError(f"{name} declares more pixels than the limit of {max_pixels}.") from None
    except (OSError, SyntaxError, ValueError) as error:
        if isinstance(error, XfvError):
            raise
        raise XfvError(f"{name} could not be decoded (truncated or corrupt?): {error}") from None
    if rgb.shape[0] < MIN_SIDE or rgb.shape[1] < MIN_SIDE:
        raise XfvError(f"{name} is too small ({rgb.shape[1]} x {rgb.shape[0]} pixels; at least {MIN_SIDE} x "
                       f"{MIN_SIDE} expected).")
    return np.ascontiguousarray(rgb)


def _to_rgb(image: Image.Image) -> np.ndarray:
    """RGB pixels, reduced by an integer factor (a box filter) to no fewer than :data:`WORKING_PIXELS`."""
    ImageOps.exif_transpose(image, in_place=True)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.uint8(np.clip(array / max(array.max(), 1) * 255, 0, 255)))
    if image.mode != "RGB":
        image = image.convert("RGB")
    reduction = math.isqrt(image.width * image.height // WORKING_PIXELS)
    if reduction > 1:
        image = image.reduce(reduction)
    return np.asarray(image, dtype=np.uint8)
