"""Baselines for the C-Score: other maps from a distance to the probability that the decision ``d <= t`` is
correct, fitted on the same training pairs and clipped to the same range [0.5, 1].

Each baseline is a function of the margin ``m = |d - t|`` fitted separately on each side of ``t`` (the
genuine side ``d <= t`` and the imposter side ``d > t``), as the C-Score's curve need not be symmetric either.
All share the shape ``fit(distances, correct, threshold)`` -> self, ``confidence(distances)``:

- :class:`PlattScaling`: per side, logistic regression of correctness on ``m``
  (``p = 1 / (1 + exp(-(a m + c)))``), practically unregularised (``C = 1e4``).
- :class:`IsotonicCalibration`: per side, a non-decreasing step function of ``m`` (pool adjacent violators),
  constant beyond the training range.
- :class:`LinearMapping`: per side, ``0.5 + 0.5 m / m_max`` with ``m_max`` the side's largest training margin
  (``t - min d`` left, ``max d - t`` right), capped at 1: the plain "distance from threshold" score.

A side whose training decisions are all correct (or all wrong) gets that constant; a side with no training
pairs gets the training accuracy of the other side.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from xfv.confidence.cscore import check_distances
from xfv.confidence.metrics import check_correct

Side = Callable[[np.ndarray], np.ndarray]


def _constant(value: float) -> Side:
    return lambda margins: np.full(margins.shape, value)


class _PerSide:
    """Fits ``_fit_side(margins, correct)``, a map from margins to probabilities, on each side of t."""

    #: whether a side whose training decisions are all correct (or all wrong) gets that constant
    constant_when_one_class = True

    def fit(self, distances: np.ndarray, correct: np.ndarray, threshold: float):
        d = check_distances(distances)
        y = np.asarray(correct)
        if y.shape != d.shape:
            raise ValueError(f"correct must have one entry per distance, got shapes {y.shape} and {d.shape}.")
        if d.size == 0:
            raise ValueError("No pairs given: distances is empty.")
        y = check_correct(y)
        self.threshold_ = float(threshold)
        left = d <= self.threshold_
        self.sides_: list[Side] = []
        for side in (left, ~left):
            if not np.any(side):
                self.sides_.append(_constant(float(np.mean(y[~side]))))
            elif self.constant_when_one_class and np.all(y[side] == y[side][0]):
                self.sides_.append(_constant(float(y[side][0])))
            else:
                self.sides_.append(self._fit_side(np.abs(d[side] - self.threshold_), y[side]))
        return self

    def _fit_side(self, margins: np.ndarray, correct: np.ndarray) -> Side:
        raise NotImplementedError

    def confidence(self, distances: np.ndarray) -> np.ndarray:
        """Probability that the decision ``d <= t`` is correct, clipped to [0.5, 1]."""
        d = check_distances(np.atleast_1d(distances))
        out = np.empty_like(d)
        left = d <= self.threshold_
        for side, predict in zip((left, ~left), self.sides_):
            if np.any(side):
                out[side] = predict(np.abs(d[side] - self.threshold_))
        return np.clip(out, 0.5, 1.0)


class PlattScaling(_PerSide):
    """Platt scaling: per side of t, logistic regression of correctness on the margin ``|d - t|``."""

    def _fit_side(self, margins: np.ndarray, correct: np.ndarray) -> Side:
        model = LogisticRegression(C=1e4).fit(margins[:, None], correct.astype(np.int64))
        return lambda m: model.predict_proba(m[:, None])[:, 1]


class IsotonicCalibration(_PerSide):
    """Per side of t, isotonic (non-decreasing) regression of correctness on the margin ``|d - t|``."""

    def _fit_side(self, margins: np.ndarray, correct: np.ndarray) -> Side:
        return IsotonicRegression(increasing=True, out_of_bounds="clip").fit(margins, correct).predict


class LinearMapping(_PerSide):
    """Per side of t, ``0.5 + 0.5 |d - t| / m_max`` capped at 1 (``m_max``: the side's largest training margin)."""

    constant_when_one_class = False

    def _fit_side(self, margins: np.ndarray, correct: np.ndarray) -> Side:
        scale = float(margins.max())
        if scale <= 0:
            return _constant(1.0)
        return lambda m: np.minimum(0.5 + 0.5 * m / scale, 1.0)


BASELINES = {"platt": PlattScaling, "isotonic": IsotonicCalibration, "linear": LinearMapping}
