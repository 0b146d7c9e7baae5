"""Any ONNX embedding model file (e.g. an ArcFace ``w600k_r50.onnx`` a user brings), run with onnxruntime."""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from xfv.errors import XfvError
from xfv.faces.detection import DETECTORS
from xfv.models.base import EmbeddingModel, ModelConfig
from xfv.models.converted import cached_conversion, sha256
from xfv.models.engines import GraphEngine, available_providers, check_engine, usable_cores
from xfv.models.onnx_graph import PREPARER_VERSION, OnnxGraphError, prepared_bytes
from xfv.models.precision import INT8_RECIPE, sample_faces
from xfv.models.registry import register_model

# onnxruntime's errors share no base class below Exception.
ORT_ERRORS = tuple(getattr(ort_state, name) for name in (
    "Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile", "NotImplemented", "RuntimeException"))


def make_session(path: str | Path, threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session of the graph as it is (for checking it); ``threads`` defaults to the cores this
    process may use."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or usable_cores()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def engine_options(provider: str, precision: str) -> dict:
    """What an engine adds to a model's ``options`` (and so to its fingerprint): nothing for fp32, whose engines
    give the same embeddings; the precision, the provider that runs it and the int8 recipe otherwise."""
    check_engine(provider, precision)
    if precision == "fp32":
        return {}
    resolved = provider if provider != "auto" else "openvino" if "openvino" in available_providers() else "cpu"
    return {"precision": precision, "provider": resolved, **({"recipe": INT8_RECIPE} if precision == "int8" else {})}


class OnnxEmbeddingModel(EmbeddingModel):
    """An ONNX model with an explicit preprocessing configuration, run as it comes.

    The file is prepared once (:mod:`xfv.models.onnx_graph`: unused inputs removed, batch made symbolic, with
    ``dequantize=True`` block-quantised weights turned into float ones) and the prepared copy cached under the
    source file's sha256 in ``cache_dir`` (default: the xfv cache's ``models`` folder).
    Input: ``(x - mean) / std`` per channel in ``channel_order``, layout ``NCHW`` or ``NHWC`` (default: read from
    the graph); ``input_size`` defaults to the graph's fixed side, else 112. The output is the embedding
    ``(N, D)``. Defaults fit InsightFace ArcFace models (RGB, mean = std = 127.5, ArcFace template).
    ``detector``: the detector the model's crops come from (e.g. ``yunet``), else each route's own.
    ``provider``, ``precision``, ``threads``: the engine (:mod:`xfv.models.engines`); ``batch_size``: images per
    call (default: measured fastest for the engine on this machine).
    """

    def __init__(
        self, path: str | Path, name: str = "onnx", input_size: int | None = None, alignment: str = "arcface",
        channel_order: str = "RGB", mean: float | list[float] = 127.5, std: float | list[float] = 127.5,
        layout: str | None = None, dequantize: bool = True, detector: str | None = None, threads: int | None = None,
        batch_size: int | None = None, flip: bool = False, cache_dir: str | Path | None = None,
        provider: str = "auto", precision: str = "fp32",
    ):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model file {str(path)!r} not found.")
        if channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {channel_order!r}.")
        if layout not in (None, "NCHW", "NHWC"):
            raise ValueError(f"layout must be 'NCHW' or 'NHWC' (or None: from the graph), got {layout!r}.")
        if alignment not in ("dlib", "arcface", "none"):
            raise ValueError(f"alignment must be 'dlib', 'arcface' or 'none', got {alignment!r}.")
        if input_size is not None and (not isinstance(input_size, int) or input_size < 8):
            raise ValueError(f"input_size must be an integer >= 8, got {input_size!r}.")
        if detector is not None and detector not in DETECTORS:
            raise XfvError(f"detector must be one of {list(DETECTORS)} or None, got {detector!r}.")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise XfvError(f"batch_size must be a positive integer, got {batch_size!r}.")
        options = engine_options(provider, precision)
        mean3 = tuple(float(v) for v in np.broadcast_to(np.asarray(mean, dtype=np.float64), (3,)))
        std3 = tuple(float(v) for v in np.broadcast_to(np.asarray(std, dtype=np.float64), (3,)))
        if any(s == 0 for s in std3):
            raise ValueError(f"std must be non-zero, got {std}.")
        self.path = path
        self.batch_size = batch_size
        data = path.read_bytes()
        self._weights_sha256 = sha256(data)
        variant = "dequantized" if dequantize else "original"
        self.prepared_path = cached_conversion(
            data, partial(prepared_bytes, dequantize=bool(dequantize), source=str(path)), prefix=f"onnx-{variant}",
            version=PREPARER_VERSION, source=str(path), cache_dir=None if cache_dir is None else Path(cache_dir),
        )
        try:
            self.session = make_session(self.prepared_path, threads)
        except ORT_ERRORS as error:
            raise OnnxGraphError(f"{path}: onnxruntime cannot load the graph: {error}") from None
        self.input_name, self.layout, input_size = self._check_input(layout, input_size)
        self.output_name, embedding_dim = self._check_output()
        self.config = ModelConfig(
            name=name, input_size=input_size, alignment=alignment, embedding_dim=embedding_dim,
            channel_order=channel_order, mean=mean3, std=std3, detector=detector,
            options={"layout": self.layout, "flip": bool(flip), "dequantize": bool(dequantize), **options},
        )
        self.graph_engine = GraphEngine(
            self.prepared_path, provider=provider, precision=precision, threads=threads, feed=self._graph_input,
            faces=partial(sample_faces, alignment, input_size, detector), model_key=self.fingerprint,
            cache_dir=self.prepared_path.parent, reference=self.session)
        del self.session  # the engine's session, or a different one: this one only checked the graph
        self._probe_batch()

    def _check_input(self, layout: str | None, input_size: int | None) -> tuple[str, str, int]:
        """The image input's name, layout and side, checked against the configuration."""
        spec = self.session.get_inputs()[0]
        where = f"{self.path}: input {spec.name!r} has {spec.type} of shape {spec.shape}"
        if spec.type != "tensor(float)":
            raise OnnxGraphError(f"{where}; expected float32 images (tensor(float)).")
        if len(spec.shape) != 4:
            raise OnnxGraphError(f"{where}; expected 4 dimensions (N, C, H, W) or (N, H, W, C).")
        if layout is None:
            layout = "NHWC" if spec.shape[3] == 3 and spec.shape[1] != 3 else "NCHW"
        channels, height, width = (spec.shape[1:] if layout == "NCHW" else [*spec.shape[3:], *spec.shape[1:3]])
        if isinstance(channels, int) and channels != 3:
            raise OnnxGraphError(f"{where}; expected 3 colour channels in layout {layout} "
                                 f"(axis {1 if layout == 'NCHW' else 3}).")
        fixed = [side for side in (height, width) if isinstance(side, int)]
        if len(set(fixed)) > 1:
            raise OnnxGraphError(f"{where}; expected a square input (H = W).")
        if input_size is None:
            input_size = fixed[0] if fixed else 112
        elif fixed and fixed[0] != input_size:
            raise OnnxGraphError(f"{where}; the configuration's input_size={input_size} expects {input_size} x "
                                 f"{input_size}. Set input_size to {fixed[0]} (or leave it out).")
        return spec.name, layout, input_size

    def _check_output(self) -> tuple[str, int | None]:
        spec = self.session.get_outputs()[0]
        if spec.type != "tensor(float)" or len(spec.shape) != 2:
            raise OnnxGraphError(f"{self.path}: output {spec.name!r} has {spec.type} of shape {spec.shape}; expected "
                                 "float32 embeddings of shape (N, D) as the first output.")
        return spec.name, spec.shape[1] if isinstance(spec.shape[1], int) else None

    def _probe_batch(self) -> None:
        """Run two blank faces; a graph fixed to batch 1 inside is then fed one face at a time."""
        blank = np.zeros((2, self.config.input_size, self.config.input_size, 3), np.uint8)
        try:
            self._forward(blank)
        except (*ORT_ERRORS, OnnxGraphError):
            try:
                self._forward(blank[:1])
            except (*ORT_ERRORS, OnnxGraphError) as error:
                raise OnnxGraphError(f"{self.path}: the graph fails on a blank {self.config.input_size} px "
                                     f"{self.layout} batch fed to input {self.input_name!r}: {error}") from None
            warnings.warn(f"{self.path}: the graph runs only one image at a time; embedding with batch size 1.",
                          stacklevel=3)
            self.batch_size = 1

    @property
    def fingerprint(self) -> str:
        return self.config.fingerprint(extra=self._weights_sha256)

    @property
    def engine(self) -> str:
        return self.graph_engine.description

    def batch_for(self, images: int) -> int:
        return self.batch_size or self.graph_engine.batch_size(images)

    def _graph_input(self, faces: np.ndarray) -> np.ndarray:
        """Aligned ``uint8`` faces at the input size as the graph's input tensor (channels, mean/std, layout)."""
        x = faces.astype(np.float32)
        if self.config.channel_order == "BGR":
            x = x[..., ::-1]
        x = (x - np.float32(self.config.mean)) / np.float32(self.config.std)
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x)

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        output = self.graph_engine.run(self._graph_input(faces))
        if output.ndim != 2 or output.shape[0] != len(faces):
            raise OnnxGraphError(f"{self.path}: output {self.output_name!r} has shape {output.shape} for "
                                 f"{len(faces)} faces; expected ({len(faces)}, D).")
        return output


@register_model("onnx", "any ONNX embedding model file (path=...; input size, channels, mean/std, template configurable)",
                needs="path", source="your .onnx file (--model-path)", licence="that of your file",
                input="from the graph or --model-config (default 112 RGB, mean = std = 127.5)",
                template="--model-config alignment (default arcface)")
def create_onnx(**options) -> OnnxEmbeddingModel:
    if "path" not in options:
        raise ValueError("The onnx model needs path=<file.onnx> (CLI: --model-path).")
    return OnnxEmbeddingModel(**options)
