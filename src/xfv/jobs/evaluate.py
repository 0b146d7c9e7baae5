"""Evaluation from distances alone: the 10-fold protocol (method.md §0) for any face system."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xfv.verification import kfold_verification


@dataclass
class Evaluation:
    """``summary`` is JSON-ready; ``columns`` holds one array per ``pairs.csv`` column, one entry per pair."""

    summary: dict
    columns: dict[str, np.ndarray]

    def write_csv(self, path: Path, extra_columns: dict[str, list] | None = None) -> None:
        columns = dict(self.columns)
        if extra_columns:
            # keep the documented column order: fold,label,image1,image2,distance,...
            ordered = {k: columns.pop(k) for k in ("fold", "label")}
            ordered.update(extra_columns)
            ordered.update(columns)
            columns = ordered
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(list(columns))
            for row in zip(*columns.values()):
                writer.writerow([_format(v) for v in row])


def _format(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6f}"
    return str(value)


def evaluate_scores(distances: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> Evaluation:
    """Fold-wise thresholds and accuracies for precomputed distances."""
    report = kfold_verification(distances, labels, folds)
    summary = {
        "pairs": int(len(distances)),
        "accuracy_mean": report.accuracy_mean,
        "accuracy_std": report.accuracy_std,
        "folds": [{"fold": f.fold, "threshold": f.threshold, "accuracy": f.accuracy} for f in report.folds],
    }
    columns = {
        "fold": np.asarray(folds),
        "label": np.asarray(labels),
        "distance": np.asarray(distances, dtype=np.float64),
        "threshold": report.thresholds,
        "prediction": np.where(report.predictions, "same", "different"),
        "correct": report.correct,
    }
    return Evaluation(summary, columns)


def read_scores_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read ``distance,label,fold`` columns (header required, other columns ignored)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Scores file {str(path)!r} not found.")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"distance", "label", "fold"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected a header with distance,label,fold.")
        distances, labels, folds = [], [], []
        for lineno, row in enumerate(reader, start=2):
            try:
                distances.append(float(row["distance"]))
                labels.append(int(row["label"]))
                folds.append(int(row["fold"]))
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{lineno}: expected a number distance, integer label and fold, got {row}.") from None
    return np.array(distances), np.array(labels), np.array(folds)
