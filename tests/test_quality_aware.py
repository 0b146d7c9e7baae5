"""The quality-aware and the continuous C-Score on synthetic pairs whose right answer is known by construction."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit

from xfv.confidence import CScore, brier_score, confidence_reading, expected_calibration_error
from xfv.confidence.calibration_file import Calibration, QualityMeasure, load_calibration
from xfv.confidence.quality_aware import QualityAwareCScore
from xfv.verification import best_threshold

MEASURE = QualityMeasure(("stability",), ("flip",), ((0.0, 1.0),))


def quality_pairs(n: int, rng: np.random.Generator):
    """Pairs whose genuine share falls with distance along a curve whose midpoint and slope follow the lower image
    quality (0 = worst, 1 = best): ``p(genuine | d, q) = expit(-40 (0.2 + 0.8 q) (d - (0.8 - 0.3 q)))`` with the
    distance uniform. Returns distances, labels, both qualities and the true posterior."""
    q1, q2 = rng.random(n), rng.random(n)
    low = np.minimum(q1, q2)
    d = rng.uniform(0.2, 1.2, n)
    truth = expit(-40 * (0.2 + 0.8 * low) * (d - (0.8 - 0.3 * low)))
    labels = (rng.random(n) < truth).astype(int)
    return d, labels, q1, q2, truth


def banded_pairs(n: int, rng: np.random.Generator):
    """Half the pairs have a degraded image (quality about 0.3, the other image about 0.8), half are clean (both
    about 0.8). Distances are uniform; the genuine share falls through 0.5 at d = 0.7 in both bands, steeply for
    clean pairs (slope 40) and gently for degraded ones (slope 6), the slope's log linear in the lower quality:
    the known answer is ``p(genuine | d, q) = expit(-k(q) (d - 0.7))``. Returns distances, labels, both qualities,
    the degraded flags and the true posterior."""
    degraded = rng.random(n) < 0.5
    q1 = np.where(degraded, rng.normal(0.3, 0.05, n), rng.normal(0.8, 0.05, n))
    q2 = rng.normal(0.8, 0.05, n)
    low = np.minimum(q1, q2)
    slope = np.exp(np.log(6) + (np.log(40) - np.log(6)) * (low - 0.3) / 0.5)
    d = rng.uniform(0.2, 1.2, n)
    truth = expit(-slope * (d - 0.7))
    return d, (rng.random(n) < truth).astype(int), q1, q2, degraded, truth


def test_recovers_the_known_curve(rng):
    d, y, q1, q2, truth = quality_pairs(40000, rng)
    t = best_threshold(d, y)
    score = QualityAwareCScore().fit(d, y, q1, q2, t)
    fitted = score.curve(d, q1, q2)
    assert np.mean(np.abs(fitted - truth)) < 0.02
    blind = CScore().fit(d, y, t).curve(d)
    assert np.mean(np.abs(blind - truth)) > 0.05  # a distance alone cannot know the quality
    # the midpoint moves to smaller distances and the fall steepens as the lower quality rises
    z = score.standardise(np.array([0.1, 0.9]), np.array([0.95, 0.95]))
    midpoints = score.d0_ + z @ score.a_
    slopes = np.exp(score.s_ + z @ score.g_)
    assert midpoints[0] > midpoints[1] and slopes[1] > slopes[0]


def test_calibrated_per_quality_band_where_the_paper_curve_is_not(rng):
    d, y, q1, q2, _, _ = banded_pairs(20000, rng)
    dt, yt, q1t, q2t, degraded, truth = banded_pairs(20000, np.random.default_rng(1))
    t = 0.7  # where the known curve crosses 0.5 in every band
    correct = (dt <= t) == (yt == 1)
    paper = CScore().fit(d, y, t).confidence(dt)
    aware = QualityAwareCScore().fit(d, y, q1, q2, t).confidence(dt, q1t, q2t)
    right = np.where(dt <= t, truth, 1 - truth)  # the true probability that the decision is right
    assert np.mean(np.abs(aware - right)) < 0.02 < np.mean(np.abs(paper - right))
    for band in (degraded, ~degraded):
        assert expected_calibration_error(correct[band], aware[band]) < 0.02
        assert expected_calibration_error(correct[band], paper[band]) > 0.04
    assert np.mean(paper[degraded]) > np.mean(correct[degraded]) + 0.04  # over-confident on poor photos
    assert np.mean(paper[~degraded]) < np.mean(correct[~degraded]) - 0.01  # under-confident on good ones
    assert brier_score(correct, aware) < 0.95 * brier_score(correct, paper)
    assert np.all((aware >= 0.0) & (aware <= 1.0))


def shifted_pairs(n: int, rng: np.random.Generator):
    """Half the pairs have a degraded image. The genuine share falls with slope 12 through 0.5 at d = 0.7 for clean
    pairs and, linearly in the lower image quality, farther right for degraded ones (about 0.9): degraded genuine
    pairs lie farther apart. The known answer is ``p(genuine | d, q) = expit(-12 (d - m(q)))``, ``m(q) = 0.7 + 0.4
    (0.8 - q)``. Returns distances, labels, both qualities, the degraded flags and the true posterior."""
    degraded = rng.random(n) < 0.5
    q1 = np.where(degraded, rng.normal(0.3, 0.05, n), rng.normal(0.8, 0.05, n))
    q2 = rng.normal(0.8, 0.05, n)
    d = rng.uniform(0.2, 1.4, n)
    truth = expit(-12 * (d - (0.7 + 0.4 * (0.8 - np.minimum(q1, q2)))))
    return d, (rng.random(n) < truth).astype(int), q1, q2, degraded, truth


def test_the_probability_that_the_decision_is_right_goes_below_one_half_where_it_is(rng):
    """At a threshold that suits clean pairs (t = 0.7, their crossing), a degraded pair just right of t is genuine
    more often than not: the decision "different" is more likely wrong than right. The quality-aware C-Score says so
    (its confidence is the probability that the decision is right, in [0, 1]); Eq. 3's clip at 0.5 could not."""
    d, y, q1, q2, _, _ = shifted_pairs(20000, rng)
    dt, yt, q1t, q2t, degraded, truth = shifted_pairs(20000, np.random.default_rng(1))
    t = 0.7
    correct = (dt <= t) == (yt == 1)
    aware = QualityAwareCScore().fit(d, y, q1, q2, t).confidence(dt, q1t, q2t)
    right = np.where(dt <= t, truth, 1 - truth)  # the true probability that the decision at t is right
    assert np.mean(np.abs(aware - right)) < 0.02
    assert np.all((aware >= 0.0) & (aware <= 1.0))
    wrong_more_often = aware < 0.5
    assert np.mean(wrong_more_often[degraded]) > 0.1  # the truth: 0.17 of the degraded pairs, 0.01 of the clean
    for band in (degraded, ~degraded):
        assert abs(np.mean(wrong_more_often[band]) - np.mean(right[band] < 0.5)) < 0.02
    assert correct[wrong_more_often].mean() < 0.4  # and they are: right less than half the time
    clipped = np.maximum(aware, 0.5)  # what Eq. 3's clip would report
    for band in (degraded, ~degraded):
        assert expected_calibration_error(correct[band], aware[band]) < 0.02
    assert expected_calibration_error(correct[degraded], clipped[degraded]) > 0.03
    assert brier_score(correct, aware) < brier_score(correct, clipped) - 0.005
    paper = CScore().fit(d, y, t).confidence(dt)  # the paper's C-Score keeps its clip
    assert paper.min() >= 0.5
    assert confidence_reading(0.37) == "more likely wrong than right"
    assert confidence_reading(0.5) is None and confidence_reading(0.93) is None


