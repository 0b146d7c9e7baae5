"""Reduced precision: an int8 copy of an ONNX embedding graph, and the faces it is calibrated on.

int8 is ONNX Runtime's static quantisation in QDQ form (``QuantizeLinear`` / ``DequantizeLinear`` pairs around
each quantised operator): weights symmetric int8 per output channel, activations asymmetric uint8 per tensor with
ranges from MinMax calibration (uint8 x int8 is what x86's VNNI instructions multiply; int8 activations ran slower
than fp32 on ONNX Runtime here). The calibration images are the aligned faces of the bundled LFW sample (``xfv/data/sample``,
96 images; never the benchmark the model is judged on beyond those 96), each also with random cells blacked out,
as X-Maps' occlusions and masks do, so that the ranges cover what the explainer feeds the model. The recipe
(:data:`INT8_RECIPE`) is part of the model's fingerprint; the quantised file is made once and cached under the
fp32 graph's sha256 (:func:`xfv.models.converted.cached_conversion`).

bf16 needs no file of its own: OpenVINO's CPU plugin runs the fp32 graph with its inference precision set to bf16
(:mod:`xfv.models.engines`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from xfv.errors import XfvError
from xfv.models.base import resize_faces
from xfv.models.converted import cached_conversion

#: How the int8 graph is made; bump it whenever the graph it gives changes (it is part of the fingerprint).
INT8_RECIPE = "ort-qdq-u8s8-per-channel-minmax-sample-v1"
CALIBRATION_SEED = 20


def sample_root() -> Path:
    """The bundled LFW sample (``xfv/data/sample``): 96 deep-funneled images of 60 pairs."""
    return Path(str(resources.files("xfv") / "data" / "sample"))


@lru_cache(maxsize=8)
def sample_faces(alignment: str, size: int, detector: str | None, limit: int | None = None) -> np.ndarray:
    """The sample's faces aligned in ``alignment`` at ``size`` px (``uint8 (N, size, size, 3)``, sorted by path; the
    first ``limit``), found by ``detector`` (None: HOG, the CNN where it misses, the face nearest the centre)."""
    from xfv.faces import FaceDetector, detect_and_align, load_image, model_detector

    detector_ = model_detector(FaceDetector("hog+cnn", fallback="centre", select="centre", max_offset=0.2), detector)
    faces = []
    for path in sorted(sample_root().glob("*/*.jpg"))[:limit]:  # several faces: the centred one is taken
        faces.append(detect_and_align(load_image(path), alignment=alignment, size=max(size, 16),
                                      detector=detector_, name=path.name).crop)
    return resize_faces(np.stack(faces), size)  # crops are made at 16 px at least


def calibration_faces(faces: np.ndarray, seed: int = CALIBRATION_SEED) -> np.ndarray:
    """``faces`` and, for each, a copy with a random quarter of its 8 x 8 grid of cells blacked out."""
    rng = np.random.default_rng(seed)
    size = faces.shape[1]
    cells = np.arange(8 + 1) * size // 8
    occluded = faces.copy()
    for face in occluded:
        for cell in rng.choice(64, size=16, replace=False):
            row, col = divmod(int(cell), 8)
            face[cells[row] : cells[row + 1], cells[col] : cells[col + 1]] = 0
    return np.concatenate([faces, occluded])


def quantize_int8(graph: bytes, inputs: np.ndarray, *, source: str = "model") -> bytes:
    """The int8 QDQ graph of ``graph`` (:data:`INT8_RECIPE`), calibrated on ``inputs`` (the graph's own input
    tensors, e.g. normalised faces)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load_from_string(graph)
    input_name = model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(np.array_split(inputs, max(1, len(inputs) // 16)))

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    with tempfile.TemporaryDirectory(prefix="xfv-int8-") as folder:
        fp32, prepared, int8 = (Path(folder) / name for name in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        fp32.write_bytes(graph)
        try:
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        except Exception as error:  # noqa: BLE001 - onnxruntime's pre-processing raises many kinds
            raise XfvError(f"{source}: cannot prepare the graph for int8 quantisation: {error}") from None
        quantize_static(str(prepared), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        extra_options={"WeightSymmetric": True})
        return int8.read_bytes()


def int8_graph(fp32_path: Path, inputs: Callable[[], np.ndarray], *, cache_dir: Path | None = None) -> Path:
    """The cached int8 graph of the fp32 graph at ``fp32_path``; ``inputs()`` gives the calibration tensors (only
    called when the file has to be made)."""
    data = Path(fp32_path).read_bytes()
    return cached_conversion(data, lambda graph: quantize_int8(graph, inputs(), source=str(fp32_path)),
                             prefix="int8", version=INT8_RECIPE, source=str(fp32_path), cache_dir=cache_dir,
                             meta={"recipe": INT8_RECIPE})
