"""The quality-aware C-Score (beyond the paper): Eq. 2's curve with a midpoint and a slope that follow the quality
of the pair, so that a distance from two poor photos is not read as if it came from two good ones.

A distance alone cannot know that a photo is bad: genuine pairs of degraded photos lie farther apart and the
classes overlap more, so the paper's curve, fitted on clean pairs (or on a mix), is over-confident on bad pairs
and under-confident on good ones (docs/quality.md measures it). Here, with ``z`` the pair's standardised quality
features (the lower and the higher of the two image qualities, each ``(q - mean) / std`` over the fitting
pairs' images):

    ``c(d, z) = L / (1 + exp(-k(z) (d - d0(z)))) + b``,  ``d0(z) = d0 + a . z``,  ``k(z) = -exp(s + g . z)``

(Eq. 2 when ``a = g = 0``; the slope stays negative), fitted by maximum likelihood on the pairs' labels (the
share of genuine pairs, as Eq. 2 estimates, but weighted by pairs rather than by histogram bins, and over two
inputs at once, where a histogram would need bins of distance x quality).

The score is the probability that the decision at the unchanged threshold ``t`` is right: ``C = c(d, z)`` for
``d <= t``, ``1 - c(d, z)`` for ``d > t``, in [0, 1], *without* Eq. 3's clip to [0.5, 1]. Decisions stay the
paper's (a per-pair threshold would change verdicts and the false-match rate, an operator's policy); only the
confidence in them depends on quality. On a poor pair the decision at a threshold chosen on good photos can be more
likely wrong than right (degraded genuine pairs lie right of ``t``): the curve says so, and ``C < 0.5`` passes it
on where Eq. 3 would say 0.5 (:func:`confidence_reading` words it). The paper's C-Score keeps its clip.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from xfv.confidence.cscore import CScore, check_distances, check_pairs

FEATURES = ("min", "max")  # the pair's quality features of each measure, in this order
EPSILON = 1e-6  # probabilities are kept in [EPSILON, 1 - EPSILON] inside the likelihood
LIKELY_WRONG = "more likely wrong than right"


def confidence_reading(confidence: float) -> str | None:
    """A confidence in words where the number alone could mislead: below 0.5 the decision is more likely wrong than
    right (only the quality-aware C-Score gives such values; Eq. 3 clips them to 0.5); None otherwise."""
    return LIKELY_WRONG if float(confidence) < 0.5 else None


def image_measures(quality1: np.ndarray, quality2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images' qualities as ``(N, M)`` arrays: one column per quality measure (a 1-d array is one measure)."""
    q1, q2 = (np.asarray(q, dtype=np.float64) for q in (quality1, quality2))
    q1, q2 = (q[:, None] if q.ndim == 1 else q for q in (q1, q2))
    if q1.shape != q2.shape or q1.ndim != 2:
        raise ValueError(f"image qualities must be two arrays (N,) or (N, measures) of one shape, got shapes "
                         f"{np.shape(quality1)} and {np.shape(quality2)}.")
    if not (np.all(np.isfinite(q1)) and np.all(np.isfinite(q2))):
        raise ValueError("image qualities contain NaN or infinite values.")
    return q1, q2


def pair_features(quality1: np.ndarray, quality2: np.ndarray) -> np.ndarray:
    """``(N, 2 M)``: per measure the lower image quality of each pair, then per measure the higher one."""
    q1, q2 = image_measures(quality1, quality2)
    return np.concatenate([np.minimum(q1, q2), np.maximum(q1, q2)], axis=1)


