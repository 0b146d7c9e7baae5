"""A per-face on-disk cache of occluded embeddings, so a face that appears in many pairs is embedded once.

One self-checking entry (:class:`xfv.files.EntryCache`) per (model fingerprint, face content hash, occlusion
configuration of one patch size); the original face's embedding is an entry of its own. Keys are content hashes,
never file paths (architecture.md). An entry records its key, shape and checksum: a misplaced, corrupt, misshapen
or non-finite file is reported once and recomputed. Same verbs as the embedding cache: ``get`` and ``put``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from xfv.files import EntryCache, default_cache_dir


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

    def _entries(self, model_fingerprint: str) -> EntryCache:
        return EntryCache(self.directory / model_fingerprint)

    @staticmethod
    def _key(model_fingerprint: str, face_digest: str, occlusion_key: str) -> str:
        return f"{model_fingerprint}/{face_digest}/{occlusion_key}"

    def path(self, model_fingerprint: str, face_digest: str, occlusion_key: str) -> Path:
        key = self._key(model_fingerprint, face_digest, occlusion_key)
        return self._entries(model_fingerprint).path(key)

    def get(self, model_fingerprint: str, face_digest: str, occlusion_key: str, rows: int) -> np.ndarray | None:
        """The cached ``float32 (rows, D)`` embeddings, or None."""
        key = self._key(model_fingerprint, face_digest, occlusion_key)
        return self._entries(model_fingerprint).get(key, (rows, None))

    def put(self, model_fingerprint: str, face_digest: str, occlusion_key: str, embeddings: np.ndarray) -> None:
        key = self._key(model_fingerprint, face_digest, occlusion_key)
        self._entries(model_fingerprint).put(key, embeddings)
