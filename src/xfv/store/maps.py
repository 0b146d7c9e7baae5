"""How an X-Map is stored in the database: float16, zlib-compressed, behind a small header (no pickles).

Layout of a blob: ``b"XFVM"``, a format version byte (1), the number of dimensions (one byte), each dimension
as a little-endian ``uint32``, then ``zlib`` of the little-endian ``float16`` values in C order.

The error this costs is float16's round-off: for a value ``|x| <= 1`` (normalised X-Maps are in [-1, 1]) it is
at most half the float16 spacing below 1, ``2^-12 ~ 2.4e-4`` (``2^-25`` absolute below float16's normal
range). Rows written before this format, plain float32 ``.npy`` bytes, still decode (exactly).
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np

from xfv.errors import XfvError

MAGIC = b"XFVM"
VERSION = 1
NPY_MAGIC = b"\x93NUMPY"
STORED_DTYPE = np.dtype("<f2")
MAX_ERROR = 2.0**-12
"""Largest absolute round-off of :func:`encode_map` for values in [-1, 1]."""
LARGEST = float(np.finfo(np.float16).max)


def encode_map(xmap: np.ndarray) -> bytes:
    """The map as a compact blob (see the module docstring); values must be finite and fit float16."""
    values = np.asarray(xmap, dtype=np.float32)
    if not np.all(np.isfinite(values)) or (values.size and float(np.abs(values).max()) > LARGEST):
        raise XfvError(f"An X-Map to store must be finite with |values| <= {LARGEST:g} (float16), "
                       f"got values in [{np.nanmin(values)}, {np.nanmax(values)}].")
    if values.ndim > 255:
        raise XfvError(f"An X-Map has at most 255 dimensions, got {values.ndim}.")
    header = MAGIC + struct.pack(f"<BB{values.ndim}I", VERSION, values.ndim, *values.shape)
    return header + zlib.compress(np.ascontiguousarray(values, dtype=STORED_DTYPE).tobytes(), 9)


def decode_map(data: bytes) -> np.ndarray:
    """The ``float32`` map stored by :func:`encode_map`, or by the former float32 ``.npy`` format."""
    data = bytes(data)
    if data.startswith(NPY_MAGIC):
        return np.load(io.BytesIO(data), allow_pickle=False).astype(np.float32, copy=False)
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 2:
        raise XfvError("Not a stored X-Map: expected a blob starting with b'XFVM' or a .npy file.")
    version, ndim = struct.unpack_from("<BB", data, len(MAGIC))
    if version != VERSION:
        raise XfvError(f"Stored X-Map format version {version} is not supported (expected {VERSION}).")
    start = len(MAGIC) + 2 + 4 * ndim
    shape = struct.unpack_from(f"<{ndim}I", data, len(MAGIC) + 2)
    try:
        raw = zlib.decompress(data[start:])
    except zlib.error as error:
        raise XfvError(f"A stored X-Map is corrupt: {error}.") from None
    if len(raw) != STORED_DTYPE.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise XfvError(f"A stored X-Map is corrupt: {len(raw)} bytes do not fill the shape {shape}.")
    return np.frombuffer(raw, dtype=STORED_DTYPE).reshape(shape).astype(np.float32)
