"""One verdict per pair whatever the route: the calibration rule, and the Powell/Blair pair through CLI verify,
CLI explain and the web upload (same distance, confidence and calibration named)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest_web import SAMPLE
from fastapi.testclient import TestClient
from PIL import Image

from xfv.cli import main
from xfv.cli.platform import sample_root
from xfv.confidence import Calibration, default_calibration
from xfv.errors import NotFoundError
from xfv.jobs import MIN_CALIBRATION_PAIRS, shipped_calibration, usable_calibration
from xfv.jobs.ingest import ingest_dataset
from xfv.jobs.precompute import precompute
from xfv.jobs.verify import dataset_calibration
from xfv.models import create_model
from xfv.store.db import open_database
from xfv.web.core.config import Settings
from xfv.web.main import create_app


def toy_calibration(pairs: int, rng) -> Calibration:
    labels = np.repeat([1, 0], pairs // 2)
    distances = np.clip(np.where(labels == 1, rng.normal(0.3, 0.1, pairs), rng.normal(0.8, 0.1, pairs)), 0, 2)
    return Calibration.fit(distances, labels, model="lbp", dataset="toy")


LBP = create_model("lbp").fingerprint  # the default configuration, the one the shipped file was fitted with
LBP_GRID4 = create_model("lbp", grid=4).fingerprint


def test_a_calibration_on_enough_pairs_is_used_and_named(rng):
    calibration = toy_calibration(MIN_CALIBRATION_PAIRS, rng)
    used, name = usable_calibration(calibration, "lbp", LBP)
    assert used is calibration and name == f"fitted: lbp on toy, {MIN_CALIBRATION_PAIRS} pairs"


def test_a_calibration_on_too_few_pairs_falls_back_to_the_shipped_one_and_says_why(rng):
    used, name = usable_calibration(toy_calibration(60, rng), "lbp", LBP)
    assert used.dataset == "lfw" and used.pairs == default_calibration("lbp").pairs
    assert name.startswith("shipped: lbp on lfw") and "only 60 pairs" in name and str(MIN_CALIBRATION_PAIRS) in name
    assert usable_calibration(None, "lbp", LBP)[1] == "shipped: lbp on lfw, 6000 pairs"
    # for a user's photos the reason is left out: the small dataset has nothing to do with them
    assert usable_calibration(toy_calibration(60, rng), "lbp", LBP, say_why=False)[1] == "shipped: lbp on lfw, 6000 pairs"


def test_no_calibration_at_all_is_a_clear_error():
    with pytest.raises(NotFoundError, match="No calibration ships for model 'nope'"):
        shipped_calibration("nope", LBP)


def test_the_shipped_calibration_holds_only_for_the_configuration_it_was_fitted_with(rng):
    assert default_calibration("lbp").fingerprints == (LBP,)
    assert LBP_GRID4 != LBP
    with pytest.raises(NotFoundError, match=f"another configuration of it \\(fingerprint {LBP}; this one is "
                                            f"{LBP_GRID4}"):
        shipped_calibration("lbp", LBP_GRID4)
    with pytest.raises(NotFoundError, match="another configuration"):
        usable_calibration(toy_calibration(60, rng), "lbp", LBP_GRID4)
    # a small dataset of such a model keeps its own fold-wise fits, and says why
    own = toy_calibration(60, rng)
    assert dataset_calibration(own, LBP_GRID4) == (
        None, (f"out of fold: fitted on the other folds of toy, only 60 pairs (fewer than {MIN_CALIBRATION_PAIRS}; "
              "no calibration ships for this configuration of lbp)"))
    assert dataset_calibration(own, LBP)[1].startswith("shipped: lbp on lfw")


@pytest.mark.slow
@pytest.mark.parametrize("name, options", [("dlib", {}), ("dlib", {"backend": "dlib"}), ("sface", {})])
def test_the_shipped_files_hold_for_the_default_models(name, options):
    """The shipped calibrations were fitted with these configurations (dlib's two backends compute the same
    network: tests/test_dlib_onnx.py); a change of options or weights must not inherit them silently."""
    assert default_calibration(name).holds_for(create_model(name, **options).fingerprint)
    assert not default_calibration(name).holds_for(create_model(name, flip=True, **options).fingerprint)


def test_fitted_calibrations_record_and_check_their_fingerprint(rng, tmp_path, capsys):
    labels = np.repeat([1, 0], 50)
    distances = np.clip(np.where(labels == 1, rng.normal(0.3, 0.1, 100), rng.normal(0.8, 0.1, 100)), 0, 2)
    fitted = Calibration.fit(distances, labels, model="lbp", dataset="toy", fingerprint=LBP_GRID4)
    assert fitted.fingerprints == (LBP_GRID4,) and fitted.holds_for(LBP_GRID4) and not fitted.holds_for(LBP)
    path = fitted.save(tmp_path / "grid4.json")
    assert Calibration.from_dict(json.loads(path.read_text())).fingerprints == (LBP_GRID4,)
    assert toy_calibration(100, rng).holds_for(LBP)  # no fingerprint recorded: any configuration
    big = Calibration.fit(np.tile(distances, 10), np.tile(labels, 10), model="lbp", dataset="toy",
                          fingerprint=LBP_GRID4)
    assert usable_calibration(big, "lbp", LBP_GRID4) == (big, "fitted: lbp on toy, 1000 pairs")
    used, name = usable_calibration(big, "lbp", LBP)  # enough pairs, but another configuration
    assert used.dataset == "lfw" and name.endswith("(the one fitted on toy was fitted with another configuration of lbp)")
    bad = json.loads(path.read_text()) | {"fingerprints": "abc"}
    with pytest.raises(ValueError, match="fingerprints must be a list of model fingerprints"):
        Calibration.from_dict(bad)
    # xfv verify with the default lbp refuses a file fitted for grid 4, naming both fingerprints
    faces = []
    for k in range(2):
        faces.append(str(tmp_path / f"face{k}.png"))
        Image.fromarray(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)).save(faces[-1])
    code = main(["verify", *faces, "--aligned", "--model", "lbp", "--calibration", str(path)])
    assert code == 2 and f"another configuration of 'lbp' (fingerprint {LBP_GRID4}; this one is {LBP})" in (
        capsys.readouterr().err)


@pytest.mark.slow
def test_powell_blair_gives_one_verdict_on_every_route(shared_data, tmp_path, capsys):
    photos = [str(shared_data / "lfw" / name.rsplit("_", 1)[0] / f"{name}.jpg")
              for name in ("Colin_Powell_0040", "Tony_Blair_0018")]
    assert main(["verify", *photos, "--json"]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert main(["explain", *photos, "--json", "--methods", "3", "--patch-sizes", "28", "--out", str(tmp_path / "x")]) == 0
    explained = json.loads(capsys.readouterr().out)

    # the web app over the demo's database: its dlib calibration has only the sample's 60 pairs
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    factory = open_database(url)
    ingest_dataset(factory, "lfw", sample_root(), name=SAMPLE, workers=1)
    precompute(factory, SAMPLE, create_model("dlib"))
    with TestClient(create_app(Settings(db_url=url))) as client:
        files = {f"image{i}": (f"{i}.jpg", Path(path).read_bytes()) for i, path in enumerate(photos, 1)}
        response = client.post("/api/verify", files=files, data={"model": "dlib"})
    assert response.status_code == 200, response.text
    web = response.json()

    for other in (explained, web):
        assert other["distance"] == pytest.approx(verified["distance"], abs=1e-4)
        assert other["confidence"] == pytest.approx(verified["confidence"], abs=1e-4)
        assert other["threshold"] == verified["threshold"] and other["prediction"] == verified["prediction"]
    assert verified["calibration"] == explained["calibration"] == web["calibration"] == "shipped: dlib on lfw, 6000 pairs"
    assert verified["prediction"] == "different" and verified["confidence"] < 0.99
