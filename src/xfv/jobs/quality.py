"""How well the C-Score fits a dataset, as the platform shows it next to accuracy (method.md §1, checks).

Everything comes from what the explorer shows: the stored out-of-fold confidences and decisions, and the stored
per-fold fits (threshold ``t_k`` and the Eq. 2 parameters fitted on the other folds). Only the baselines are fitted,
fold-wise at the stored thresholds as ``xfv evaluate`` does, so that the better-calibrated one can be named.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xfv.confidence import CScore, brier_score, expected_calibration_error
from xfv.confidence.baselines import BASELINES
from xfv.jobs.evaluate import CSCORE, QUALITY_BANDS, quality_bands

POOR_ECE = 0.05  # an expected calibration error above this is a poor fit
GOOD_ECE = 0.01  # at most this: c(t) off 0.5 is noted, not called a poor fit (few pairs lie near t)
POOR_CENTRE = 0.15  # median |c(t_k) - 0.5| above this: the curve does not cross 0.5 at the threshold (Eq. 3
# jumps there); an accuracy-optimal t in a sparse stretch of distances alone moves c(t) by about 0.1


@dataclass(frozen=True)
class FoldFit:
    """One fold's fit: ``threshold`` t_k and the C-Score fitted on the other folds (``train``: their mask)."""

    fold: int
    threshold: float
    cscore: CScore
    train: np.ndarray


@dataclass(frozen=True)
class BandReliability:
    """How the stored confidences hold in one quality band: its pairs, the range of their pair quality, accuracy,
    mean confidence and ECE."""

    band: str
    pairs: int
    low: float
    high: float
    accuracy: float
    mean_confidence: float
    ece: float


@dataclass
class CalibrationQuality:
    """Accuracy, ECE and Brier of the stored out-of-fold C-Scores, the baselines' ECE and Brier, ``c(t_k)`` per
    fold, and the warnings the page shows."""

    pairs: int
    accuracy: float
    ece: float
    brier: float
    centre: float  # the median c(t_k) over the folds
    baselines: dict[str, dict[str, float]]
    confidences: dict[str, np.ndarray]  # per pair: "C-Score" (stored) and each baseline, for the reliability diagram
    correct: np.ndarray
    warnings: list[str] = field(default_factory=list)
    bands: list[BandReliability] = field(default_factory=list)  # by pair quality tertile, where qualities are known

    @property
    def best_baseline(self) -> tuple[str, dict[str, float]]:
        return min(self.baselines.items(), key=lambda item: item[1]["ece"])


def fold_fits(folds: np.ndarray, parameters: dict[int, tuple[float, dict[str, float]]]) -> list[FoldFit]:
    """The stored fits as :class:`FoldFit`; ``parameters``: fold -> (t_k, Eq. 2 parameters). The bins are the
    precompute's (:class:`CScore` defaults)."""
    return [FoldFit(k, t, CScore.from_parameters(p, t), folds != k) for k, (t, p) in sorted(parameters.items())]


def reliability_by_band(quality1: np.ndarray, quality2: np.ndarray, correct: np.ndarray,
                        confidence: np.ndarray) -> list[BandReliability]:
    """The stored confidences per quality band (tertiles of the pair quality, the lower image quality)."""
    bands = quality_bands(quality1, quality2)
    low = np.minimum(quality1, quality2)
    rows = []
    for band in QUALITY_BANDS:
        mask = bands == band
        if mask.any():
            rows.append(BandReliability(band, int(mask.sum()), float(low[mask].min()), float(low[mask].max()),
                                        float(correct[mask].mean()), float(confidence[mask].mean()),
                                        expected_calibration_error(correct[mask], confidence[mask])))
    return rows


def calibration_quality(distances: np.ndarray, labels: np.ndarray, folds: np.ndarray, confidence: np.ndarray,
                        correct: np.ndarray, fits: list[FoldFit], *, min_pairs: int,
                        shipped: bool = False, qualities: tuple[np.ndarray, np.ndarray] | None = None
                        ) -> CalibrationQuality:
    """Quality of the stored C-Scores of one model on one dataset, with a warning where they fit poorly;
    ``shipped``: the ``fits`` are the shipped calibration, which judges a dataset of fewer than ``min_pairs``;
    ``qualities``: both images' qualities per pair, for the reliability by quality band."""
    correct = np.asarray(correct, dtype=bool)
    d, y = np.asarray(distances, dtype=float), np.asarray(labels)
    confidences = {CSCORE: np.asarray(confidence, dtype=float), **{name: np.empty_like(d) for name in BASELINES}}
    for fit in fits:  # each baseline fitted on the other folds at the fold's threshold, as xfv evaluate does
        train_correct = (d[fit.train] <= fit.threshold) == (y[fit.train] == 1)
        for name, baseline in BASELINES.items():
            model = baseline().fit(d[fit.train], train_correct, fit.threshold)
            confidences[name][~fit.train] = model.confidence(d[~fit.train])
    baselines = {name: {"ece": expected_calibration_error(correct, confidences[name]),
                        "brier": brier_score(correct, confidences[name])} for name in BASELINES}
    centres = [float(fit.cscore.curve(np.array([fit.threshold]))[0]) for fit in fits]
    centre = float(np.median(centres)) if centres else float("nan")
    quality = CalibrationQuality(len(distances), float(correct.mean()), expected_calibration_error(correct, confidence),
                                 brier_score(correct, confidence), centre, baselines, confidences, correct)
    name, best = quality.best_baseline
    off_centre = abs(centre - 0.5) > POOR_CENTRE
    if quality.ece > POOR_ECE or (off_centre and quality.ece > GOOD_ECE):
        better = (f"; {name} is better calibrated here (ECE {best['ece']:.3f})"
                  if best["ece"] < quality.ece - 0.005 else "")
        quality.warnings.append(f"The C-Score fits poorly: ECE {quality.ece:.3f}, c(t) = {centre:.2f} instead of "
                                f"0.5 at the threshold{better}.")
    elif off_centre:
        quality.warnings.append(f"c(t) = {centre:.2f} instead of 0.5 at the threshold: Eq. 3 jumps there, but so few "
                                f"pairs lie near t that the C-Score stays well calibrated (ECE {quality.ece:.3f}).")
    if qualities is not None:
        quality.bands = reliability_by_band(*qualities, correct, np.asarray(confidence, dtype=float))
    if len(distances) < min_pairs:
        judged = ("these confidences and uploaded pairs use the shipped benchmark calibration" if shipped else
                  "uploaded pairs are judged with the shipped benchmark calibration, where one ships")
        quality.warnings.append(f"{len(distances)} pairs are too few for a calibration of their own (fewer than "
                                f"{min_pairs}): {judged}.")
    return quality
