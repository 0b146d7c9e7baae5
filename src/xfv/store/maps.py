"""How an X-Map is stored in the database: a NumPy ``.npy`` blob of float32 (no pickles)."""

from __future__ import annotations

import io

import numpy as np


def encode_map(xmap: np.ndarray) -> bytes:
    """The map as ``.npy`` bytes (float32)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(xmap, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def decode_map(data: bytes) -> np.ndarray:
    """The map stored by :func:`encode_map`."""
    return np.load(io.BytesIO(data), allow_pickle=False)
