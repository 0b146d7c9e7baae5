"""The cross-quality chain on real faces (slow): a degraded copy of a few dozen LFW pairs, dlib's stability quality
of each image, and the shipped quality-aware calibration applied to them, as ``xfv verify`` applies it."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest

from xfv.confidence import default_calibration
from xfv.datasets import read_pairs
from xfv.datasets.degrade import degrade_dataset, read_manifest
from xfv.jobs.embeddings import dataset_detector, pair_distances_and_qualities
from xfv.jobs.verify import photo_face, verify_faces
from xfv.models import create_model
from xfv.quality.stability import DEFAULT_PERTURBATIONS

PAIRS = 36  # 18 genuine and 18 imposter pairs of fold 0


@pytest.fixture(scope="module")
def degraded_copy(shared_data, tmp_path_factory):
    """Fold 0's first 18 genuine and 18 imposter pairs as a CSV list over the real LFW images, and its degraded
    copy with one side of every pair degraded (seed 5)."""
    lfw = read_pairs("lfw", shared_data / "lfw")
    chosen = [p for p in lfw.pairs if p.fold == 0 and p.label == 1][:PAIRS // 2] + \
             [p for p in lfw.pairs if p.fold == 0 and p.label == 0][:PAIRS // 2]
    folder = tmp_path_factory.mktemp("pairs")
    with open(folder / "pairs.csv", "w", newline="") as handle:
        csv.writer(handle).writerows((p.image1, p.image2, p.label, i % 10) for i, p in enumerate(chosen))
    out = folder / "degraded"
    degrade_dataset("csv", shared_data / "lfw", out, pairs_file=folder / "pairs.csv", seed=5, mode="pair")
    return read_pairs("csv", out), read_manifest(out)


@pytest.mark.slow
def test_degraded_faces_rate_lower_and_the_quality_aware_score_is_less_sure(degraded_copy):
    pair_list, degraded = degraded_copy
    model = create_model("dlib")
    calibration = default_calibration("dlib")
    assert calibration.default_variant == "quality-aware" and calibration.quality.perturbations == DEFAULT_PERTURBATIONS
    d, q1, q2 = pair_distances_and_qualities(pair_list, model, use_cache=False)
    assert q1.shape == q2.shape == (PAIRS, 2)  # per image: stability, sharpness
    bad = np.array([degraded[p.image1] for p in pair_list.pairs])[:, None]
    worse, better = np.where(bad, q1, q2), np.where(bad, q2, q1)
    assert np.mean(worse[:, 0] < better[:, 0]) >= 0.8  # the degraded side of a pair is the less stable one
    assert np.mean(worse[:, 1] < better[:, 1]) >= 0.9  # and the less sharp
    labels = np.array([p.label for p in pair_list.pairs])
    correct = (d <= calibration.threshold) == (labels == 1)
    paper = calibration.score(d, variant="paper").confidence
    aware = calibration.score(d, q1, q2)
    assert aware.variant == "quality-aware"
    # the paper's curve, fitted on clean LFW, is sure of pairs with a degraded face; the quality-aware one is less so,
    # nearer the share of right decisions
    assert aware.confidence.mean() < paper.mean() - 0.02
    assert abs(aware.confidence.mean() - correct.mean()) < abs(paper.mean() - correct.mean())


@pytest.mark.slow
def test_the_verdict_names_its_variant_and_flags_a_quality_the_calibration_has_not_seen(degraded_copy):
    pair_list, degraded = degraded_copy
    model = create_model("dlib")
    calibration = default_calibration("dlib")
    pair = next(p for p in pair_list.pairs if p.label == 1)
    faces = [photo_face(pair_list.path(p), model, detector=dataset_detector()) for p in (pair.image1, pair.image2)]
    verdict = verify_faces(model, *faces, calibration, "shipped")
    assert verdict.cscore == "quality-aware" and verdict.quality_note is None
    assert (verdict.quality1 < verdict.quality2) == degraded[pair.image1]  # the degraded face rates lower
    low, high = calibration.quality.seen[0]  # the stability's range
    assert verdict.quality1 is not None and low <= verdict.quality1 <= high
    narrow = replace(calibration, quality=replace(calibration.quality,
                                                  seen=((0.9999, 1.0), *calibration.quality.seen[1:])))
    flagged = verify_faces(model, *faces, narrow, "shipped, narrowed")
    assert flagged.confidence == verdict.confidence  # the same curve: only the note differs
    assert "outside what the calibration has seen" in flagged.quality_note
    assert "face 1 stability" in flagged.quality_note and "face 2 stability" in flagged.quality_note
    paper = verify_faces(model, *faces, replace(calibration, default_variant="paper", quality=None,
                                                quality_aware=None), "paper")
    assert paper.cscore == "paper" and paper.quality1 is None and paper.quality_note is None
