"""Calibration of a confidence against correctness (method.md §1, checks): reliability curve, expected
calibration error and Brier score. Eq. 3's confidences lie in [0.5, 1]; the bins are equal-width over that range,
:data:`ECE_BINS` of them by default (0.05 wide). The quality-aware C-Score's probability that a decision is right
may lie below 0.5 (docs/quality.md): below 0.5 the bins continue at the same width down to 0 (20 bins over [0, 1] by
default), so that a confidence in [0.5, 1] falls into the same bin either way and the ECE of Eq. 3's confidences is
what it always was."""

from __future__ import annotations

import numpy as np

ECE_BINS = 10  # over [0.5, 1]; as many again over [0, 0.5) for confidences below 0.5
CONFIDENCE_RANGE = (0.0, 1.0)  # what a confidence may be (Eq. 3's lie in [0.5, 1])


def check_correct(correct: np.ndarray) -> np.ndarray:
    """Correctness of decisions as floats; raises ``ValueError`` for values other than 0/1 (or booleans)."""
    y = np.asarray(correct)
    unexpected = set(np.unique(y).tolist()) - {0, 1}
    if unexpected:
        raise ValueError(f"correct must be 0/1 or boolean, got values {sorted(unexpected)}.")
    return y.astype(np.float64)


def _check(correct: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(correct)
    p = np.asarray(confidence, dtype=np.float64)
    if y.ndim != 1 or p.shape != y.shape:
        raise ValueError(f"correct and confidence must be 1-d of equal length, got shapes {y.shape} and {p.shape}.")
    if y.size == 0:
        raise ValueError("No pairs given: correct is empty.")
    y = check_correct(y)
    low, high = CONFIDENCE_RANGE
    outside = ~((p >= low) & (p <= high))
    if np.any(outside):
        raise ValueError(f"confidence has values outside [{low}, {high}]: {p[outside][:5].tolist()}.")
    return y, p


def calibration_curve(
    correct: np.ndarray, confidence: np.ndarray, *, n_bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per non-empty bin: share of correct decisions, mean confidence and number of pairs, in bin order.

    ``n_bins`` equal-width bins over [0.5, 1], continued at the same width below 0.5 (``n_bins`` more over
    [0, 0.5)) for a confidence under 0.5. Bins are ``[left, right)``, the last one also holds 1.0.
    """
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    y, p = _check(correct, confidence)
    # the bin above 0.5 exactly as over [0.5, 1] alone; below 0.5, negative before the shift by n_bins
    index = np.minimum(np.floor((p - 0.5) / 0.5 * n_bins).astype(np.int64), n_bins - 1) + n_bins
    counts = np.bincount(index, minlength=2 * n_bins).astype(np.float64)
    hits = np.bincount(index, weights=y, minlength=2 * n_bins)
    sums = np.bincount(index, weights=p, minlength=2 * n_bins)
    filled = counts > 0
    return hits[filled] / counts[filled], sums[filled] / counts[filled], counts[filled].astype(np.int64)


def expected_calibration_error(correct: np.ndarray, confidence: np.ndarray, *, n_bins: int = ECE_BINS) -> float:
    """``ECE = sum_b n_b / N * |accuracy_b - mean confidence_b|`` over equal-width bins of [0.5, 1] (continued
    below 0.5 at the same width: :func:`calibration_curve`)."""
    accuracy, mean_confidence, counts = calibration_curve(correct, confidence, n_bins=n_bins)
    return float(np.sum(counts * np.abs(accuracy - mean_confidence)) / np.sum(counts))


def brier_score(correct: np.ndarray, confidence: np.ndarray) -> float:
    """Mean squared difference between the confidence and correctness (1 correct, 0 wrong)."""
    y, p = _check(correct, confidence)
    return float(np.mean((p - y) ** 2))
