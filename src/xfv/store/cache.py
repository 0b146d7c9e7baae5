"""Embedding cache on disk, keyed by model + configuration + image content hash (never by file path).

One self-checking entry per image under ``<cache dir>/embeddings/<namespace>/`` (:class:`xfv.files.EntryCache`):
an entry records its key (namespace and image digest), shape and checksum, so a misplaced, corrupt, misshapen or
non-finite file is reported once and recomputed, never used. Writes are atomic. Beside it, under its own key,
which detector found the face the embedding was computed from (``centre``: none did).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from xfv.files import EntryCache, default_cache_dir

DETECTOR_CHARS = 10  # a detector's name, stored as character codes (cache entries hold float32 arrays)


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

    def get_detector(self, digest: str) -> str | None:
        """Which detector found the face of the image whose embedding is cached (None: not recorded)."""
        codes = self._entries.get(f"{self._key(digest)}/detector", (DETECTOR_CHARS,))
        return None if codes is None else "".join(chr(int(c)) for c in codes if c).strip() or None

    def put_detector(self, digest: str, detector: str) -> None:
        if not detector.isascii() or not 0 < len(detector) <= DETECTOR_CHARS:
            raise ValueError(f"A detector name is 1-{DETECTOR_CHARS} ASCII characters, got {detector!r}.")
        codes = np.zeros(DETECTOR_CHARS, np.float32)
        codes[: len(detector)] = [ord(c) for c in detector]
        self._entries.put(f"{self._key(digest)}/detector", codes)
