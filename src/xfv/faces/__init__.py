"""Faces: image loading, detection, 5-point landmarks and alignment into a model's canonical crop."""

from xfv.faces.alignment import ARCFACE_TEMPLATE_112, align_face
from xfv.faces.detection import DetectedFace, FaceDetector, NoFaceError
from xfv.faces.images import load_image
from xfv.faces.pipeline import AlignedFace, detect_and_align, load_face, model_detector

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "AlignedFace",
    "DetectedFace",
    "FaceDetector",
    "NoFaceError",
    "align_face",
    "detect_and_align",
    "load_face",
    "load_image",
    "model_detector",
]
