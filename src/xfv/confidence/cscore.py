"""The C-Score (method.md §1, paper Section 3.1): a logistic curve (Eq. 2) fitted to the bin-wise share of
genuine pairs, flipped at the threshold (Eq. 3) into the probability that a decision is correct.

Conventions, stated once:

- Bins: ``n_bins`` equal-width bins over [0, 2] (``np.histogram``: each bin holds ``[left, right)``, the last
  also 2.0); the curve is fitted at the bin centres.
- A pair at exactly ``d == t`` is on the genuine side (``d <= t``, method.md §0).
- Fit bounds, the only addition to the paper: ``0 <= L <= 2``, ``0 <= d0 <= 2``, ``-k_max <= k <= 0``,
  ``-1 <= b <= 1`` with ``k_max = 10 / bin width`` (a fall from 0.99 to 0.01 within one bin, the steepest
  slope the histogram can resolve). They keep the curve falling (genuine pairs at small distances), remove the
  ``(L, k, b) ~ (-L, -k, b + L)`` ambiguity and stop a run-away ``k`` on nearly separated data (a few mixed
  bins between pure ones). A fit whose optimum lies inside the bounds is the paper's fit.
- Start (``start="auto"``, the default): ``L = max(r) - min(r)``, ``d0 = t``, ``b = min(r)`` with ``k`` from
  each of :data:`AUTO_SLOPES` (-19, near the authors' -20, and a gentler -5); the fit with the smaller squared
  residual wins. ``start="authors"``: the authors' single start ``[max(r), t, -20, min(r)]``.
- Perfectly separated bins (every non-empty bin holds one class, all genuine bins left of all imposter bins:
  ratios exactly 1 then 0) make the least-squares optimum a step, which ``curve_fit`` only creeps towards.
  Its limit is set directly: ``L = 1``, ``b = 0``, ``k = -k_max``, ``d0`` midway between the last genuine and
  the first imposter bin centre.
- ``bounded=False`` drops both additions, the bounds and the separated-bins limit: a plain unbounded
  ``curve_fit`` (``method="dogbox"``), as the authors' code does. Unbounded, ``(L, k)`` may come out as
  ``(-L, -k)`` with ``b + L``, the same curve.
- The authors' fit (:meth:`CScore.authors`, the authors' public ``calculate_score.py``): 2,000 bins,
  density histograms, empty bins filled (``fill_empty``), one start (``start="authors"``), no bounds
  (``bounded=False``). Two differences of at most one bin remain: their code fits at the bins' left edges
  (here the centres, half a bin = 0.0005 to the right) and fills the bin that holds ``t`` with 0 (here with 1
  when its centre is ``<= t``).
- If ``curve_fit`` does not converge from any start (``RuntimeError`` inside scipy), :class:`FitError` is raised.
- ``weighted=True`` (not in the paper nor the authors' code; off by default) weighs each bin's residual by its
  number of pairs (``sigma = 1 / sqrt(n)``), so that sparse tail bins holding one or two pairs, whose ratio is
  exactly 0 or 1, pull the curve less. It excludes ``fill_empty`` (a filled bin has no pairs to weigh).
- ``continuous=True`` (the *continuous* C-Score, not in the paper; off by default) fits Eq. 2 under the
  constraint ``c(t) = 0.5``, so that Eq. 3 does not jump at ``t`` (the paper's fit need not cross 0.5 there:
  SFace on LFW has ``c(t) = 0.69``, so a pair just left of ``t`` gets 0.69 and one just right of it 0.5). It is
  fitted as ``(L, r, k)`` with ``b = 0.5 - r L`` and ``d0 = t - logit(r) / k``, ``0 < r < 1``, the same bins and
  starts; perfectly separated bins give the step at ``t``.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import expit, logit

from xfv.errors import FitError
from xfv.verification import check_scores

DISTANCE_RANGE = (0.0, 2.0)
AUTHORS_SLOPE = -20.0
AUTO_SLOPES = (-19.0, -5.0)
STARTS = ("auto", "authors")
RANGE_TOLERANCE = 1e-9
# curve_fit's covariance is not used; its warning that it could not be estimated is filtered once, here, not around
# each fit: warnings.catch_warnings changes process-wide state and is not safe in the web's worker threads.
warnings.filterwarnings("ignore", message="Covariance of the parameters could not be estimated",
                        category=OptimizeWarning)


def logistic(d: np.ndarray, L: float, d0: float, k: float, b: float) -> np.ndarray:
    """Eq. 2: ``c(d) = L / (1 + exp(-k (d - d0))) + b`` (unclipped; overflow-free through ``expit``)."""
    return L * expit(k * (np.asarray(d, dtype=np.float64) - d0)) + b


def check_distances(distances: np.ndarray) -> np.ndarray:
    """1-d finite cosine distances in [0, 2] as float64; round-off up to 1e-9 outside the range is clipped."""
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 1:
        raise ValueError(f"distances must be 1-d, got shape {d.shape}.")
    if not np.all(np.isfinite(d)):
        bad = np.flatnonzero(~np.isfinite(d))[:5]
        raise ValueError(f"distances contain NaN or infinite values: {d[bad].tolist()} at indices {bad.tolist()}.")
    low, high = DISTANCE_RANGE
    outside = (d < low - RANGE_TOLERANCE) | (d > high + RANGE_TOLERANCE)
    if np.any(outside):
        bad = np.flatnonzero(outside)[:5]
        raise ValueError(
            f"Cosine distances lie in [0, 2] (Eq. 1), got {d[bad].tolist()} at indices {bad.tolist()}."
        )
    return np.clip(d, low, high)


def check_pairs(
    distances: np.ndarray, labels: np.ndarray, folds: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs to fit on: one length, 0/1 labels (and folds), distances as :func:`check_distances`; float64, int64."""
    check_scores(distances, labels, folds)
    return check_distances(distances), np.asarray(labels).astype(np.int64)


