"""Baselines for the C-Score: other maps from a distance to the probability that the decision ``d <= t`` is
correct, fitted on the same training pairs and clipped to the same range [0.5, 1].

All three use the margin ``m = |d - t|`` (one map for both sides of t, so they see exactly what the decision
saw) and share the shape ``fit(distances, correct, threshold)`` -> self, ``confidence(distances)``:

- :class:`PlattScaling`: logistic regression of correctness on ``m`` (``p = 1 / (1 + exp(-(a m + c)))``),
  practically unregularised (``C = 1e4``); constant 1 when every training decision is correct.
- :class:`IsotonicCalibration`: non-decreasing step function of ``m`` (pool adjacent violators), clipped
  outside the training range.
- :class:`LinearMapping`: ``0.5 + 0.5 m / m_max`` per side, ``m_max`` the largest training margin on that
  side (``t - min d`` left, ``max d - t`` right), capped at 1: the plain "distance from threshold" score.
"""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from xfv.confidence.cscore import check_distances


def _clip(p: np.ndarray) -> np.ndarray:
    return np.clip(p, 0.5, 1.0)


def _check_correct(distances: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = check_distances(distances)
    y = np.asarray(correct)
    if y.shape != d.shape:
        raise ValueError(f"correct must have one entry per distance, got shapes {y.shape} and {d.shape}.")
    if d.size == 0:
        raise ValueError("No pairs given: distances is empty.")
    unexpected = set(np.unique(y).tolist()) - {0, 1}
    if unexpected:
        raise ValueError(f"correct must be 0/1 or boolean, got values {sorted(unexpected)}.")
    return d, y.astype(np.int64)


class PlattScaling:
    """Platt scaling of the margin ``|d - t|``: logistic regression of correctness."""

    def fit(self, distances: np.ndarray, correct: np.ndarray, threshold: float) -> PlattScaling:
        d, y = _check_correct(distances, correct)
        self.threshold_ = float(threshold)
        margin = np.abs(d - self.threshold_)[:, None]
        if np.all(y == y[0]):
            self.model_ = None
            self.constant_ = float(y[0])
        else:
            self.model_ = LogisticRegression(C=1e4).fit(margin, y)
        return self

    def confidence(self, distances: np.ndarray) -> np.ndarray:
        d = check_distances(np.atleast_1d(distances))
        if self.model_ is None:
            return _clip(np.full(d.shape, self.constant_))
        return _clip(self.model_.predict_proba(np.abs(d - self.threshold_)[:, None])[:, 1])


class IsotonicCalibration:
    """Isotonic regression of correctness on the margin ``|d - t|``."""

    def fit(self, distances: np.ndarray, correct: np.ndarray, threshold: float) -> IsotonicCalibration:
        d, y = _check_correct(distances, correct)
        self.threshold_ = float(threshold)
        self.model_ = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(np.abs(d - self.threshold_), y)
        return self

    def confidence(self, distances: np.ndarray) -> np.ndarray:
        d = check_distances(np.atleast_1d(distances))
        return _clip(self.model_.predict(np.abs(d - self.threshold_)))


class LinearMapping:
    """``0.5 + 0.5 |d - t| / m_max`` per side of t, capped at 1."""

    def fit(self, distances: np.ndarray, correct: np.ndarray, threshold: float) -> LinearMapping:
        d, _ = _check_correct(distances, correct)
        self.threshold_ = float(threshold)
        self.left_ = float(max(self.threshold_ - d.min(), 0.0))
        self.right_ = float(max(d.max() - self.threshold_, 0.0))
        return self

    def confidence(self, distances: np.ndarray) -> np.ndarray:
        d = check_distances(np.atleast_1d(distances))
        margin = np.abs(d - self.threshold_)
        scale = np.where(d <= self.threshold_, self.left_, self.right_)
        share = np.divide(margin, scale, out=np.ones_like(margin), where=scale > 0)
        return _clip(0.5 + 0.5 * share)


BASELINES = {"platt": PlattScaling, "isotonic": IsotonicCalibration, "linear": LinearMapping}
