import warnings

import numpy as np
import pytest
from PIL import Image

from xfv.faces import FaceDetector, NoFaceError, detect_and_align, load_face, load_image
from xfv.models import create_model
from xfv.verification import cosine_distance


def _save(image, path, **kwargs):
    image.save(path, **kwargs)
    return path


def test_load_image_conversions(tmp_path):
    grey = _save(Image.new("L", (20, 10), 100), tmp_path / "grey.png")
    assert load_image(grey).shape == (10, 20, 3)
    cmyk = _save(Image.new("CMYK", (20, 10), (0, 0, 0, 0)), tmp_path / "cmyk.jpg")
    assert load_image(cmyk).mean() > 240  # no ink = white
    rgba = _save(Image.new("RGBA", (20, 10), (0, 0, 0, 0)), tmp_path / "alpha.png")
    assert load_image(rgba).min() == 255  # transparent -> white background
    assert load_image(rgba.read_bytes()).shape == (10, 20, 3)


def test_load_image_applies_exif_rotation(tmp_path):
    image = Image.new("RGB", (30, 10), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = _save(image, tmp_path / "rotated.jpg", exif=exif)
    assert load_image(path).shape == (30, 10, 3)


@pytest.mark.parametrize("content, message", [(b"not an image", "not an image"), (None, "truncated|decoded")])
def test_load_image_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.jpg"
    if content is None:
        _save(Image.new("RGB", (64, 64), (10, 20, 30)), path)
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_image(path)


def test_load_image_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_image(tmp_path / "missing.png")


def test_no_face_is_a_clear_error(tmp_path):
    path = _save(Image.new("RGB", (120, 120), (128, 128, 128)), tmp_path / "wall.png")
    with pytest.raises(NoFaceError, match=r"No face found in .*wall.png"):
        load_face(path, alignment="dlib")


def test_centre_fallback_and_aligned_inputs(tmp_path, rng):
    image = rng.integers(0, 256, size=(250, 250, 3), dtype=np.uint8)
    face = detect_and_align(image, alignment="dlib", size=112, detector=FaceDetector("hog", fallback="centre"))
    assert face.detector == "centre" and face.crop.shape == (112, 112, 3)
    path = _save(Image.fromarray(image[:150, :150]), tmp_path / "crop.png")
    assert load_face(path, alignment="dlib", size=112, aligned=True).shape == (112, 112, 3)
    wide = _save(Image.fromarray(image[:100, :150]), tmp_path / "wide.png")
    with pytest.raises(ValueError, match="must be square"):
        load_face(wide, alignment="dlib", aligned=True)


def test_detector_option_errors():
    with pytest.raises(ValueError, match="Unknown detector 'mtcnn'"):
        FaceDetector("mtcnn")
    with pytest.raises(ValueError, match="fallback"):
        FaceDetector(fallback="guess")
    with pytest.raises(ValueError, match="select must be"):
        FaceDetector(select="smallest")
    with pytest.raises(ValueError, match=r"max_offset must be in \(0, 1\]"):
        FaceDetector(max_offset=0)


@pytest.mark.slow
def test_real_faces_align_in_both_templates(shared_data):
    photo = shared_data / "testfaces" / "face_recognition" / "obama" / "obama.jpg"
    for template in ("dlib", "arcface"):
        crop = load_face(photo, alignment=template, size=112)
        assert crop.shape == (112, 112, 3) and crop.std() > 20


@pytest.mark.slow
def test_several_faces_use_the_largest_with_a_warning(shared_data):
    group = next((shared_data / "testfaces" / "face_recognition" / "_multi_face").iterdir())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_face(group, alignment="dlib")
    assert any("faces found, using the largest" in str(w.message) for w in caught)


@pytest.mark.slow
def test_centre_selection_picks_the_face_nearest_the_middle(shared_data):
    group = shared_data / "testfaces" / "face_recognition" / "_multi_face" / "obama_and_biden.jpg"
    image = load_image(group)
    faces = FaceDetector().detect(image)
    chosen = FaceDetector(select="centre").detect_one(image)
    centre = np.array([image.shape[1], image.shape[0]]) / 2
    distance = lambda f: np.hypot(*(np.array([(f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2]) - centre))
    assert len(faces) > 1 and distance(chosen) == min(distance(f) for f in faces)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["dlib", "onnx"])
def test_same_person_is_closer_than_different_people(shared_data, backend):
    root = shared_data / "testfaces" / "face_recognition"
    model = create_model("dlib", backend=backend)
    paths = [root / "obama" / "obama.jpg", root / "obama" / "obama2.jpg", root / "biden" / "biden.jpg",
             root / "kit_harington" / next(p.name for p in (root / "kit_harington").iterdir())]
    faces = np.stack([load_face(p, alignment="dlib", size=150) for p in paths])
    e = model.embed(faces)
    same = cosine_distance(e[0], e[1])
    assert same < cosine_distance(e[0], e[2]) and same < cosine_distance(e[0], e[3])
    assert same < 0.1 < cosine_distance(e[0], e[2])


@pytest.mark.slow
def test_a_bystander_does_not_stand_in_for_a_missed_centred_face(shared_data):
    # HOG misses the subject of this LFW image and finds only a man at the left edge.
    image = load_image(shared_data / "lfw" / "Tung_Chee-hwa" / "Tung_Chee-hwa_0001.jpg")
    bystander = FaceDetector("hog+cnn", select="centre").detect_one(image)
    subject = FaceDetector("hog+cnn", select="centre", max_offset=0.2).detect_one(image)
    assert bystander.source == "hog" and bystander.box[2] < image.shape[1] / 2
    assert subject.source == "cnn" and subject.box[0] < image.shape[1] / 2 < subject.box[2]
