"""Photo -> aligned crop: load, detect, landmark, align."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from xfv.errors import XfvError
from xfv.faces.alignment import align_face
from xfv.faces.detection import DETECTORS, FaceDetector
from xfv.faces.images import image_name, load_image

CANONICAL_SIZE = 112  # X-Maps are defined on 112 x 112 crops (method.md §0)


@dataclass(frozen=True)
class AlignedFace:
    crop: np.ndarray  # uint8 (size, size, 3) RGB
    box: tuple[int, int, int, int]  # the detection in the source image
    detector: str  # which detector found it ("hog", "cnn", "yunet", "centre")
    found: int = 1  # faces the detector found (0: none, the centre fallback); the selected one was aligned
    score: float | None = None  # that detector's confidence (DetectedFace.score)


def model_detector(detector: FaceDetector | None, required: str | None) -> FaceDetector:
    """The detector for a model's crops: ``detector`` (default: :class:`FaceDetector`'s defaults), with its method
    replaced by ``required`` when the model names one (``ModelConfig.detector``), its other settings kept."""
    detector = detector or FaceDetector()
    if required is None or required == detector.method:
        return detector
    if required not in DETECTORS:
        raise XfvError(f"Unknown detector {required!r}; expected one of {list(DETECTORS)}.")
    replaced = copy.copy(detector)
    replaced.method = required
    return replaced


def detect_and_align(
    image: np.ndarray, *, alignment: str, size: int = CANONICAL_SIZE, detector: FaceDetector | None = None,
    name: str = "image",
) -> AlignedFace:
    """Find the detector's face in ``image`` (the largest, or the one nearest the centre) and align it into a
    ``size`` crop of the ``alignment`` template; ``found`` says how many there were (no warning: the caller
    tells, see :meth:`FaceDetector.chosen_message`)."""
    if alignment == "none":
        return AlignedFace(align_face(image, None, "none", size), (0, 0, image.shape[1], image.shape[0]), "none")
    face, found = (detector or FaceDetector()).choose(image, name=name)
    return AlignedFace(align_face(image, face, alignment, size), face.box, face.source, found, face.score)


def load_face(
    path: str | Path | bytes, *, alignment: str, size: int = CANONICAL_SIZE, aligned: bool = False,
    detector: FaceDetector | None = None, name: str | None = None,
) -> np.ndarray:
    """Load a photo and return its aligned ``uint8 (size, size, 3)`` crop.

    With ``aligned=True`` the image is taken as an already aligned crop: no detection, only a resize. ``name``:
    how messages call the image (default: its path). Several faces: a warning says which was used.
    """
    name = image_name(path, name)
    image = load_image(path, name=name)
    if aligned:
        if image.shape[0] != image.shape[1]:
            raise XfvError(f"{name}: an aligned crop must be square, got {image.shape[1]} x {image.shape[0]}.")
        if image.shape[0] == size:
            return image
        interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
        return cv2.resize(image, (size, size), interpolation=interpolation)
    detector = detector or FaceDetector()
    face = detect_and_align(image, alignment=alignment, size=size, detector=detector, name=name)
    if (message := detector.chosen_message(name, face.found)) is not None:
        warnings.warn(message, stacklevel=2)
    return face.crop
