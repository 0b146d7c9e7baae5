"""YuNet: boxes and 5 landmarks, bounded cost on large photos, and a model's own detector on every route."""

from pathlib import Path

import cv2
import numpy as np
import pytest

import xfv
from xfv.faces import ARCFACE_TEMPLATE_112, FaceDetector, NoFaceError, align_face, load_image, model_detector
from xfv.faces.yunet import detect_yunet

SAMPLE = Path(xfv.__file__).parent / "data" / "sample"


@pytest.fixture(scope="module")
def photo():
    return load_image(SAMPLE / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg")


def test_yunet_finds_the_face_with_five_landmarks_in_arcface_order(photo):
    faces = FaceDetector("yunet").detect(photo)
    assert len(faces) == 1 and faces[0].source == "yunet"
    (left, top, right, bottom), points = faces[0].box, np.array(faces[0].points)
    assert points.shape == (5, 2)
    assert np.all((points[:, 0] > left) & (points[:, 0] < right) & (points[:, 1] > top) & (points[:, 1] < bottom))
    # image-left eye, image-right eye, nose, image-left and image-right mouth corner: as the template.
    assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]
    assert max(points[0, 1], points[1, 1]) < points[2, 1] < min(points[3, 1], points[4, 1])


def test_large_photos_are_detected_on_a_downscaled_copy(photo):
    large = cv2.resize(photo, (photo.shape[1] * 8, photo.shape[0] * 8), interpolation=cv2.INTER_CUBIC)
    small_points = np.array(detect_yunet(photo)[0].points)
    large_face = detect_yunet(large, max_side=256)[0]
    assert large_face.box[2] <= large.shape[1] and large_face.box[3] <= large.shape[0]
    # Points come back in the large image's pixels: 8x the small ones, within a few small-image pixels.
    np.testing.assert_allclose(np.array(large_face.points) / 8, small_points, atol=3)
    with pytest.raises(ValueError, match="max_side"):
        detect_yunet(photo, max_side=0)


def test_arcface_alignment_uses_the_detectors_landmarks(photo):
    face = FaceDetector("yunet").detect(photo)[0]
    crop = align_face(photo, face, "arcface", 112)
    # The landmarks land on the template: re-detecting on the crop finds the eyes and nose there (the robust
    # similarity fit leaves the mouth corners a few pixels off on this face).
    again = detect_yunet(crop)
    assert again, "no face found on the aligned crop"
    error = np.abs(np.array(again[0].points) - ARCFACE_TEMPLATE_112)
    assert error[:3].max() < 3 and error.max() < 8


def test_yunet_no_face_follows_the_fallback(rng):
    blank = np.full((200, 200, 3), 127, np.uint8)
    with pytest.raises(NoFaceError, match="yunet"):
        FaceDetector("yunet").detect_one(blank)
    assert FaceDetector("yunet", fallback="centre").detect_one(blank).source == "centre"


def test_model_detector_replaces_only_the_method():
    route = FaceDetector("hog+cnn", fallback="centre", select="centre", max_offset=0.2)
    assert model_detector(route, None) is route
    replaced = model_detector(route, "yunet")
    assert replaced.method == "yunet" and route.method == "hog+cnn"
    assert {k: v for k, v in replaced.options.items() if k != "detector"} == \
           {k: v for k, v in route.options.items() if k != "detector"}
    assert model_detector(None, "yunet").method == "yunet"
    with pytest.raises(ValueError, match="Unknown detector 'mtcnn'"):
        model_detector(route, "mtcnn")
