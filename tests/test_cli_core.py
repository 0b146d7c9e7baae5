import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from xfv.cli import main
from xfv.cli.common import verdict_line
from xfv.jobs.verify import Verdict


@pytest.fixture()
def crop_files(tmp_path, rng):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"crop{i}.png")
        Image.fromarray(rng.integers(0, 256, size=(112, 112, 3), dtype=np.uint8)).save(paths[-1])
    return [str(p) for p in paths]


def test_embed_aligned_writes_rows_in_order(crop_files, tmp_path, capsys):
    out = tmp_path / "e.npy"
    assert main(["embed", *crop_files, "--aligned", "--model", "lbp", "--out", str(out)]) == 0
    embeddings = np.load(out)
    assert embeddings.shape == (3, 8 * 8 * 59)
    assert main(["embed", crop_files[2], "--aligned", "--model", "lbp", "--out", str(out)]) == 0
    np.testing.assert_allclose(np.load(out)[0], embeddings[2], atol=1e-6)


def test_verify_json_with_threshold(crop_files, capsys):
    assert main(["verify", crop_files[0], crop_files[0], "--aligned", "--model", "lbp", "--threshold", "0.1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["prediction"] == "same" and result["distance"] == pytest.approx(0, abs=1e-6)
    assert set(result) == {"model", "distance", "threshold", "prediction", "confidence", "calibration", "engine",
                           "cscore", "quality1", "quality2", "quality_note", "reading"}
    assert result["engine"] == "python (in-process)"
    assert result["confidence"] is None and result["calibration"].startswith("none")
    assert result["cscore"] is None and result["quality1"] is None and result["quality_note"] is None
    assert result["reading"] is None


def test_a_verdict_more_likely_wrong_than_right_says_so():
    """The quality-aware C-Score is the probability that the decision is right and may fall below 0.5; the verdict
    words it, in the line and in the JSON (docs/quality.md)."""
    verdict = Verdict("dlib", 0.1069, 0.0928, "different", 0.37, "shipped: dlib on lfw, 6000 pairs",
                      cscore="quality-aware", quality1=0.981, quality2=0.988)
    assert "confidence 0.370: more likely wrong than right; model dlib" in verdict_line(verdict)
    assert verdict.to_dict()["reading"] == "more likely wrong than right"
    sure = replace(verdict, prediction="same", distance=0.05, confidence=0.93)
    assert "confidence 0.930; model dlib" in verdict_line(sure) and sure.to_dict()["reading"] is None


def test_cli_errors_are_clean(crop_files, tmp_path, capsys):
    assert main(["embed", crop_files[0], "--aligned", "--model", "lbp", "--out", str(tmp_path / "e.txt")]) == 2
    assert "--out must name an .npy file" in capsys.readouterr().err
    assert main(["embed", str(tmp_path / "missing.png"), "--model", "lbp", "--out", str(tmp_path / "e.npy")]) == 2
    assert "missing.png" in capsys.readouterr().err
    assert main(["verify", crop_files[0], crop_files[1], "--model", "nope", "--aligned"]) == 2
    assert "Unknown model 'nope'" in capsys.readouterr().err
    assert main(["embed", crop_files[0], "--backend", "dlib", "--model", "lbp", "--out", str(tmp_path / "e.npy")]) == 2
    assert "--backend applies to the dlib model only" in capsys.readouterr().err


def test_align_writes_png_per_input(shared_data, tmp_path):
    photos = [shared_data / "testfaces" / "face_recognition" / "biden" / name for name in ("biden.jpg", "biden2.jpg")]
    assert main(["align", *map(str, photos), "--out", str(tmp_path / "aligned")]) == 0
    for photo in photos:
        with Image.open(tmp_path / "aligned" / f"{photo.stem}.png") as crop:
            assert crop.size == (112, 112)


def test_align_no_face(tmp_path, capsys):
    Image.new("RGB", (100, 100), (200, 200, 200)).save(tmp_path / "blank.png")
    assert main(["align", str(tmp_path / "blank.png"), "--out", str(tmp_path / "out")]) == 2
    assert "No face found in" in capsys.readouterr().err
