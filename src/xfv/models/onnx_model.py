"""Any ONNX embedding model file (e.g. an ArcFace ``w600k_r50.onnx`` a user brings), run with onnxruntime."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from xfv.models.base import EmbeddingModel, ModelConfig
from xfv.models.registry import register_model


def make_session(path: str | Path, threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session; ``threads`` defaults to the number of CPU cores."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class OnnxEmbeddingModel(EmbeddingModel):
    """An ONNX model with an explicit preprocessing configuration.

    Input: ``(x - mean) / std`` per channel in ``channel_order``, layout ``NCHW`` or ``NHWC``; the first
    graph input is fed, the first output is the embedding. Defaults fit InsightFace ArcFace models
    (112 px, RGB, mean = std = 127.5, NCHW, ArcFace template).
    """

    def __init__(
        self, path: str | Path, name: str = "onnx", input_size: int = 112, alignment: str = "arcface",
        channel_order: str = "RGB", mean: float | list[float] = 127.5, std: float | list[float] = 127.5,
        layout: str = "NCHW", threads: int | None = None, batch_size: int = 32, flip: bool = False,
    ):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model file {str(path)!r} not found.")
        if channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {channel_order!r}.")
        if layout not in ("NCHW", "NHWC"):
            raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}.")
        if alignment not in ("dlib", "arcface", "none"):
            raise ValueError(f"alignment must be 'dlib', 'arcface' or 'none', got {alignment!r}.")
        if not isinstance(input_size, int) or input_size < 8:
            raise ValueError(f"input_size must be an integer >= 8, got {input_size!r}.")
        mean3 = tuple(float(v) for v in np.broadcast_to(np.asarray(mean, dtype=np.float64), (3,)))
        std3 = tuple(float(v) for v in np.broadcast_to(np.asarray(std, dtype=np.float64), (3,)))
        if any(s == 0 for s in std3):
            raise ValueError(f"std must be non-zero, got {std}.")
        self.path = path
        self.layout = layout
        self.batch_size = batch_size
        self.session = make_session(path, threads)
        self.input_name = self.session.get_inputs()[0].name
        with open(path, "rb") as handle:
            self._weights_sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
        self.config = ModelConfig(
            name=name, input_size=input_size, alignment=alignment, channel_order=channel_order,
            mean=mean3, std=std3, options={"layout": layout, "flip": bool(flip)},
        )

    @property
    def fingerprint(self) -> str:
        return self.config.fingerprint(extra=self._weights_sha256)

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        x = faces.astype(np.float32)
        if self.config.channel_order == "BGR":
            x = x[..., ::-1]
        x = (x - np.float32(self.config.mean)) / np.float32(self.config.std)
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        output = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
        if output.ndim != 2 or output.shape[0] != len(faces):
            raise ValueError(f"{self.path}: expected an output of shape ({len(faces)}, D), got {output.shape}.")
        return output


@register_model("onnx", "any ONNX embedding model file (path=...; input size, channels, mean/std, template configurable)")
def create_onnx(**options) -> OnnxEmbeddingModel:
    if "path" not in options:
        raise ValueError("The onnx model needs path=<file.onnx> (CLI: --model-path).")
    return OnnxEmbeddingModel(**options)
