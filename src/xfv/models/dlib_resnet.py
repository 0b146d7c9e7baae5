"""dlib's ResNet face model (``dlib_face_recognition_resnet_model_v1``, 128-d, 150 x 150 dlib face chips).

Weights come from PyPI ``face-recognition-models``. Two backends compute the same function:
``onnx`` (default) runs a graph converted from the shipped weights (see :mod:`xfv.models.dlib_onnx`) on an engine
of :mod:`xfv.models.engines` (``provider``, ``precision``, ``threads``); ``dlib`` runs the reference implementation
in dlib-bin (slow: 4-6 faces/s).
"""

from __future__ import annotations

from functools import cached_property

import face_recognition_models
import numpy as np

from xfv.models.base import EmbeddingModel, ModelConfig
from xfv.models.registry import register_model

BACKENDS = ("onnx", "dlib")


class DlibResNet(EmbeddingModel):
    def __init__(self, backend: str = "onnx", flip: bool = False, threads: int | None = None,
                 batch_size: int | None = None, provider: str = "auto", precision: str = "fp32"):
        from xfv.models.onnx_model import engine_options

        if backend not in BACKENDS:
            raise ValueError(f"Unknown dlib backend {backend!r}; expected one of {list(BACKENDS)}.")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if backend == "dlib" and (provider, precision) != ("auto", "fp32"):
            raise ValueError("provider and precision apply to the onnx backend only; backend 'dlib' runs dlib-bin.")
        self.backend, self.provider, self.precision = backend, provider, precision
        self.threads = threads
        self.batch_size = batch_size
        self.config = ModelConfig(
            name="dlib", input_size=150, alignment="dlib", embedding_dim=128,
            options={"backend": backend, "flip": bool(flip), **engine_options(provider, precision)},
        )

    @cached_property
    def _runner(self):
        if self.backend == "dlib":
            import dlib

            return dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
        from functools import partial

        from xfv.models.dlib_onnx import ensure_converted
        from xfv.models.engines import GraphEngine
        from xfv.models.precision import sample_faces

        return GraphEngine(ensure_converted(), provider=self.provider, precision=self.precision, threads=self.threads,
                           feed=_graph_input, faces=partial(sample_faces, "dlib", 150, None), model_key=self.fingerprint)

    @property
    def engine(self) -> str:
        if self.backend == "dlib":
            import dlib

            return f"dlib-bin {dlib.__version__} (reference)"
        return self._runner.description

    def batch_for(self, images: int) -> int:
        if self.batch_size or self.backend == "dlib":
            return self.batch_size or 32
        return self._runner.batch_size(images)

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        if self.backend == "dlib":
            descriptors = self._runner.compute_face_descriptor([np.ascontiguousarray(f) for f in faces])
            return np.array([np.asarray(d) for d in descriptors], dtype=np.float32)
        return self._runner.run(_graph_input(faces))


def _graph_input(faces: np.ndarray) -> np.ndarray:
    """The converted graph takes float32 RGB in [0, 255] and scales it itself."""
    return faces.astype(np.float32)


@register_model("dlib", "dlib's ResNet (128-d, LFW 99.38% published); backend onnx (fast, default) or dlib",
                source="dlib_face_recognition_resnet_model_v1.dat via PyPI face-recognition-models",
                licence="CC0-1.0 (weights)", input="150 x 150 RGB [0, 255]", template="dlib face chip (padding 0.25)",
                lfw="98.93% +- 0.45 (xfv, deep-funneled; 99.10% with --flip); 99.38% published")
def create_dlib(**options) -> DlibResNet:
    return DlibResNet(**options)