def bin_ratios(
    distances: np.ndarray,
    labels: np.ndarray,
    *,
    n_bins: int = 400,
    density: bool = False,
    fill_empty: bool = False,
    threshold: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and genuine ratios ``r = n_genuine / (n_genuine + n_imposter)`` (method.md §1 steps 1-2).

    Empty bins are left out, or with ``fill_empty`` (the authors' code) set to 1 left of ``threshold``
    (centre <= t) and 0 right of it. ``density`` divides each class's counts by its size (the authors'
    density histograms; identical to counts for balanced classes).
    """
    genuine, imposter, edges = histograms(distances, labels, n_bins=n_bins, density=density)
    centres = (edges[:-1] + edges[1:]) / 2.0
    total = genuine + imposter
    filled = total > 0
    ratios = np.divide(genuine, total, out=np.zeros_like(total), where=filled)
    if not fill_empty:
        return centres[filled], ratios[filled]
    if threshold is None:
        raise ValueError("fill_empty=True needs the threshold: empty bins are 1 left of t and 0 right of it.")
    return centres, np.where(filled, ratios, (centres <= threshold).astype(np.float64))


def histograms(
    distances: np.ndarray, labels: np.ndarray, *, n_bins: int = 400, density: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Genuine and imposter histograms over [0, 2] and the bin edges (method.md §1 step 1)."""
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or n_bins < 4:
        raise ValueError(f"n_bins must be an integer >= 4, got {n_bins!r}.")
    d, y = check_pairs(distances, labels)
    genuine, edges = np.histogram(d[y == 1], bins=int(n_bins), range=DISTANCE_RANGE)
    imposter, _ = np.histogram(d[y == 0], bins=int(n_bins), range=DISTANCE_RANGE)
    genuine, imposter = genuine.astype(np.float64), imposter.astype(np.float64)
    if density:
        genuine /= max(genuine.sum(), 1.0)
        imposter /= max(imposter.sum(), 1.0)
    return genuine, imposter, edges


class CScore:
    """The C-Score of one model on one dataset (Eq. 2 and Eq. 3), in scikit-learn estimator shape.

    ``CScore(n_bins=400, density=False, fill_empty=False, start="auto", weighted=False, maxfev=20000,
    bounded=True, continuous=False)``; after ``fit(distances, labels, threshold)`` the curve's parameters are ``L_``, ``d0_``,
    ``k_``, ``b_`` and the threshold ``threshold_``. :meth:`authors` gives the authors' code's fit.
    """

    def __init__(
        self,
        n_bins: int = 400,
        density: bool = False,
        fill_empty: bool = False,
        start: str = "auto",
        weighted: bool = False,
        maxfev: int = 20000,
        bounded: bool = True,
        continuous: bool = False,
    ) -> None:
        self.n_bins = n_bins
        self.density = density
        self.fill_empty = fill_empty
        self.start = start
        self.weighted = weighted
        self.maxfev = maxfev
        self.bounded = bounded
        self.continuous = continuous

    @classmethod
    def authors(cls, **options) -> CScore:
        """The authors' code's fit: 2,000 density bins, empty bins filled, one start, no bounds."""
        return cls(**{"n_bins": 2000, "density": True, "fill_empty": True, "start": "authors", "bounded": False,
                      **options})

    def get_params(self) -> dict:
        """The options; ``continuous`` only when set (files the paper's fit writes stay readable everywhere)."""
        params = {"n_bins": self.n_bins, "density": self.density, "fill_empty": self.fill_empty,
                  "start": self.start, "weighted": self.weighted, "maxfev": self.maxfev, "bounded": self.bounded}
        return {**params, "continuous": True} if self.continuous else params

    def fit(self, distances: np.ndarray, labels: np.ndarray, threshold: float) -> CScore:
        """Fit Eq. 2 to the bin-wise genuine ratios of these pairs; ``threshold`` is the decision threshold t."""
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {self.start!r}.")
        if not isinstance(self.maxfev, (int, np.integer)) or self.maxfev < 1:
            raise ValueError(f"maxfev must be a positive integer, got {self.maxfev!r}.")
        if self.weighted and self.fill_empty:
            raise ValueError("weighted=True and fill_empty=True exclude each other: a filled bin has no pairs.")
        if self.continuous and not self.bounded:
            raise ValueError("continuous=True needs bounded=True: the constraint c(t) = 0.5 is kept by bounds.")
        threshold = _check_threshold(threshold)
        present = set(np.unique(np.asarray(labels)).tolist())
        if present and present <= {0, 1} and len(present) == 1:
            kind = "genuine (1)" if present == {1} else "imposter (0)"
            raise ValueError(f"labels are all {kind}: the C-Score needs both genuine and imposter pairs.")
        centres, ratios = bin_ratios(distances, labels, n_bins=self.n_bins, density=self.density,
                                     fill_empty=self.fill_empty, threshold=threshold)
        if len(centres) < 4:
            raise ValueError(
                f"Eq. 2 has 4 parameters but the {len(np.asarray(distances))} pairs fill only {len(centres)} "
                f"histogram bin(s); give more pairs or more distinct distances."
            )
        k_max = 10.0 * self.n_bins / (DISTANCE_RANGE[1] - DISTANCE_RANGE[0])
        separated = np.all((ratios == 0.0) | (ratios == 1.0)) and np.all(np.diff(ratios) <= 0)
        if self.bounded and separated:
            gap = threshold if self.continuous else (centres[ratios == 1.0].max() + centres[ratios == 0.0].min()) / 2
            self.L_, self.d0_, self.k_, self.b_ = 1.0, float(gap), -k_max, 0.0
            self.threshold_ = threshold
            return self
        sigma = None
        if self.weighted:
            counts, _ = np.histogram(check_distances(distances), bins=int(self.n_bins), range=DISTANCE_RANGE)
            sigma = 1.0 / np.sqrt(counts[counts > 0])
        if self.continuous:
            return self._fit_continuous(centres, ratios, sigma, threshold, k_max)
        lower = np.array([0.0, DISTANCE_RANGE[0], -k_max, -1.0]) if self.bounded else np.full(4, -np.inf)
        upper = np.array([2.0, DISTANCE_RANGE[1], 0.0, 1.0]) if self.bounded else np.full(4, np.inf)
        starts = [np.clip(p0, lower, upper) for p0 in self._starts(ratios, threshold, k_max)]
        best = self._best_fit(logistic, starts, (lower, upper), centres, ratios, sigma, "The C-Score curve (Eq. 2)")
        self.L_, self.d0_, self.k_, self.b_ = (float(p) for p in best)
        self.threshold_ = threshold
        return self

    def _best_fit(self, function, starts: list[np.ndarray], bounds: tuple[np.ndarray, np.ndarray],
                  centres: np.ndarray, ratios: np.ndarray, sigma: np.ndarray | None, what: str) -> np.ndarray:
        """``curve_fit`` (dogbox) of ``function`` from each start; the parameters with the smallest (weighted)
        squared residual. :class:`FitError` if no start converges."""
        best, best_cost, failures = None, np.inf, []
        for p0 in starts:
            try:
                params, _ = curve_fit(function, centres, ratios, p0=p0, sigma=sigma, bounds=bounds,
                                      method="dogbox", maxfev=int(self.maxfev))
            except RuntimeError as error:
                failures.append(f"start {np.round(p0, 4).tolist()}: {error}")
                continue
            residuals = function(centres, *params) - ratios
            cost = float(np.sum((residuals if sigma is None else residuals / sigma) ** 2))
            if cost < best_cost:
                best, best_cost = params, cost
        if best is None:
            raise FitError(f"{what} did not converge within maxfev={self.maxfev}: " + "; ".join(failures))
        return best

    def _fit_continuous(self, centres: np.ndarray, ratios: np.ndarray, sigma: np.ndarray | None, threshold: float,
                        k_max: float) -> CScore:
        """Eq. 2 through ``(t, 0.5)``: parameters ``(L, r, k)``, ``b = 0.5 - r L``, ``d0 = t - logit(r) / k``."""
        def through_t(d, L, r, k):
            return logistic(d, L, threshold - logit(r) / k, k, 0.5 - r * L)

        tiny = 1e-6
        lower, upper = np.array([tiny, tiny, -k_max]), np.array([2.0, 1.0 - tiny, -tiny])
        starts = [np.clip([max(L, 0.5), 0.5, k], lower, upper) for L, _, k, _ in self._starts(ratios, threshold, k_max)]
        best = self._best_fit(through_t, starts, (lower, upper), centres, ratios, sigma, "The continuous C-Score curve")
        L, r, k = (float(v) for v in best)
        self.L_, self.d0_, self.k_, self.b_ = L, threshold - float(logit(r)) / k, k, 0.5 - r * L
        self.threshold_ = threshold
        return self

    @classmethod
    def from_parameters(cls, parameters: dict[str, float], threshold: float, **options) -> CScore:
        """A fitted C-Score from known Eq. 2 parameters ``{"L", "d0", "k", "b"}`` (e.g. a calibration file)."""
        missing = {"L", "d0", "k", "b"} - set(parameters)
        if missing:
            raise ValueError(f"C-Score parameters need L, d0, k and b; missing {sorted(missing)} in {parameters!r}.")
        values = {name: float(parameters[name]) for name in ("L", "d0", "k", "b")}
        if not all(np.isfinite(v) for v in values.values()):
            raise ValueError(f"C-Score parameters must be finite, got {values!r}.")
        score = cls(**options)
        score.L_, score.d0_, score.k_, score.b_ = values["L"], values["d0"], values["k"], values["b"]
        score.threshold_ = _check_threshold(threshold)
        return score

    def _starts(self, ratios: np.ndarray, threshold: float, k_max: float) -> list[np.ndarray]:
        high, low = float(np.max(ratios)), float(np.min(ratios))
        if self.start == "authors":
            return [np.array([high, threshold, AUTHORS_SLOPE, low])]
        return [np.array([high - low, threshold, max(k, -k_max), low]) for k in AUTO_SLOPES]

    @property
    def parameters(self) -> dict[str, float]:
        """The fitted Eq. 2 parameters as ``{"L", "d0", "k", "b"}``."""
        self._check_fitted()
        return {"L": self.L_, "d0": self.d0_, "k": self.k_, "b": self.b_}

    def curve(self, distances: np.ndarray) -> np.ndarray:
        """Eq. 2 with the fitted parameters, clipped to [0, 1]: about the probability that a pair is genuine."""
        self._check_fitted()
        return np.clip(logistic(check_distances(np.atleast_1d(distances)), self.L_, self.d0_, self.k_, self.b_),
                       0.0, 1.0)

    def confidence(self, distances: np.ndarray) -> np.ndarray:
        """Eq. 3: ``C = c(d)`` for ``d <= t``, ``1 - c(d)`` for ``d > t``, clipped to [0.5, 1]."""
        d = check_distances(np.atleast_1d(distances))
        c = self.curve(d)
        return np.clip(np.where(d <= self.threshold_, c, 1.0 - c), 0.5, 1.0)

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise ValueError("This CScore is not fitted yet; call fit(distances, labels, threshold) first.")

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"CScore({options})"


def _check_threshold(threshold: float) -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number, got {threshold!r}.") from None
    if not np.isfinite(t):
        raise ValueError(f"threshold must be finite, got {threshold!r}.")
    return t
