"""Embedding cache on disk, keyed by model + configuration + image content hash (never by file path).

One ``.npy`` file per image under ``<cache dir>/embeddings/<namespace>/<hash[:2]>/<hash>.npy``. Writes go to a
temporary file in the same folder followed by ``os.replace``, which is atomic: an interrupted run leaves no
partial entry, and two processes writing the same entry both leave a complete file. An unreadable entry is a
miss and is rewritten.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from xfv.files import atomic_save_npy, default_cache_dir


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class EmbeddingCache:
    """Per-image embeddings of one model configuration (``namespace``)."""

    def __init__(self, namespace: str, root: Path | None = None):
        if not namespace or "/" in namespace:
            raise ValueError(f"Cache namespace must be a non-empty name without '/', got {namespace!r}.")
        self.directory = (root or default_cache_dir()) / "embeddings" / namespace

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        path = self._path(key)
        try:
            return np.load(path, allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError, EOFError):
            return None

    def put(self, key: str, embedding: np.ndarray) -> None:
        atomic_save_npy(self._path(key), np.asarray(embedding, dtype=np.float32))
