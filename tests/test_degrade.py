"""``xfv data degrade``: a seeded, reproducible degraded copy of a pair-list dataset (XQLFW-style)."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
from PIL import Image

from xfv.cli import main
from xfv.datasets import read_pairs
from xfv.datasets.degrade import (
    Degradation,
    DegradationRanges,
    degrade_dataset,
    degrade_image,
    draw_degradation,
    read_manifest,
)
from xfv.errors import XfvError

PEOPLE = ("Ann", "Bob", "Cid", "Dee")


@pytest.fixture()
def tiny_lfw(tmp_path):
    """Two folds of 3 + 3 pairs over 12 textured 96 x 96 JPEGs in LFW's layout."""
    rng = np.random.default_rng(3)
    root = tmp_path / "lfw"
    for person in PEOPLE:
        (root / person).mkdir(parents=True)
        for n in (1, 2, 3):
            base = cv2.resize(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8), (96, 96), interpolation=cv2.INTER_CUBIC)
            Image.fromarray(base).save(root / person / f"{person}_{n:04d}.jpg", quality=95)
    lines = ["2\t3", "Ann\t1\t2", "Bob\t1\t3", "Cid\t2\t3", "Ann\t1\tBob\t2", "Cid\t1\tDee\t1", "Dee\t2\tAnn\t3",
             "Dee\t1\t3", "Ann\t2\t3", "Bob\t2\t3", "Bob\t1\tCid\t3", "Dee\t3\tCid\t2", "Ann\t1\tDee\t2"]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root


def sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64), cv2.CV_64F).var())


def test_image_mode_keeps_layout_copies_clean_images_and_is_reproducible(tiny_lfw, tmp_path):
    report = degrade_dataset("lfw", tiny_lfw, tmp_path / "a", seed=7, fraction=0.5)
    degrade_dataset("lfw", tiny_lfw, tmp_path / "b", seed=7, fraction=0.5)
    degrade_dataset("lfw", tiny_lfw, tmp_path / "c", seed=8, fraction=0.5)
    manifest = read_manifest(tmp_path / "a")
    assert report.images == 12 and len(manifest) == 12 and 0 < report.degraded < 12
    assert report.degraded == sum(manifest.values())
    for path, degraded in manifest.items():
        original, copy = (tiny_lfw / path).read_bytes(), (tmp_path / "a" / path).read_bytes()
        assert (copy == original) != degraded  # clean: byte for byte; degraded: rewritten
        assert copy == (tmp_path / "b" / path).read_bytes()  # same seed, same bytes
    assert read_manifest(tmp_path / "c") != manifest or any(
        (tmp_path / "a" / p).read_bytes() != (tmp_path / "c" / p).read_bytes() for p in manifest)
    assert report.dataset_format == "lfw" and report.pairs_file.name == "pairs.txt"
    copy_pairs, source_pairs = read_pairs("lfw", tmp_path / "a").pairs, read_pairs("lfw", tiny_lfw).pairs
    assert [(p.fold, p.label, p.image1, p.image2) for p in copy_pairs] == \
        [(p.fold, p.label, p.image1, p.image2) for p in source_pairs]
    bands = [manifest[p.image1] + manifest[p.image2] for p in copy_pairs]
    assert (report.both_clean, report.one_degraded, report.both_degraded) == tuple(bands.count(k) for k in range(3))
    assert "not the XQLFW dataset" in (tmp_path / "a" / "DEGRADED.md").read_text()


def test_fraction_zero_and_one(tiny_lfw, tmp_path):
    assert degrade_dataset("lfw", tiny_lfw, tmp_path / "none", fraction=0.0).degraded == 0
    everything = degrade_dataset("lfw", tiny_lfw, tmp_path / "all", fraction=1.0)
    assert everything.degraded == 12 and everything.both_degraded == 12


def test_pair_mode_degrades_exactly_one_side_of_every_pair(tiny_lfw, tmp_path):
    report = degrade_dataset("lfw", tiny_lfw, tmp_path / "p", seed=1, mode="pair")
    assert report.dataset_format == "csv" and report.one_degraded == 12 == report.pairs
    manifest = read_manifest(tmp_path / "p")
    pairs = read_pairs("csv", tmp_path / "p").pairs
    source = read_pairs("lfw", tiny_lfw).pairs
    for pair, original in zip(pairs, source):
        assert manifest[pair.image1] + manifest[pair.image2] == 1
        assert (pair.fold, pair.label, pair.identity1, pair.identity2) == \
            (original.fold, original.label, original.identity1, original.identity2)
        for path in (pair.image1, pair.image2):
            assert path.startswith("degraded/") == manifest[path]
    sides = {pair.image1.startswith("degraded/") for pair in pairs}
    assert sides == {True, False}  # the side is drawn per pair