class QualityAwareCScore:
    """The quality-aware C-Score of one model (module docstring); after ``fit``: ``L_``, ``b_``, ``d0_``, ``s_``
    (log of the slope's size), ``a_`` and ``g_`` (one per feature: the lower, then the higher image quality of each
    measure), the standardisation per measure ``mean_``, ``std_`` and the decision threshold ``threshold_``.
    Qualities are ``(N,)`` for one measure or ``(N, M)`` for several."""

    name = "quality-aware"

    def __init__(self, maxiter: int = 2000) -> None:
        self.maxiter = maxiter

    def fit(self, distances: np.ndarray, labels: np.ndarray, quality1: np.ndarray, quality2: np.ndarray,
            threshold: float) -> QualityAwareCScore:
        d, y = check_pairs(distances, labels)
        features = pair_features(quality1, quality2)
        if len(features) != len(d):
            raise ValueError(f"one quality per image of each pair is needed: {len(d)} distances, "
                             f"{len(features)} quality pairs.")
        if len(set(y.tolist())) < 2:
            raise ValueError("the quality-aware C-Score needs both genuine and imposter pairs.")
        images = np.concatenate(image_measures(quality1, quality2))
        self.mean_, self.std_ = images.mean(axis=0), images.std(axis=0)
        if not np.all(self.std_ > 0):
            raise ValueError("the image qualities are all equal: a quality-aware curve needs qualities that vary.")
        z = self._standardise(features)
        start = CScore().fit(d, y, threshold)  # the paper's fit: the start, and the curve at a = g = 0
        k0 = min(start.k_, -1e-3)
        n = z.shape[1]
        p0 = np.concatenate([[start.L_, start.b_, start.d0_, np.log(-k0)], np.zeros(2 * n)])
        bounds = [(0.0, 2.0), (-1.0, 1.0), (-2.0, 4.0), (-5.0, 10.0)] + [(-5.0, 5.0)] * (2 * n)

        def loss(p: np.ndarray) -> float:
            with np.errstate(over="ignore", under="ignore"):  # exp of far-off distances; clipped below
                c = np.clip(self._curve(p, d, z), EPSILON, 1 - EPSILON)
            return -float(np.mean(y * np.log(c) + (1 - y) * np.log(1 - c)))

        result = minimize(loss, p0, method="L-BFGS-B", bounds=bounds, options={"maxiter": int(self.maxiter)})
        p = result.x if result.fun <= loss(p0) else p0
        self.L_, self.b_, self.d0_, self.s_ = (float(v) for v in p[:4])
        self.a_, self.g_ = p[4:4 + n].astype(float).copy(), p[4 + n:].astype(float).copy()
        self.threshold_ = float(threshold)
        return self

    def _standardise(self, features: np.ndarray) -> np.ndarray:
        if features.shape[1] != 2 * len(self.mean_):
            raise ValueError(f"this quality-aware C-Score was fitted on {len(self.mean_)} quality measure(s), got "
                             f"{features.shape[1] // 2}.")
        return (features - np.tile(self.mean_, 2)) / np.tile(self.std_, 2)

    @staticmethod
    def _curve(p: np.ndarray, d: np.ndarray, z: np.ndarray) -> np.ndarray:
        L, b, d0, s = p[:4]
        n = z.shape[1]
        midpoint = d0 + z @ p[4:4 + n]
        slope = -np.exp(s + z @ p[4 + n:])
        return L * expit(slope * (d - midpoint)) + b

    def _parameters(self) -> np.ndarray:
        self._check_fitted()
        return np.array([self.L_, self.b_, self.d0_, self.s_, *self.a_, *self.g_])

    def standardise(self, quality1: np.ndarray, quality2: np.ndarray) -> np.ndarray:
        """The pairs' features ``z`` as the fit standardised them."""
        self._check_fitted()
        return self._standardise(pair_features(quality1, quality2))

    def curve(self, distances: np.ndarray, quality1: np.ndarray, quality2: np.ndarray) -> np.ndarray:
        """``c(d, z)`` clipped to [0, 1]: about the probability that a pair of this distance and quality is genuine."""
        d = check_distances(np.atleast_1d(distances))
        z = self.standardise(np.atleast_1d(quality1), np.atleast_1d(quality2))
        if len(z) != len(d):
            raise ValueError(f"one quality per image of each pair is needed: {len(d)} distances, {len(z)} pairs.")
        return np.clip(self._curve(self._parameters(), d, z), 0.0, 1.0)

    def confidence(self, distances: np.ndarray, quality1: np.ndarray, quality2: np.ndarray) -> np.ndarray:
        """The probability that the decision ``d <= t`` is right: ``c(d, z)`` for ``d <= t``, ``1 - c(d, z)`` for
        ``d > t``, in [0, 1] (Eq. 3 without its clip at 0.5: below 0.5 the decision is more likely wrong than
        right)."""
        d = check_distances(np.atleast_1d(distances))
        c = self.curve(d, quality1, quality2)
        return np.where(d <= self.threshold_, c, 1.0 - c)

    @property
    def parameters(self) -> dict:
        """JSON-ready: the fitted parameters and the standardisation."""
        self._check_fitted()
        return {"L": self.L_, "b": self.b_, "d0": self.d0_, "s": self.s_, "a": list(map(float, self.a_)),
                "g": list(map(float, self.g_)), "mean": list(map(float, self.mean_)),
                "std": list(map(float, self.std_)), "features": list(FEATURES)}

    @classmethod
    def from_parameters(cls, parameters: dict, threshold: float) -> QualityAwareCScore:
        """A fitted score from :attr:`parameters` (e.g. a calibration file)."""
        try:
            score = cls()
            score.L_, score.b_, score.d0_, score.s_ = (float(parameters[k]) for k in ("L", "b", "d0", "s"))
            score.a_ = np.array([float(v) for v in parameters["a"]])
            score.g_ = np.array([float(v) for v in parameters["g"]])
            score.mean_ = np.array([float(v) for v in parameters["mean"]])
            score.std_ = np.array([float(v) for v in parameters["std"]])
            score.threshold_ = float(threshold)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"quality-aware C-Score parameters need L, b, d0, s, a, g, mean, std; got "
                             f"{parameters!r} ({error}).") from None
        n = 2 * len(score.mean_)
        if len(score.mean_) == 0 or score.std_.shape != score.mean_.shape or score.a_.shape != (n,) or \
                score.g_.shape != (n,):
            raise ValueError(f"a and g need one value per feature ({FEATURES} of each measure), mean and std one per "
                             f"measure; got {parameters!r}.")
        values = [score.L_, score.b_, score.d0_, score.s_, score.threshold_, *score.mean_, *score.std_,
                  *score.a_, *score.g_]
        if not all(np.isfinite(values)) or np.any(score.std_ <= 0):
            raise ValueError(f"quality-aware C-Score parameters must be finite with std > 0, got {parameters!r}.")
        return score

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise ValueError("This QualityAwareCScore is not fitted yet; call fit(...) first.")