def test_equals_the_paper_curve_when_quality_says_nothing(rng):
    y = np.tile([1, 0], 5000)
    d = np.clip(np.where(y == 1, rng.normal(0.4, 0.1, 10000), rng.normal(0.8, 0.1, 10000)), 0, 2)
    q1, q2 = rng.random(10000), rng.random(10000)
    t = best_threshold(d, y)
    aware = QualityAwareCScore().fit(d, y, q1, q2, t)
    assert np.max(np.abs(aware.a_)) < 0.01 and np.max(np.abs(aware.g_)) < 0.1
    grid = np.linspace(0.2, 1.0, 50)
    truth = 1 / (1 + np.exp(((grid - 0.4) ** 2 - (grid - 0.8) ** 2) / (2 * 0.1**2)))
    assert np.max(np.abs(aware.curve(grid, np.full(50, 0.5), np.full(50, 0.5)) - truth)) < 0.04


def test_continuous_variant_crosses_one_half_at_t(rng):
    y = np.repeat([1, 0], 3000)
    d = np.clip(np.where(y == 1, rng.normal(0.35, 0.12, 6000), rng.normal(0.95, 0.09, 6000)), 0, 2)
    t = best_threshold(d, y) - 0.03  # an accuracy-optimal t in a sparse stretch misses the crossing
    paper, continuous = CScore().fit(d, y, t), CScore(continuous=True).fit(d, y, t)
    assert abs(float(paper.curve(np.array([t]))[0]) - 0.5) > 0.1
    assert float(continuous.curve(np.array([t]))[0]) == pytest.approx(0.5, abs=1e-9)
    below, above = continuous.confidence(np.array([t, t + 1e-9]))
    assert abs(below - above) < 1e-6
    correct = (d <= t) == (y == 1)
    assert brier_score(correct, continuous.confidence(d)) <= brier_score(correct, paper.confidence(d)) + 5e-4
    assert continuous.get_params()["continuous"] is True and "continuous" not in paper.get_params()
    with pytest.raises(ValueError, match="needs bounded=True"):
        CScore(continuous=True, bounded=False).fit(d, y, t)