def test_degradation_lowers_sharpness_with_the_target_size():
    rng = np.random.default_rng(0)
    image = cv2.resize(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), (200, 160), interpolation=cv2.INTER_CUBIC)
    results = {size: degrade_image(image, Degradation(size, 0.0, 0.0, 95)) for size in (30, 60, 120)}
    assert all(r.shape == image.shape and r.dtype == np.uint8 for r in results.values())
    assert sharpness(results[30]) < sharpness(results[60]) < sharpness(results[120]) < sharpness(image)
    blurred = degrade_image(image, Degradation(120, 2.0, 0.0, 95))
    noisy = degrade_image(image, Degradation(120, 0.0, 20.0, 95), seed=1)
    assert sharpness(blurred) < sharpness(results[120]) < sharpness(noisy)
    assert np.array_equal(noisy, degrade_image(image, Degradation(120, 0.0, 20.0, 95), seed=1))


def test_drawn_parameters_lie_in_their_ranges_and_depend_on_seed_and_path_only():
    ranges = DegradationRanges(size=(30, 40), blur=(0.5, 1.0), noise=(1.0, 2.0), jpeg=(20, 25))
    draws = [draw_degradation(ranges, 3, f"x/{i}.jpg") for i in range(50)]
    assert all(30 <= d.size <= 40 and 0.5 <= d.blur <= 1.0 and 1 <= d.noise <= 2 and 20 <= d.jpeg <= 25 for d in draws)
    assert draw_degradation(ranges, 3, "x/7.jpg") == draws[7] != draw_degradation(ranges, 4, "x/7.jpg")
    assert len({d.size for d in draws}) > 5


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "half"}, "mode must be one of"),
    ({"fraction": 1.5}, "fraction must be a number in"),
    ({"seed": -1}, "seed must be a non-negative"),
    ({"ranges": "bad"}, None),
])
def test_bad_options_are_named(tiny_lfw, tmp_path, kwargs, message):
    if message is None:
        with pytest.raises(XfvError, match="size must be a range"):
            DegradationRanges(size=(75, 30))
        with pytest.raises(XfvError, match="integer ranges"):
            DegradationRanges(jpeg=(20.5, 40))
        return
    with pytest.raises(XfvError, match=message):
        degrade_dataset("lfw", tiny_lfw, tmp_path / "out", **kwargs)


def test_refuses_a_folder_that_is_not_empty_and_the_source_itself(tiny_lfw, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep me")
    with pytest.raises(XfvError, match="not an empty folder"):
        degrade_dataset("lfw", tiny_lfw, tmp_path / "full")
    assert (tmp_path / "full" / "x.txt").read_text() == "keep me"
    with pytest.raises(XfvError, match="not an empty folder"):
        degrade_dataset("lfw", tiny_lfw, tiny_lfw)
    with pytest.raises(FileNotFoundError, match="not a copy written"):
        read_manifest(tiny_lfw)


def test_cli(tiny_lfw, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["data", "degrade", "--dataset", "lfw", "--root", str(tiny_lfw), "--out", str(out), "--seed", "2",
                 "--size", "20:30", "--jpeg", "30:30"]) == 0
    printed = capsys.readouterr().out
    assert "12 images" in printed and "not XQLFW" in printed and "--dataset lfw" in printed
    with open(out / "degradations.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["degraded"] == "1"]
    assert rows and all(20 <= int(r["size"]) <= 30 and r["jpeg"] == "30" for r in rows)
    with pytest.raises(SystemExit):
        main(["data", "degrade", "--dataset", "lfw", "--root", str(tiny_lfw), "--out", str(tmp_path / "x"),
              "--size", "big"])
    assert "expected LOW:HIGH" in capsys.readouterr().err
    assert main(["data", "degrade", "--dataset", "lfw", "--root", str(tiny_lfw), "--out", str(out)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
