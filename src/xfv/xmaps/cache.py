"""A per-face on-disk cache of occluded embeddings, so a face that appears in many pairs is embedded once.

One ``.npy`` file per (model fingerprint, face content hash, occlusion configuration of one patch size); the
original face's embedding is an entry of its own. Keys are content hashes, never file paths (architecture.md).
Writes are atomic (:func:`xfv.files.atomic_save_npy`); an unreadable or misshapen file
counts as a miss and is rewritten.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from xfv.files import atomic_save_npy, default_cache_dir


def face_hash(face: np.ndarray) -> str:
    """sha256 of the crop's shape and bytes."""
    digest = hashlib.sha256(str(face.shape).encode())
    digest.update(np.ascontiguousarray(face).tobytes())
    return digest.hexdigest()


class OcclusionCache:
    """Embeddings of occluded faces under ``directory``.

    Default: ``xfv.files.default_cache_dir() / "xmaps"`` (honours ``$XFV_CACHE_DIR``).
    """

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        if directory is None:
            directory = default_cache_dir() / "xmaps"
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"OcclusionCache({str(self.directory)!r})"

    def path(self, model_fingerprint: str, face_digest: str, occlusion_key: str) -> Path:
        key = hashlib.sha256(f"{face_digest}\n{occlusion_key}".encode()).hexdigest()
        return self.directory / model_fingerprint / key[:2] / f"{key}.npy"

    def load(
        self, model_fingerprint: str, face_digest: str, occlusion_key: str, rows: int
    ) -> np.ndarray | None:
        """The cached ``float32 (rows, D)`` embeddings, or None."""
        path = self.path(model_fingerprint, face_digest, occlusion_key)
        try:
            embeddings = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if embeddings.ndim != 2 or embeddings.shape[0] != rows or embeddings.dtype != np.float32:
            return None
        return embeddings

    def save(
        self, model_fingerprint: str, face_digest: str, occlusion_key: str, embeddings: np.ndarray
    ) -> None:
        path = self.path(model_fingerprint, face_digest, occlusion_key)
        atomic_save_npy(path, np.asarray(embeddings, dtype=np.float32))
