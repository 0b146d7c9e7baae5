"""How an X-Map is stored in the database: quantised to int16, delta- and zlib-compressed (no pickles).

Layout of a blob: ``b"XFVM"``, a format version byte (2), the number of dimensions (one byte), each dimension
as a little-endian ``uint32``, the scale ``a`` (largest ``|x|``) as a little-endian ``float32``, then ``zlib``
of the successive differences of ``q = round(x / a * 32767)`` (``int16``, C order), high bytes first, then low.

The error this costs is the rounding: at most ``a / 65534``, so ``1.5e-5`` for normalised X-Maps (``a = 1``);
+-a and 0 are exact. Older rows still decode: version 1 (float16, round-off <= 2^-12 in [-1, 1]) and plain
float32 ``.npy`` bytes (exactly).
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np

from xfv.errors import XfvError

MAGIC = b"XFVM"
VERSION = 2
NPY_MAGIC = b"\x93NUMPY"
LEVELS = 32767
MAX_ERROR = 0.5 / LEVELS
"""Largest absolute round-off of :func:`encode_map` for values in [-1, 1]."""


def encode_map(xmap: np.ndarray) -> bytes:
    """The map as a compact blob (see the module docstring); values must be finite."""
    values = np.asarray(xmap, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise XfvError(f"An X-Map to store must be finite, got values in [{np.nanmin(values)}, {np.nanmax(values)}].")
    if values.ndim > 255:
        raise XfvError(f"An X-Map has at most 255 dimensions, got {values.ndim}.")
    scale = float(np.abs(values).max()) if values.size else 0.0
    levels = np.round(values / scale * LEVELS) if scale > 0 else np.zeros(values.shape)
    steps = np.diff(levels.astype(np.int16).ravel(), prepend=np.int16(0)).astype("<i2")  # wraps; undone exactly
    header = MAGIC + struct.pack(f"<BB{values.ndim}If", VERSION, values.ndim, *values.shape, scale)
    return header + zlib.compress(steps.view(np.uint8).reshape(-1, 2).T.tobytes(), 9)


def decode_map(data: bytes) -> np.ndarray:
    """The ``float32`` map stored by :func:`encode_map`, by its version 1, or by the former ``.npy`` format."""
    data = bytes(data)
    if data.startswith(NPY_MAGIC):
        return np.load(io.BytesIO(data), allow_pickle=False).astype(np.float32, copy=False)
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 2:
        raise XfvError("Not a stored X-Map: expected a blob starting with b'XFVM' or a .npy file.")
    version, ndim = struct.unpack_from("<BB", data, len(MAGIC))
    if version not in (1, 2):
        raise XfvError(f"Stored X-Map format version {version} is not supported (expected 1 or 2).")
    offset = len(MAGIC) + 2
    shape = struct.unpack_from(f"<{ndim}I", data, offset)
    offset += 4 * ndim
    if version == 2:
        (scale,) = struct.unpack_from("<f", data, offset)
        offset += 4
    try:
        raw = zlib.decompress(data[offset:])
    except zlib.error as error:
        raise XfvError(f"A stored X-Map is corrupt: {error}.") from None
    if len(raw) != 2 * int(np.prod(shape, dtype=np.int64)):
        raise XfvError(f"A stored X-Map is corrupt: {len(raw)} bytes do not fill the shape {shape}.")
    if version == 1:
        return np.frombuffer(raw, dtype="<f2").reshape(shape).astype(np.float32)
    steps = np.frombuffer(raw, dtype=np.uint8).reshape(2, -1).T.copy().view("<i2").ravel()
    levels = np.cumsum(steps, dtype=np.int16)  # int16 wrap-around inverts the wrapped differences
    return (levels.astype(np.float64) * (scale / LEVELS)).reshape(shape).astype(np.float32)
