"""Small references written apart from the code under test (imported by tests that check stored results).

They follow method.md directly, so that a test compares the package with a second, independent reading.
"""

from __future__ import annotations

import numpy as np


def eq3_reference(d: np.ndarray, t: float, p: dict[str, float]) -> np.ndarray:
    """Eq. 2 clipped to [0, 1], flipped right of t (Eq. 3), clipped to [0.5, 1]."""
    d = np.asarray(d, dtype=np.float64)
    with np.errstate(over="ignore"):
        c = np.clip(p["L"] / (1 + np.exp(-p["k"] * (d - p["d0"]))) + p["b"], 0, 1)
    return np.clip(np.where(d <= t, c, 1 - c), 0.5, 1)


def threshold_reference(d: np.ndarray, y: np.ndarray) -> float:
    """Brute force: the smallest midpoint between consecutive distinct distances with the best accuracy."""
    values = np.unique(d)
    cuts = (values[:-1] + values[1:]) / 2
    accuracies = [np.mean((d <= cut) == (y == 1)) for cut in cuts]
    return float(cuts[int(np.argmax(accuracies))])
