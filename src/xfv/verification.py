"""Verification: cosine distance (Eq. 1), threshold choice and the 10-fold protocol (method.md §0)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Eq. 1: ``d = 1 - a.b / (|a| |b|)`` row by row, in [0, 2]. ``a`` and ``b``: ``(D,)`` or ``(N, D)``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"Embeddings must have the same shape, got {a.shape} and {b.shape}.")
    if a.ndim not in (1, 2):
        raise ValueError(f"Embeddings must be (D,) or (N, D), got shape {a.shape}.")
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    if np.any(norms == 0):
        raise ValueError("Cannot take the cosine distance of a zero embedding.")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("Embeddings contain NaN or infinite values.")
    return np.clip(1.0 - np.sum(a * b, axis=-1) / norms, 0.0, 2.0)


def check_scores(distances: np.ndarray, labels: np.ndarray, folds: np.ndarray | None = None) -> None:
    """Validate distances (finite), labels (0/1) and folds (integers), all of one length."""
    distances = np.asarray(distances)
    labels = np.asarray(labels)
    if distances.ndim != 1 or labels.shape != distances.shape:
        raise ValueError(
            f"distances and labels must be 1-d of equal length, got shapes {distances.shape} and {labels.shape}."
        )
    if distances.size == 0:
        raise ValueError("No pairs given: distances is empty.")
    if not np.all(np.isfinite(distances)):
        bad = np.flatnonzero(~np.isfinite(distances))[:5].tolist()
        raise ValueError(f"distances contain NaN or infinite values (first at indices {bad}).")
    unexpected = set(np.unique(labels).tolist()) - {0, 1}
    if unexpected:
        raise ValueError(f"labels must be 1 (genuine) or 0 (imposter), got {sorted(unexpected)}.")
    if folds is not None and np.asarray(folds).shape != distances.shape:
        raise ValueError(f"folds must have the same length as distances, got {np.asarray(folds).shape}.")


def best_threshold(distances: np.ndarray, labels: np.ndarray) -> float:
    """The threshold ``t`` that maximises accuracy of ``d <= t -> genuine`` on the given pairs.

    Every cut between two consecutive distinct distances is tried (exact, not a grid); the threshold is
    the midpoint of the cut. On ties the smallest such threshold wins.
    """
    check_scores(distances, labels)
    d = np.asarray(distances, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    order = np.argsort(d, kind="stable")
    d, y = d[order], y[order]
    genuine_at_or_below = np.concatenate([[0], np.cumsum(y)])
    imposter_at_or_below = np.concatenate([[0], np.cumsum(1 - y)])
    correct = genuine_at_or_below + (imposter_at_or_below[-1] - imposter_at_or_below)
    # A cut after position i (i = 0 means "below every distance") is only valid between distinct values.
    valid = np.ones(len(d) + 1, dtype=bool)
    valid[1:-1] = d[1:] > d[:-1]
    correct = np.where(valid, correct, -1)
    cut = int(np.argmax(correct))
    if cut == 0:
        return float(d[0] - 1e-6)
    if cut == len(d):
        return float(d[-1])
    return float((d[cut - 1] + d[cut]) / 2.0)


def accuracy(distances: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """Share of pairs where ``d <= threshold`` agrees with ``label == 1``."""
    predictions = np.asarray(distances) <= threshold
    return float(np.mean(predictions == (np.asarray(labels) == 1)))


@dataclass(frozen=True)
class FoldResult:
    fold: int
    threshold: float
    accuracy: float


@dataclass(frozen=True)
class VerificationReport:
    """The k-fold protocol's outcome; ``thresholds`` holds each pair's (out-of-fold) threshold."""

    folds: list[FoldResult]
    thresholds: np.ndarray
    predictions: np.ndarray  # bool, True = genuine ("same")
    correct: np.ndarray  # bool

    @property
    def accuracy_mean(self) -> float:
        return float(np.mean([f.accuracy for f in self.folds]))

    @property
    def accuracy_std(self) -> float:
        """Population standard deviation over folds (ddof=0, as insightface and the LFW literature report it)."""
        return float(np.std([f.accuracy for f in self.folds]))


def kfold_verification(distances: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> VerificationReport:
    """The LFW protocol: for each fold k, ``t_k`` maximises accuracy on the other folds; accuracy on fold k."""
    check_scores(distances, labels, folds)
    distances = np.asarray(distances, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    folds = np.asarray(folds)
    fold_ids = np.unique(folds)
    if len(fold_ids) < 2:
        raise ValueError(f"The k-fold protocol needs at least 2 folds, got {fold_ids.tolist()}.")
    thresholds = np.empty_like(distances)
    results = []
    for k in fold_ids:
        held_out = folds == k
        t = best_threshold(distances[~held_out], labels[~held_out])
        thresholds[held_out] = t
        results.append(FoldResult(int(k), t, accuracy(distances[held_out], labels[held_out], t)))
    predictions = distances <= thresholds
    return VerificationReport(results, thresholds, predictions, predictions == (labels == 1))
