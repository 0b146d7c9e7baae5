"""Embedding cache on disk, keyed by model + configuration + image content hash (never by file path).

One self-checking entry per image under ``<cache dir>/embeddings/<namespace>/`` (:class:`xfv.files.EntryCache`):
an entry records its key (namespace and image digest), shape and checksum, so a misplaced, corrupt, misshapen or
non-finite file is reported once and recomputed, never used. Writes are atomic.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from xfv.files import EntryCache, default_cache_dir


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class EmbeddingCache:
    """Per-image embeddings of one model configuration (``namespace``); ``dim`` the embedding size if known."""

    def __init__(self, namespace: str, root: Path | None = None, dim: int | None = None):
        if not namespace or "/" in namespace:
            raise ValueError(f"Cache namespace must be a non-empty name without '/', got {namespace!r}.")
        self.namespace = namespace
        self.directory = (root or default_cache_dir()) / "embeddings" / namespace
        self.shape = (dim,)
        self._entries = EntryCache(self.directory)

    def _key(self, digest: str) -> str:
        return f"{self.namespace}/{digest}"

    def path(self, digest: str) -> Path:
        """The entry file of the image whose content hash is ``digest``."""
        return self._entries.path(self._key(digest))

    def get(self, digest: str) -> np.ndarray | None:
        return self._entries.get(self._key(digest), self.shape)

    def put(self, digest: str, embedding: np.ndarray) -> None:
        self._entries.put(self._key(digest), embedding)
