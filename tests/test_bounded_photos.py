"""Issue 9: a photo's cost is bounded by design (pixel cap from the header, JPEG draft decoding, integer
reduction, a pixel budget per detector, boxes mapped back), detection is thread-safe without a global lock, and
the messages about photos are readable (names, directories, several faces)."""

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from photos import save_constant, save_landscape
from PIL import Image

from xfv.cli import main
from xfv.errors import TooLargeError, XfvError
from xfv.faces import FaceDetector, detection, images, load_face, load_image
from xfv.faces.detection import PIXEL_BUDGET, detection_plan

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "xfv" / "data" / "sample"
FACE = SAMPLE / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"


def _declared_jpeg(width: int, height: int) -> bytes:
    """A small JPEG whose header declares ``width`` x ``height`` (its SOF0 frame patched), with 16 x 16 of data."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 150)).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def test_the_pixel_cap_is_checked_from_the_header(tmp_path):
    path = save_constant(tmp_path / "big.png", 300, 200)
    with pytest.raises(TooLargeError, match=r"big.png: 300 x 200 pixels is more than the limit of 50000 pixels"):
        load_image(path, max_pixels=50_000)
    start = time.perf_counter()
    with pytest.raises(TooLargeError, match=r"image1 declares more pixels than the limit"):
        load_image(_declared_jpeg(60000, 60000), name="image1")  # Pillow's own bomb guard, before any decoding
    assert time.perf_counter() - start < 1


def test_a_jpeg_declaring_12000_squared_is_decoded_at_a_reduced_scale():
    start = time.perf_counter()
    image = load_image(_declared_jpeg(12000, 12000), name="image1")
    assert image.shape == (3000, 3000, 3)  # DCT scale 1/4 (libjpeg fills the missing data with grey)
    assert time.perf_counter() - start < 3


def test_large_jpegs_decode_in_draft_mode_and_other_formats_are_reduced(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "WORKING_PIXELS", 100_000)
    jpeg = save_landscape(tmp_path / "photo.jpg", 1600, 1200)
    assert load_image(jpeg).shape == (300, 400, 3)  # DCT scale 1/4: the smallest keeping >= 100,000 pixels
    png = save_constant(tmp_path / "photo.png", 1600, 1200)
    assert load_image(png).shape == (300, 400, 3)  # reduced by 4 after decoding
    small = save_constant(tmp_path / "small.png", 300, 300)
    assert load_image(small).shape == (300, 300, 3)  # under 4 x the working size: untouched
    # Over the cap before, under it after DCT scaling: accepted, not refused.
    assert load_image(jpeg, max_pixels=150_000).shape == (300, 400, 3)


def test_lfw_images_are_detected_as_before_and_large_ones_within_the_budget():
    assert detection_plan((250, 250, 3), 1, PIXEL_BUDGET["hog"]) == (1, 1.0)
    assert detection_plan((250, 250, 3), 1, PIXEL_BUDGET["cnn"]) == (1, 1.0)  # the dataset detector's CNN
    assert detection_plan((1200, 1600, 3), 1, PIXEL_BUDGET["hog"]) == (1, 1.0)
    upsample, scale = detection_plan((1200, 1600, 3), 1, PIXEL_BUDGET["cnn"])
    assert upsample == 0 and 1200 * 1600 * scale**2 == pytest.approx(PIXEL_BUDGET["cnn"])
    assert detection_plan((600, 800, 3), 2, 2_000_000) == (1, 1.0)  # less upsampling before any downscale
    for shape in ((3000, 4000, 3), (6300, 6300, 3), (12000, 12000, 3)):
        for budget in PIXEL_BUDGET.values():
            upsample, scale = detection_plan(shape, 1, budget)
            assert shape[0] * shape[1] * 4**upsample * scale**2 <= budget * 1.000001


def test_boxes_found_on_a_downscaled_copy_map_back_to_the_full_image(monkeypatch):
    face = load_image(FACE)
    (reference,) = FaceDetector("hog", upsample=0).detect(face)
    large = np.ascontiguousarray(np.kron(face, np.ones((4, 4, 1), dtype=np.uint8)))  # 1000 x 1000
    monkeypatch.setitem(PIXEL_BUDGET, "hog", 250 * 250)  # the detector sees a 250 x 250 copy
    (found,) = FaceDetector("hog", upsample=1).detect(large)
    np.testing.assert_allclose(found.box, np.array(reference.box) * 4, atol=8)
    crop = load_face(FACE, alignment="dlib")
    monkeypatch.setattr(detection, "_per_thread", threading.local())
    assert crop.shape == (112, 112, 3)


def test_each_thread_has_its_own_detectors_and_gets_the_same_answer():
    image = load_image(FACE)
    serial = FaceDetector("hog+cnn").detect(image)
    results, detectors = [None] * 4, [None] * 4

    def work(i):
        results[i] = FaceDetector("hog+cnn").detect(image)
        detectors[i] = detection._detector("hog")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result == serial for result in results)
    assert len({id(d) for d in detectors}) == 4


def test_messages_name_the_image_without_object_reprs(tmp_path):
    with pytest.raises(XfvError, match=r"^image1 is not an image file Pillow can read\.$"):
        load_image(b"not an image", name="image1")
    with pytest.raises(XfvError, match=r"^the uploaded image is not an image file"):
        load_image(b"not an image")
    tiny = io.BytesIO()
    Image.new("RGB", (4, 4)).save(tiny, format="PNG")
    with pytest.raises(XfvError, match=r"^image2 is too small \(4 x 4 pixels; at least 8 x 8 expected\)"):
        load_image(tiny.getvalue(), name="image2")
    with pytest.raises(XfvError, match=rf"{tmp_path} is a directory, not an image file"):
        load_image(tmp_path)
    with pytest.raises(XfvError, match="image1: an aligned crop must be square"):
        load_face(save_constant(tmp_path / "wide.png", 20, 10), alignment="dlib", aligned=True, name="image1")


def test_cli_verify_says_directory_and_warns_of_several_faces(tmp_path, capsys):
    assert main(["verify", str(tmp_path), str(FACE), "--model", "lbp"]) == 2
    assert f"xfv verify: error: {tmp_path} is a directory, not an image file." in capsys.readouterr().err
    face = load_image(FACE)
    group = tmp_path / "two.png"
    Image.fromarray(np.concatenate([face, face[:, ::-1]], axis=1)).save(group)
    assert main(["verify", str(group), str(FACE), "--model", "lbp", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["prediction"] in ("same", "different")
    assert f"xfv verify: warning: {group}: 2 faces found, using the largest." in captured.err.splitlines()


def test_ingest_names_a_non_image_by_its_path(tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(FACE.read_bytes())
    (tmp_path / "b.jpg").write_text("not an image")
    (tmp_path / "pairs.csv").write_text("a.jpg,b.jpg,0\n")
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["ingest", "--dataset", "csv", "--root", str(tmp_path), "--db", db, "--workers", "1"]) == 2
    assert f"{tmp_path / 'b.jpg'} is not an image file Pillow can read." in capsys.readouterr().err


@pytest.mark.slow
def test_issue_photos_through_verify_are_bounded(tmp_path):
    """The photos of issue 9 through ``xfv verify`` (a process of its own): a clear error within 5 s (15 s here,
    for a loaded CI machine) and 1 GB of peak RSS."""
    photos = [save_landscape(tmp_path / "landscape.jpg", 1600, 1200),
              save_landscape(tmp_path / "landscape-large.jpg", 4000, 3000),
              save_constant(tmp_path / "constant.png", 6300, 6300)]
    # VmHWM, not ru_maxrss: Linux carries the forking parent's (pytest's) high-water mark into ru_maxrss across
    # exec, while VmHWM belongs to the new process's own memory
    script = ("import sys; from xfv.cli import main; code = main(sys.argv[1:]); "
              "hwm = next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')); "
              "print('peak', hwm, file=sys.stderr); sys.exit(code)")
    for photo in photos:
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", script, "verify", str(photo), str(FACE), "--model", "lbp"],
                                capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        peak_mb = int(result.stderr.split("peak ")[-1]) / 1024
        assert result.returncode == 2 and f"No face found in {photo}" in result.stderr
        assert seconds < 15 and peak_mb < 1024, (photo.name, seconds, peak_mb)
