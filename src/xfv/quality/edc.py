"""The error-versus-discard curve (EDC), the standard test of a face image quality score (ISO/IEC 29794-1 style).

Fix the decision threshold ``t`` at a false-match rate on *all* pairs (the largest distance at which at most
``fmr`` of the imposter pairs are accepted), order the pairs by their pair quality (the lower of the two image
qualities), discard the lowest fraction by fraction, and measure the false non-match rate (genuine pairs with
``d > t``) of what remains, ``t`` unchanged. A quality score that knows what makes the model fail lowers the
FNMR fastest; a random order leaves it where it was. The summary is the area under the curve up to a discard
fraction (``max_discard``, 0.3 by default), divided by that fraction: the mean FNMR over the discard range.

Ties in pair quality are discarded in pair order (a stable sort), never by distance, so a constant score is a
random order, not an oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xfv.verification import check_scores


@dataclass(frozen=True)
class ErrorVersusDiscard:
    """``fractions`` discarded, the FNMR of the remaining pairs at each, the fixed ``threshold`` and its FMR."""

    fractions: np.ndarray
    fnmr: np.ndarray
    threshold: float
    fmr: float

    def area(self, max_discard: float = 0.3) -> float:
        """Mean FNMR over discard fractions 0 to ``max_discard`` (area under the EDC divided by the range)."""
        if not 0 < max_discard <= float(self.fractions[-1]) + 1e-12:
            raise ValueError(f"max_discard must lie in (0, {float(self.fractions[-1])}], got {max_discard!r}.")
        keep = self.fractions <= max_discard + 1e-12
        return float(np.trapezoid(self.fnmr[keep], self.fractions[keep]) / self.fractions[keep][-1])


def fmr_threshold(distances: np.ndarray, labels: np.ndarray, fmr: float) -> tuple[float, float]:
    """The largest threshold accepting at most a share ``fmr`` of the imposter pairs, and the FMR it gives."""
    if not 0 <= fmr < 1:
        raise ValueError(f"fmr must lie in [0, 1), got {fmr!r}.")
    impostors = np.sort(np.asarray(distances, dtype=np.float64)[np.asarray(labels) == 0])
    if impostors.size == 0:
        raise ValueError("The EDC needs imposter pairs to fix the threshold at a false-match rate.")
    accepted = int(np.floor(fmr * impostors.size))  # imposters allowed at d <= t
    threshold = float(np.nextafter(impostors[accepted], -np.inf))  # just below the first one not allowed
    return threshold, float(np.mean(impostors <= threshold))


def pair_quality(quality1: np.ndarray, quality2: np.ndarray) -> np.ndarray:
    """The quality of a pair: the lower of its two image qualities (ISO/IEC 29794-1)."""
    return np.minimum(np.asarray(quality1, dtype=np.float64), np.asarray(quality2, dtype=np.float64))


def error_versus_discard(distances: np.ndarray, labels: np.ndarray, quality: np.ndarray, *, fmr: float = 1e-3,
                         max_fraction: float = 0.5, steps: int = 100) -> ErrorVersusDiscard:
    """The EDC of pair qualities ``quality`` (higher is better): FNMR at the fixed threshold after discarding the
    lowest-quality ``fractions`` of all pairs (``steps + 1`` fractions from 0 to ``max_fraction``)."""
    check_scores(distances, labels)
    d = np.asarray(distances, dtype=np.float64)
    y = np.asarray(labels)
    q = np.asarray(quality, dtype=np.float64)
    if q.shape != d.shape:
        raise ValueError(f"quality must have one value per pair, got shapes {q.shape} and {d.shape}.")
    if not np.all(np.isfinite(q)):
        raise ValueError("quality contains NaN or infinite values.")
    if not 0 < max_fraction < 1:
        raise ValueError(f"max_fraction must lie in (0, 1), got {max_fraction!r}.")
    if not np.any(y == 1):
        raise ValueError("The EDC needs genuine pairs (its error is the false non-match rate).")
    threshold, achieved = fmr_threshold(d, y, fmr)
    order = np.argsort(q, kind="stable")  # lowest quality first
    miss = ((y == 1) & (d > threshold))[order]
    genuine = (y == 1)[order]
    fractions = np.linspace(0.0, max_fraction, steps + 1)
    fnmr = np.empty_like(fractions)
    # suffix sums: the pairs that remain after discarding the first n
    misses_left = np.concatenate([np.cumsum(miss[::-1])[::-1], [0]])
    genuine_left = np.concatenate([np.cumsum(genuine[::-1])[::-1], [0]])
    for i, fraction in enumerate(fractions):
        n = round(fraction * len(d))
        fnmr[i] = misses_left[n] / genuine_left[n] if genuine_left[n] else 0.0
    return ErrorVersusDiscard(fractions, fnmr, threshold, achieved)
