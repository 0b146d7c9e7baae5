"""Alignment into a model's canonical crop.

Templates:
- ``dlib``: dlib's face-chip geometry (``dlib.get_face_chip`` with padding 0.25), the geometry dlib's ResNet was
  trained on. Scale-free: a 112 px chip is the 150 px chip at a lower resolution.
- ``arcface``: the 5-point ArcFace template on 112 x 112 (eye centres, nose tip, mouth corners), reached by a
  similarity transform from the detection's own 5 landmarks where the detector gives them (YuNet), else from
  dlib's 68 landmarks; scaled for other sizes.
- ``none``: no alignment; the image is resized to the crop size.
"""

from __future__ import annotations

import cv2
import dlib
import numpy as np

from xfv.faces.detection import DetectedFace, landmarks

ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
TEMPLATES = ("dlib", "arcface", "none")
DLIB_CHIP_PADDING = 0.25


def _arcface_points(shape: dlib.full_object_detection) -> np.ndarray:
    points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
    left_eye, right_eye = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    return np.stack([left_eye, right_eye, points[30], points[48], points[54]])


def align_face(image: np.ndarray, face: DetectedFace | None, template: str, size: int) -> np.ndarray:
    """Crop ``face`` from ``image`` into a ``size`` x ``size`` RGB crop in the given template."""
    if template not in TEMPLATES:
        raise ValueError(f"Unknown alignment template {template!r}; expected one of {list(TEMPLATES)}.")
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"Crop size must be an integer >= 16, got {size!r}.")
    if template == "none":
        return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    if template == "dlib":
        shape = landmarks(image, face, points=5)
        return np.ascontiguousarray(dlib.get_face_chip(image, shape, size=size, padding=DLIB_CHIP_PADDING))
    if face is not None and face.points is not None:
        source = np.array(face.points, dtype=np.float64)
    else:
        source = _arcface_points(landmarks(image, face, points=68))
    target = ARCFACE_TEMPLATE_112 * (size / 112.0)
    matrix, _ = cv2.estimateAffinePartial2D(source, target, method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("Could not estimate the alignment transform from the landmarks.")
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
