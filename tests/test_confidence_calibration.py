"""Calibration metrics, baselines, calibration files and the fold-wise evaluation job."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xfv.confidence import (Calibration, CScore, brier_score, calibration_curve, default_calibration,
                            expected_calibration_error, load_calibration)
from xfv.confidence.baselines import BASELINES, IsotonicCalibration, LinearMapping, PlattScaling
from xfv.jobs.evaluate import evaluate_scores
from xfv.verification import best_threshold


def scores(rng, folds=3, n=200):
    d = np.concatenate([np.r_[rng.normal(0.3, 0.08, n), rng.normal(0.75, 0.12, n)] for _ in range(folds)])
    y = np.tile(np.r_[np.ones(n, int), np.zeros(n, int)], folds)
    return np.clip(d, 0.0, 2.0), y, np.repeat(np.arange(folds), 2 * n)


# ---- metrics -------------------------------------------------------------------------------------------------

def test_ece_and_brier_by_hand():
    correct = np.array([1, 1, 0, 1])
    confidence = np.array([0.5, 0.9, 0.9, 1.0])
    # bins of 0.05: {0.5} acc 1 conf 0.5; {0.9, 0.9} acc 0.5 conf 0.9; {1.0} (last bin) acc 1 conf 1.
    assert expected_calibration_error(correct, confidence) == pytest.approx((0.5 + 2 * 0.4 + 0) / 4)
    assert brier_score(correct, confidence) == pytest.approx((0.25 + 0.01 + 0.81 + 0) / 4)
    accuracy, mean_confidence, counts = calibration_curve(correct, confidence)
    np.testing.assert_allclose(accuracy, [1, 0.5, 1])
    np.testing.assert_allclose(mean_confidence, [0.5, 0.9, 1.0])
    assert counts.tolist() == [1, 2, 1]
    assert expected_calibration_error(correct, confidence, n_bins=1) == pytest.approx(abs(0.75 - 0.825))


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match=r"outside \[0.5, 1.0\]: \[0.3\]"):
        expected_calibration_error([1, 0], [0.3, 0.9])
    with pytest.raises(ValueError, match=r"0/1 or boolean, got values \[2\]"):
        brier_score([2, 1], [0.6, 0.9])
    with pytest.raises(ValueError, match="equal length"):
        brier_score([1], [0.6, 0.9])
    with pytest.raises(ValueError, match="n_bins must be a positive integer, got 0"):
        calibration_curve([1], [0.6], n_bins=0)


# ---- baselines -----------------------------------------------------------------------------------------------

def test_linear_mapping_by_hand():
    d = np.array([0.1, 0.4, 0.6, 1.3])
    linear = LinearMapping().fit(d, [1, 1, 0, 1], threshold=0.5)  # sides: 0.4 left, 0.8 right
    np.testing.assert_allclose(linear.confidence([0.3, 0.9, 0.5, 0.0, 2.0]), [0.75, 0.75, 0.5, 1.0, 1.0])


def test_baselines_range_and_degenerate_cases(rng):
    d, y, _ = scores(rng, folds=1)
    t = best_threshold(d, y)
    correct = (d <= t) == (y == 1)
    grid = np.linspace(0, 2, 101)
    for baseline in BASELINES.values():
        c = baseline().fit(d, correct, t).confidence(grid)
        assert np.all((c >= 0.5) & (c <= 1.0))
    isotonic = IsotonicCalibration().fit(d, correct, t).confidence(grid)
    assert np.all(np.diff(isotonic[grid <= t]) <= 0) and np.all(np.diff(isotonic[grid > t]) >= 0)
    # No errors in training: constant 1; no training pairs right of t: the left side's accuracy there.
    assert np.all(PlattScaling().fit(d, np.ones_like(correct), t).confidence(grid) == 1.0)
    platt = PlattScaling().fit([0.1, 0.2, 0.3, 0.4], [1, 1, 0, 1], threshold=1.0)
    assert platt.confidence([1.5])[0] == 0.75
    with pytest.raises(ValueError, match="one entry per distance"):
        PlattScaling().fit(d, correct[:-1], t)


# ---- calibration files ---------------------------------------------------------------------------------------

def test_calibration_round_trip(tmp_path, rng):
    d, y, _ = scores(rng, folds=1)
    calibration = Calibration.fit(d, y, model="toy", dataset="synthetic", n_bins=200)
    assert calibration.threshold == best_threshold(d, y)
    assert calibration.pairs == len(d) and calibration.genuine == 200 and calibration.imposter == 200
    path = calibration.save(tmp_path / "toy.json")
    data = json.loads(path.read_text())
    assert {"format", "version", "model", "dataset", "threshold", "parameters", "options", "date",
            "pairs"} <= set(data)
    assert data["options"]["n_bins"] == 200 and data["version"] == 1
    loaded = load_calibration(path)
    assert (loaded.model, loaded.dataset, loaded.threshold) == ("toy", "synthetic", calibration.threshold)
    grid = np.linspace(0, 2, 50)
    np.testing.assert_array_equal(loaded.confidence(grid), calibration.confidence(grid))
    np.testing.assert_array_equal(loaded.predictions(grid), grid <= calibration.threshold)


def test_bad_calibration_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_calibration(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_calibration(bad)
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not an xfv calibration file"):
        load_calibration(bad)
    bad.write_text(json.dumps({"format": "xfv-calibration", "version": 7}))
    with pytest.raises(ValueError, match="unknown calibration format version 7"):
        load_calibration(bad)
    bad.write_text(json.dumps({"format": "xfv-calibration", "version": 1, "model": "m"}))
    with pytest.raises(ValueError, match=r"missing field\(s\) \['dataset'"):
        load_calibration(bad)
    good = {"format": "xfv-calibration", "version": 1, "model": "m", "dataset": "d", "threshold": 0.5,
            "parameters": {"L": 1, "d0": 0.5, "k": "steep", "b": 0}, "options": {}, "date": "x", "pairs": 1}
    bad.write_text(json.dumps(good))
    with pytest.raises(ValueError, match="bad calibration"):
        load_calibration(bad)
    with pytest.raises(ValueError, match="model must be a non-empty name"):
        Calibration.fit([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0], model="", dataset="d")


def test_default_calibrations():
    assert default_calibration("no-such-model") is None
    assert default_calibration("../../etc/passwd") is None
    for name in ("dlib", "lbp"):  # shipped, fitted on all 6,000 LFW pairs
        calibration = default_calibration(name)
        assert (calibration.model, calibration.dataset, calibration.pairs) == (name, "lfw", 6000)
        assert np.all(calibration.confidence(np.linspace(0, 2, 21)) >= 0.5)
        assert calibration.confidence([calibration.threshold])[0] == pytest.approx(0.5, abs=0.05)


# ---- fold-wise evaluation ------------------------------------------------------------------------------------

def test_evaluation_is_fold_wise(rng):
    d, y, folds = scores(rng)
    evaluation = evaluate_scores(d, y, folds, dataset="synthetic", model="toy")
    summary = evaluation.summary
    assert [f["fold"] for f in summary["folds"]] == [0, 1, 2]
    for fold in summary["folds"]:
        train = folds != fold["fold"]
        assert fold["threshold"] == best_threshold(d[train], y[train])
        expected = CScore().fit(d[train], y[train], fold["threshold"])
        assert fold["cscore"] == pytest.approx(expected.parameters)
        held_out = folds == fold["fold"]
        np.testing.assert_array_equal(evaluation.columns["confidence"][held_out], expected.confidence(d[held_out]))
    assert set(summary["baselines"]) == {"platt", "isotonic", "linear"}
    assert 0 <= summary["ece"] < 0.05 and summary["brier"] < summary["baselines"]["linear"]["brier"]
    assert list(evaluation.columns) == ["fold", "label", "distance", "threshold", "prediction", "correct",
                                        "confidence"]


def test_evaluation_with_fixed_calibration(rng):
    d, y, folds = scores(rng)
    calibration = Calibration.fit(d, y, model="toy", dataset="synthetic")
    evaluation = evaluate_scores(d, y, folds, calibration=calibration)
    assert np.all(evaluation.columns["threshold"] == calibration.threshold)
    np.testing.assert_array_equal(evaluation.columns["confidence"], calibration.confidence(d))
    assert evaluation.summary["calibration"]["model"] == "toy"
    with pytest.raises(ValueError, match=r"options \['n_bins'\] do not apply"):
        evaluate_scores(d, y, folds, calibration=calibration, n_bins=100)
    with pytest.raises(ValueError, match=r"at least 2 folds, got \[0\]"):
        evaluate_scores(d, y, np.zeros_like(folds))