def test_continuous_variant_of_separated_bins_is_the_step_at_t():
    d = np.array([0.1, 0.12, 0.15, 0.2, 0.7, 0.75, 0.8, 0.9])
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    score = CScore(continuous=True).fit(d, y, 0.4)
    assert score.d0_ == 0.4 and float(score.curve(np.array([0.4]))[0]) == pytest.approx(0.5)


def test_calibration_file_round_trip_and_backward_compatibility(rng, tmp_path):
    d, y, q1, q2, _, _ = banded_pairs(4000, rng)
    base = Calibration.fit(d, y, model="toy", dataset="synthetic")
    old_style = json.loads(json.dumps(base.to_dict()))
    assert "variants" not in old_style  # a calibration without variants writes the format as before
    aware = QualityAwareCScore().fit(d, y, q1, q2, base.threshold)
    full = base.with_variants(continuous=CScore(continuous=True).fit(d, y, base.threshold), quality_aware=aware,
                              quality=MEASURE, quality_dataset="synthetic", quality_pairs=4000,
                              default="quality-aware")
    path = full.save(tmp_path / "cal.json")
    loaded = load_calibration(path)
    assert loaded.variants == ("paper", "continuous", "quality-aware") and loaded.default_variant == "quality-aware"
    assert loaded.quality == MEASURE and loaded.quality_pairs == 4000
    scored = loaded.score(d[:50], q1[:50], q2[:50])
    assert scored.variant == "quality-aware"
    assert np.allclose(scored.confidence, aware.confidence(d[:50], q1[:50], q2[:50]))
    assert loaded.score(d[:50]).variant == "continuous"  # no qualities: the default falls back
    assert np.allclose(loaded.score(d[:50], variant="paper").confidence, base.confidence(d[:50]))
    assert np.allclose(loaded.confidence(d[:50]), base.confidence(d[:50]))  # the paper's, as before
    # a reader that knows no variants reads the file's paper C-Score: the top-level fields are unchanged
    data = json.loads(path.read_text())
    assert {k: v for k, v in data.items() if k not in ("variants", "date")} == \
        {k: v for k, v in old_style.items() if k != "date"}
    with pytest.raises(ValueError, match="no 'quality-aware' C-Score"):
        base.score(d[:5], q1[:5], q2[:5], variant="quality-aware")
    with pytest.raises(ValueError, match="needs the quality of both images"):
        loaded.score(d[:5], variant="quality-aware")
    with pytest.raises(ValueError, match="Unknown C-Score variant"):
        loaded.score(d[:5], variant="best")
    data["variants"]["quality-aware"]["parameters"].pop("g")
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="bad calibration: quality-aware C-Score parameters need"):
        load_calibration(tmp_path / "bad.json")
    data["variants"]["sharpest"] = {}
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="unknown C-Score variant"):
        load_calibration(tmp_path / "bad.json")


def test_bad_input_is_named(rng):
    d, y, q1, q2, _, _ = banded_pairs(400, rng)
    with pytest.raises(ValueError, match="NaN or infinite"):
        QualityAwareCScore().fit(d, y, np.where(np.arange(400) == 3, np.nan, q1), q2, 0.7)
    with pytest.raises(ValueError, match="one quality per image"):
        QualityAwareCScore().fit(d, y, q1[:-1], q2[:-1], 0.7)
    with pytest.raises(ValueError, match="all equal"):
        QualityAwareCScore().fit(d, y, np.ones(400), np.ones(400), 0.7)
    with pytest.raises(ValueError, match="not fitted"):
        QualityAwareCScore().confidence(d, q1, q2)
