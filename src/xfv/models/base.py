"""The model protocol: aligned face images in, embeddings out (a black box, method.md §0)."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Literal

import cv2
import numpy as np

Alignment = Literal["dlib", "arcface", "none"]


@dataclass(frozen=True)
class ModelConfig:
    """Preprocessing that travels with a model (in the spirit of timm's ``PretrainedCfg``).

    ``input_size``: the native square input in pixels; aligned crops of any other size are resized to it.
    ``alignment``: the face template the model was trained on (``dlib``: dlib's face-chip geometry,
    ``arcface``: the 5-point ArcFace template, ``none``: the model takes whatever it is given).
    ``channel_order``, ``mean``, ``std``: how pixel values reach the network (``(x - mean) / std`` per channel).
    ``detector``: the face detector whose crops the model expects (``yunet``: its 5 landmarks place the ArcFace
    template), used by every route (CLI, jobs, web) for this model; None: the route's own detector.
    ``options``: everything else that changes the output (backend, ``flip`` averaging, ...), part of the cache key.
    ``flip=True`` makes :meth:`EmbeddingModel.embed` average the unit embeddings of each face and its mirror.
    """

    name: str
    input_size: int
    alignment: Alignment
    embedding_dim: int | None = None
    channel_order: Literal["RGB", "BGR"] = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    options: dict = field(default_factory=dict)
    detector: str | None = None

    def fingerprint(self, extra: str = "") -> str:
        """A short content hash of the configuration (and ``extra``, e.g. a weights checksum)."""
        fields = asdict(self)
        if fields["detector"] is None:
            del fields["detector"]  # models without their own detector keep the fingerprints (and caches) they had
        payload = json.dumps(fields, sort_keys=True, default=str) + extra
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def check_faces(faces: np.ndarray) -> np.ndarray:
    """Validate a batch of aligned faces: ``uint8`` array of shape ``(N, H, W, 3)``."""
    if not isinstance(faces, np.ndarray):
        raise TypeError(f"faces must be a numpy array of shape (N, H, W, 3), got {type(faces).__name__}.")
    if faces.ndim == 3 and faces.shape[-1] == 3:
        raise ValueError(
            f"faces must be a batch of shape (N, H, W, 3), got a single image of shape {faces.shape}; "
            "use faces[None] for one image."
        )
    if faces.ndim != 4 or faces.shape[-1] != 3:
        raise ValueError(f"faces must have shape (N, H, W, 3), got {faces.shape}.")
    if faces.dtype != np.uint8:
        raise ValueError(f"faces must be uint8 in [0, 255], got dtype {faces.dtype}.")
    return faces


def resize_faces(faces: np.ndarray, size: int) -> np.ndarray:
    """Resize a batch of square crops to ``size`` x ``size`` (bilinear; area when shrinking)."""
    if faces.shape[1] == size and faces.shape[2] == size:
        return faces
    interpolation = cv2.INTER_AREA if faces.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(face, (size, size), interpolation=interpolation) for face in faces])


class EmbeddingModel(ABC):
    """Base class for all models: validation, resizing and batching live here.

    Subclasses implement :meth:`_forward` on a batch already resized to ``config.input_size``.
    """

    config: ModelConfig
    batch_size: int | None = 64

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def engine(self) -> str:
        """What computes the embeddings, in words (runtime, provider, precision, threads): named in every report."""
        return "python (in-process)"

    def batch_for(self, images: int) -> int:
        """Images per forward pass for a call of ``images`` (a fixed ``batch_size``, or the engine's choice)."""
        return self.batch_size or max(1, images)

    @property
    def fingerprint(self) -> str:
        """Identifies the model's outputs: configuration plus, where relevant, a weights checksum."""
        return self.config.fingerprint()

    def embed(self, faces: np.ndarray) -> np.ndarray:
        """Embed aligned faces: ``uint8 (N, H, W, 3)`` RGB -> ``float32 (N, D)``, in batches."""
        faces = check_faces(faces)
        if len(faces) == 0:
            dim = self.config.embedding_dim or 0
            return np.zeros((0, dim), dtype=np.float32)
        flip = bool(self.config.options.get("flip", False))
        batch = self.batch_for(len(faces) * (2 if flip else 1))
        step = max(1, batch // 2) if flip else batch
        outputs = []
        for start in range(0, len(faces), step):
            batch = resize_faces(faces[start : start + step], self.config.input_size)
            if flip:
                # Flip averaging: the mean of the unit embeddings of the face and its mirror image.
                both = np.asarray(self._forward(np.concatenate([batch, batch[:, :, ::-1]])), dtype=np.float32)
                both /= np.linalg.norm(both, axis=1, keepdims=True) + 1e-12
                outputs.append((both[: len(batch)] + both[len(batch) :]) / 2)
            else:
                outputs.append(np.asarray(self._forward(batch), dtype=np.float32))
        return np.concatenate(outputs, axis=0)

    @abstractmethod
    def _forward(self, faces: np.ndarray) -> np.ndarray:
        """Embed one batch of ``uint8 (n, S, S, 3)`` RGB faces with ``S = config.input_size``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, options={self.config.options!r})"
