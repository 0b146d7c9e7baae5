"""dlib's ResNet face model (``dlib_face_recognition_resnet_model_v1``, 128-d, 150 x 150 dlib face chips).

Weights come from PyPI ``face-recognition-models``. Two backends compute the same function:
``onnx`` (default) runs a graph converted from the shipped weights with onnxruntime (see
:mod:`xfv.models.dlib_onnx`); ``dlib`` runs the reference implementation in dlib-bin (slow: 4-6 faces/s).
"""

from __future__ import annotations

from functools import cached_property

import face_recognition_models
import numpy as np

from xfv.models.base import EmbeddingModel, ModelConfig
from xfv.models.registry import register_model

BACKENDS = ("onnx", "dlib")


class DlibResNet(EmbeddingModel):
    def __init__(self, backend: str = "onnx", flip: bool = False, threads: int | None = None, batch_size: int = 32):
        if backend not in BACKENDS:
            raise ValueError(f"Unknown dlib backend {backend!r}; expected one of {list(BACKENDS)}.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.backend = backend
        self.threads = threads
        self.batch_size = batch_size
        self.config = ModelConfig(
            name="dlib", input_size=150, alignment="dlib", embedding_dim=128,
            options={"backend": backend, "flip": bool(flip)},
        )

    @cached_property
    def _runner(self):
        if self.backend == "dlib":
            import dlib

            return dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
        from xfv.models.dlib_onnx import ensure_converted
        from xfv.models.onnx_model import make_session

        return make_session(ensure_converted(), threads=self.threads)

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        if self.backend == "dlib":
            descriptors = self._runner.compute_face_descriptor([np.ascontiguousarray(f) for f in faces])
            return np.array([np.asarray(d) for d in descriptors], dtype=np.float32)
        return self._runner.run(["embedding"], {"input": faces.astype(np.float32)})[0]


@register_model("dlib", "dlib's ResNet (128-d, LFW 99.38% published); backend onnx (fast, default) or dlib",
                source="dlib_face_recognition_resnet_model_v1.dat via PyPI face-recognition-models",
                licence="CC0-1.0 (weights)", input="150 x 150 RGB [0, 255]", template="dlib face chip (padding 0.25)",
                lfw="98.93% +- 0.45 (xfv, deep-funneled; 99.10% with --flip); 99.38% published")
def create_dlib(**options) -> DlibResNet:
    return DlibResNet(**options)
