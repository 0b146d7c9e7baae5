"""Calibration metrics, baselines, calibration files and the fold-wise evaluation job."""

from __future__ import annotations

import json

import numpy as np
import pytest
from reference import eq3_reference, threshold_reference

from xfv.confidence import (
    Calibration,
    brier_score,
    calibration_curve,
    default_calibration,
    expected_calibration_error,
    load_calibration,
    logistic,
)
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


def test_confidences_below_one_half_fall_into_bins_of_the_same_width():
    """The quality-aware C-Score's probability that a decision is right may lie below 0.5: the bins continue below
    0.5 at the same width, and confidences in [0.5, 1] keep their bins (and the ECE its value)."""
    correct = np.array([0, 0, 1, 1, 1, 0])
    confidence = np.array([0.02, 0.33, 0.34, 0.9, 0.9, 0.9])
    # bins of 0.05 from 0: {0.02} acc 0; {0.33, 0.34} acc 0.5 conf 0.335; {0.9 x 3} acc 2/3 conf 0.9
    accuracy, mean_confidence, counts = calibration_curve(correct, confidence)
    np.testing.assert_allclose(accuracy, [0, 0.5, 2 / 3])
    np.testing.assert_allclose(mean_confidence, [0.02, 0.335, 0.9])
    assert counts.tolist() == [1, 2, 3]
    expected = (0.02 + 2 * 0.165 + 3 * abs(2 / 3 - 0.9)) / 6
    assert expected_calibration_error(correct, confidence) == pytest.approx(expected)
    # with one bin over [0.5, 1], one over [0, 0.5): the same split at 0.5
    low = np.mean([0, 0, 1]) - np.mean([0.02, 0.33, 0.34])
    assert expected_calibration_error(correct, confidence, n_bins=1) == pytest.approx(
        (3 * abs(low) + 3 * abs(2 / 3 - 0.9)) / 6)
    assert expected_calibration_error([1, 0], [0.0, 1.0]) == pytest.approx(1.0)


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match=r"outside \[0.0, 1.0\]: \[-0.3\]"):
        expected_calibration_error([1, 0], [-0.3, 0.9])
    with pytest.raises(ValueError, match=r"outside \[0.0, 1.0\]: \[1.5\]"):
        brier_score([1, 0], [0.5, 1.5])
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
    for name, baseline in BASELINES.items():
        # Each side's fitted map before the clip to [0.5, 1]: rises with the margin |d - t| (decisions far
        # from t are more often correct), and is certain far away where no training decision was wrong.
        fitted = baseline().fit(d, correct, t)
        left = grid <= t
        for side, predict in zip((left, ~left), fitted.sides_):
            margins = np.abs(grid[side] - t)
            raw = predict(margins)[np.argsort(margins)]
            assert np.all(np.diff(raw) >= -1e-12), name
            assert raw[-1] > 0.99, name
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
        # The unclipped curve falls from about 1 to its floor b through 0.5 near t, and the unclipped Eq. 3
        # drops below 0.5 (where the clip acts) nowhere further than 0.02 from t.
        p, t, grid = calibration.cscore.parameters, calibration.threshold, np.linspace(0, 2, 2001)
        raw = logistic(grid, p["L"], p["d0"], p["k"], p["b"])
        assert p["k"] < 0 and abs(p["d0"] - t) < 0.02 and raw[0] > 0.95 and np.all((raw >= -0.05) & (raw <= 1.05))
        flipped = np.where(grid <= t, raw, 1.0 - raw)
        assert np.all(np.abs(grid[flipped < 0.5] - t) < 0.02)
        assert calibration.confidence([t])[0] == pytest.approx(0.5, abs=0.05)


# ---- fold-wise evaluation ------------------------------------------------------------------------------------

def test_evaluation_is_fold_wise(rng):
    d, y, folds = scores(rng)
    evaluation = evaluate_scores(d, y, folds, dataset="synthetic", model="toy")
    summary = evaluation.summary
    assert [f["fold"] for f in summary["folds"]] == [0, 1, 2]
    for fold in summary["folds"]:
        train, held_out = folds != fold["fold"], folds == fold["fold"]
        assert fold["threshold"] == pytest.approx(threshold_reference(d[train], y[train]))
        np.testing.assert_allclose(evaluation.columns["confidence"][held_out],
                                   eq3_reference(d[held_out], fold["threshold"], fold["cscore"]), atol=1e-12)
    # Fold 0's threshold and curve come from folds 1 and 2 only: scrambling fold 0's pairs leaves them as
    # they were and changes the other folds' fits.
    scrambled_d, scrambled_y = d.copy(), y.copy()
    scrambled_d[folds == 0] = rng.uniform(0, 2, np.sum(folds == 0))
    scrambled_y[folds == 0] = rng.integers(0, 2, np.sum(folds == 0))
    again = evaluate_scores(scrambled_d, scrambled_y, folds).summary["folds"]
    assert again[0]["threshold"] == summary["folds"][0]["threshold"]
    assert again[0]["cscore"] == summary["folds"][0]["cscore"]
    assert again[1]["cscore"] != summary["folds"][1]["cscore"] and again[2]["cscore"] != summary["folds"][2]["cscore"]
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
