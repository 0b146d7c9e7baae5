"""The C-Score (Eq. 2, Eq. 3): hand-computed values, properties and every robustness case."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import curve_fit
from scipy.special import expit

from xfv.confidence import CScore, FitError, bin_ratios, logistic
from xfv.verification import best_threshold


def gaussian_pairs(rng, n=1500, genuine=(0.3, 0.08), imposter=(0.8, 0.12)):
    d = np.clip(np.r_[rng.normal(*genuine, n), rng.normal(*imposter, n)], 0.0, 2.0)
    return d, np.r_[np.ones(n, int), np.zeros(n, int)]


# ---- hand-computed -------------------------------------------------------------------------------------------

HAND_D = np.array([0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 1.2, 1.6, 1.7])
HAND_Y = np.array([1, 1, 0, 1, 0, 0, 0, 1, 0])


def test_bin_ratios_by_hand():
    # 4 bins over [0, 2]: [0, .5) [.5, 1) [1, 1.5) [1.5, 2]; 0.5 falls in the second bin.
    centres, ratios = bin_ratios(HAND_D, HAND_Y, n_bins=4)
    np.testing.assert_allclose(centres, [0.25, 0.75, 1.25, 1.75])
    np.testing.assert_allclose(ratios, [2 / 3, 1 / 3, 0.0, 1 / 2])


def test_bin_ratios_density_and_fill_by_hand():
    # density: genuine counts / 4, imposter counts / 5; first bin (2/4) / (2/4 + 1/5) = 5/7.
    _, ratios = bin_ratios(HAND_D, HAND_Y, n_bins=4, density=True)
    np.testing.assert_allclose(ratios[0], 5 / 7)
    # 8 bins of 0.25: [1.25, 1.5) and [1.75, 2] are empty; filled with 1 left of t = 1.6, 0 right of it.
    centres, ratios = bin_ratios(HAND_D, HAND_Y, n_bins=8, fill_empty=True, threshold=1.6)
    np.testing.assert_allclose(ratios, [1, 0, 0.5, 0, 0, 1, 0.5, 0])
    assert len(centres) == 8
    assert len(bin_ratios(HAND_D, HAND_Y, n_bins=8)[0]) == 6
    with pytest.raises(ValueError, match="threshold"):
        bin_ratios(HAND_D, HAND_Y, n_bins=8, fill_empty=True)


def test_eq2_eq3_by_hand():
    score = CScore.from_parameters({"L": 1.0, "d0": 0.5, "k": -10.0, "b": 0.0}, threshold=0.5)
    s2 = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(score.curve([0.3, 0.5, 0.7]), [s2, 0.5, 1 - s2])
    np.testing.assert_allclose(score.confidence([0.3, 0.5, 0.7, 0.45]), [s2, 0.5, s2, 1 / (1 + np.exp(-0.5))])
    # Crossing left of t: between d0 and t c(d) < 0.5 on the genuine side, clipped to 0.5 after the flip.
    shifted = CScore.from_parameters({"L": 1.0, "d0": 0.4, "k": -10.0, "b": 0.0}, threshold=0.5)
    np.testing.assert_allclose(shifted.confidence([0.45, 0.6]), [0.5, s2])
    # c is clipped to [0, 1] before the flip.
    wide = CScore.from_parameters({"L": 1.2, "d0": 0.5, "k": -10.0, "b": -0.1}, threshold=0.5)
    assert wide.curve([0.0])[0] == 1.0 and wide.curve([2.0])[0] == 0.0


def test_fit_recovers_known_curve():
    """Bins filled so that their genuine ratio follows Eq. 2 with known parameters (up to count rounding)."""
    true = {"L": 0.96, "d0": 0.55, "k": -25.0, "b": 0.02}
    centres = (np.arange(400) + 0.5) / 200
    genuine = np.round(1000 * logistic(centres, *true.values())).astype(int)
    d = np.r_[np.repeat(centres, genuine), np.repeat(centres, 1000 - genuine)]
    y = np.r_[np.ones(genuine.sum(), int), np.zeros((1000 - genuine).sum(), int)]
    score = CScore().fit(d, y, threshold=0.55)
    for name, value in true.items():
        assert score.parameters[name] == pytest.approx(value, rel=1e-2, abs=2e-3), name
    assert score.threshold_ == 0.55


def authors_reference(d, y, t, bins=2000):
    """The authors' published procedure, written out separately: density histograms, empty bins 1 left of t
    and 0 right of it, one unbounded ``curve_fit`` from ``[max r, t, -20, min r]`` (at the bin centres)."""
    genuine, _ = np.histogram(d[y == 1], bins=bins, range=(0, 2), density=True)
    imposter, _ = np.histogram(d[y == 0], bins=bins, range=(0, 2), density=True)
    centres = (np.arange(bins) + 0.5) * 2 / bins
    with np.errstate(invalid="ignore"):
        ratios = np.where(genuine + imposter > 0, genuine / (genuine + imposter), (centres <= t) * 1.0)

    def eq2(x, L, d0, k, b):
        return L * expit(k * (x - d0)) + b

    params, _ = curve_fit(eq2, centres, ratios, [ratios.max(), t, -20.0, ratios.min()], method="dogbox")
    return dict(zip(["L", "d0", "k", "b"], params))


def test_authors_fit_is_the_authors_procedure(rng):
    d, y = gaussian_pairs(rng)
    d, y = d[:2250], y[:2250]  # 1,500 genuine and 750 imposter pairs: density histograms differ from counts
    t = best_threshold(d, y)
    authors = CScore.authors().fit(d, y, t)
    assert authors.parameters == pytest.approx(authors_reference(d, y, t), rel=1e-6)
    # Unbounded, the 2,000 filled bins let k run past the bound -k_max = -10 / bin width = -10,000 that the
    # bounded fit keeps: the authors' curve is nearly a step on these 2,250 pairs.
    assert authors.k_ < -10_000.0
    bounded = CScore(n_bins=2000, density=True, fill_empty=True, start="authors").fit(d, y, t)
    assert bounded.k_ >= -10_000.0
    assert "bounded=False" in repr(authors) and "start='authors'" in repr(authors)


# ---- properties ----------------------------------------------------------------------------------------------

pair_sets = st.builds(
    lambda seed, genuine_mean: gaussian_pairs(np.random.default_rng(seed), n=150, genuine=(genuine_mean, 0.1)),
    st.integers(min_value=0, max_value=2**32 - 1), st.floats(min_value=0.1, max_value=0.6))


@settings(max_examples=10, deadline=None, derandomize=True)
@given(pair_sets)
def test_confidence_in_half_to_one_and_monotone_away_from_t(pairs):
    d, y = pairs
    t = best_threshold(d, y)
    score = CScore().fit(d, y, t)
    grid = np.linspace(0.0, 2.0, 801)
    # The unclipped Eq. 2 curve: the clip to [0, 1] trims overshoots of under 0.08 (150 pairs leave noisy bin
    # ratios; 0.054 was seen), and the unclipped Eq. 3 drops below 0.5 (where the clip to [0.5, 1] acts)
    # only within 0.05 of t.
    raw = logistic(grid, score.L_, score.d0_, score.k_, score.b_)
    assert np.all((raw >= -0.08) & (raw <= 1.08))
    flipped = np.where(grid <= t, raw, 1.0 - raw)
    assert np.all(np.abs(grid[flipped < 0.5] - t) < 0.05)
    c = score.confidence(grid)
    left, right = c[grid <= t], c[grid > t]
    assert np.all(np.diff(left) <= 1e-12)  # rises as d moves left, away from t
    assert np.all(np.diff(right) >= -1e-12)  # rises as d moves right, away from t


def test_about_half_at_the_crossing(rng):
    d, y = gaussian_pairs(rng, n=3000, genuine=(0.4, 0.1), imposter=(0.8, 0.1))
    t = best_threshold(d, y)
    score = CScore().fit(d, y, t)
    assert abs(t - 0.6) < 0.03
    assert score.confidence([t])[0] == pytest.approx(0.5, abs=0.05)
    assert score.curve([score.d0_])[0] == pytest.approx(0.5, abs=0.02)


@settings(max_examples=5, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_reordering_and_label_dtype_change_nothing(seed):
    rng = np.random.default_rng(seed)
    d, y = gaussian_pairs(rng, n=200)
    t = best_threshold(d, y)
    reference = CScore().fit(d, y, t).parameters
    order = rng.permutation(len(d))
    assert CScore().fit(d[order], y[order], t).parameters == pytest.approx(reference, rel=1e-9)
    assert CScore().fit(d, y.astype(bool), t).parameters == pytest.approx(reference, rel=1e-9)
    assert CScore().fit(list(d), y.astype(float), t).parameters == pytest.approx(reference, rel=1e-9)


def test_swapping_labels_mirrors_the_curve(rng):
    """Genuine <-> imposter with d -> 2 - d and t -> 2 - t gives the mirrored confidence."""
    d, y = gaussian_pairs(rng, n=2000)
    t = best_threshold(d, y)
    score = CScore().fit(d, y, t)
    mirrored = CScore().fit(2.0 - d, 1 - y, 2.0 - t)
    grid = np.linspace(0.0, 2.0, 201)
    np.testing.assert_allclose(mirrored.confidence(2.0 - grid), score.confidence(grid), atol=2e-3)
    assert mirrored.d0_ == pytest.approx(2.0 - score.d0_, abs=1e-3)


# ---- robustness ----------------------------------------------------------------------------------------------

def test_perfect_separation_gives_a_steep_curve(rng):
    d = np.r_[rng.uniform(0.1, 0.5, 300), rng.uniform(0.7, 1.2, 300)]
    y = np.r_[np.ones(300, int), np.zeros(300, int)]
    t = best_threshold(d, y)
    score = CScore().fit(d, y, t)
    # The least-squares optimum is the step itself: 1 on every genuine bin, 0 on every imposter bin, with
    # the fall inside the gap between the classes (0.5, 0.7).
    centres, ratios = bin_ratios(d, y)
    np.testing.assert_allclose(score.curve(centres), ratios, atol=1e-6)
    assert np.all(ratios[centres < 0.5] == 1.0) and np.all(ratios[centres > 0.7] == 0.0)
    assert 0.5 < score.d0_ < 0.7 and score.L_ + score.b_ == pytest.approx(1.0) and score.b_ == pytest.approx(0.0)
    assert score.confidence([t])[0] == pytest.approx(0.5, abs=0.01)
    assert np.all(score.confidence(d) > 0.99)
    authors = CScore(start="authors", fill_empty=True).fit(d, y, t)
    assert np.all(authors.confidence(d) > 0.99)


def test_no_convergence_raises_fit_error(rng):
    d, y = gaussian_pairs(rng, n=300)
    with pytest.raises(FitError, match="did not converge within maxfev=1") as raised:
        CScore(maxfev=1).fit(d, y, best_threshold(d, y))
    assert isinstance(raised.value, ValueError)  # reported cleanly by the CLI


def test_ties():
    # All pairs at one distance: one bin, cannot fit four parameters.
    with pytest.raises(ValueError, match="fill only 1 histogram bin"):
        CScore().fit(np.full(10, 0.4), [1, 0] * 5, 0.4)
    # Genuine and imposter pairs tied at the same distances: ratio 0.5 there, the fit still works.
    d = np.repeat([0.2, 0.3, 0.4, 0.5, 0.6, 0.7], 10)
    y = np.tile([1] * 8 + [0] * 2, 6)
    y[30:] = np.tile([1] * 2 + [0] * 8, 3)
    y[20:30] = [1, 0] * 5
    score = CScore().fit(d, y, 0.45)
    # Ratios 0.8, 0.8, 0.5, 0.2, 0.2, 0.2 (by hand): the best curve passes through all six (a step from 0.8
    # to 0.2 through 0.5 at the tied bin's centre 0.4025), so C = 0.8 on both sides away from t.
    centres, ratios = bin_ratios(d, y)
    np.testing.assert_allclose(ratios, [0.8, 0.8, 0.5, 0.2, 0.2, 0.2])
    np.testing.assert_allclose(score.curve(centres), ratios, atol=1e-3)
    c = score.confidence(d)
    np.testing.assert_allclose(np.r_[c[:20], c[30:]], 0.8, atol=1e-3)
    assert np.all((c[20:30] > 0.5) & (c[20:30] < 0.8))  # just left of the step's middle, on the genuine side
    # A pair exactly at the threshold is on the genuine side: C = c(t), not 1 - c(t).
    exact = CScore.from_parameters({"L": 1.0, "d0": 0.3, "k": -10.0, "b": 0.0}, threshold=0.4)
    assert exact.confidence([0.4])[0] == 0.5
    exact = CScore.from_parameters({"L": 1.0, "d0": 0.5, "k": -10.0, "b": 0.0}, threshold=0.4)
    assert exact.confidence([0.4])[0] == pytest.approx(expit(1.0))


def test_distances_outside_range_and_nan():
    d, y = HAND_D.copy(), HAND_Y
    bad = d.copy()
    bad[2] = 2.5
    with pytest.raises(ValueError, match=r"\[0, 2\].*2\.5.*indices \[2\]"):
        CScore().fit(bad, y, 0.6)
    bad[2] = np.nan
    with pytest.raises(ValueError, match=r"NaN.*indices \[2\]"):
        CScore().fit(bad, y, 0.6)
    score = CScore.from_parameters({"L": 1.0, "d0": 0.5, "k": -10.0, "b": 0.0}, threshold=0.5)
    with pytest.raises(ValueError, match="-0.1"):
        score.confidence([0.2, -0.1])
    with pytest.raises(ValueError, match="nan"):
        score.confidence([np.nan])
    # Round-off just outside [0, 2] is clipped.
    assert score.confidence([-1e-12, 2 + 1e-12]).shape == (2,)
    with pytest.raises(ValueError, match="threshold must be finite"):
        CScore().fit(HAND_D, HAND_Y, float("nan"))


def test_too_few_pairs_and_one_class_missing():
    with pytest.raises(ValueError, match="4 parameters.*3 pairs fill only 3"):
        CScore().fit([0.1, 0.5, 1.0], [1, 1, 0], 0.6)
    with pytest.raises(ValueError, match="empty"):
        CScore().fit([], [], 0.6)
    with pytest.raises(ValueError, match=r"all genuine \(1\)"):
        CScore().fit(HAND_D, np.ones(9, int), 0.6)
    with pytest.raises(ValueError, match=r"all imposter \(0\)"):
        CScore().fit(HAND_D, np.zeros(9, int), 0.6)
    with pytest.raises(ValueError, match=r"labels must be 1 \(genuine\) or 0 \(imposter\), got \[2\]"):
        CScore().fit(HAND_D, [2] * 9, 0.6)


def test_bad_options_and_unfitted():
    with pytest.raises(ValueError, match="n_bins must be an integer >= 4, got 2"):
        CScore(n_bins=2).fit(HAND_D, HAND_Y, 0.6)
    with pytest.raises(ValueError, match="start must be one of .* got 'fast'"):
        CScore(start="fast").fit(HAND_D, HAND_Y, 0.6)
    with pytest.raises(ValueError, match="not fitted"):
        CScore().confidence([0.3])
    with pytest.raises(ValueError, match=r"missing \['k'\]"):
        CScore.from_parameters({"L": 1.0, "d0": 0.5, "b": 0.0}, threshold=0.5)


def test_weighted_option(rng):
    d, y = gaussian_pairs(rng, n=1000)
    # Sparse far tail: two lone genuine pairs at large distances (ratio 1 in their bins).
    d, y = np.r_[d, 1.5, 1.7], np.r_[y, 1, 1]
    t = best_threshold(d, y)
    plain, weighted = CScore().fit(d, y, t), CScore(weighted=True).fit(d, y, t)
    assert weighted.b_ < plain.b_  # the lone tail bins pull the weighted curve's floor up less
    assert weighted.get_params()["weighted"] is True
    with pytest.raises(ValueError, match="exclude each other"):
        CScore(weighted=True, fill_empty=True).fit(d, y, t)
