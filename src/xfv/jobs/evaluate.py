"""Evaluation from distances alone: the 10-fold protocol (method.md §0) with out-of-fold C-Score confidences
(method.md §1), their calibration (ECE, Brier) against the baselines, and the figures.

Fold-wise: for fold k the threshold ``t_k`` comes from :func:`kfold_verification` (the other folds), and the
C-Score curve and each baseline are fitted on the other folds at ``t_k``, then applied to fold k. With a fixed
:class:`Calibration`, its threshold and curve decide and score every pair instead; the baselines are still
fitted fold-wise at that threshold, so the figures compare like with like.

The C-Score variants beyond the paper (docs/quality.md) are compared the same way: the continuous curve always,
the quality-aware curve where both images' qualities are given. With a fixed calibration, the ``confidence``
column is the calibration's default variant (quality-aware where it has one and qualities are given). Given
``bands`` (a label per pair: "both clean", "one degraded", ... from a degraded copy, or quality bands), every
method's calibration is also reported per band.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xfv.confidence import ECE_BINS, Calibration, CScore, brier_score, expected_calibration_error
from xfv.confidence.baselines import BASELINES
from xfv.confidence.calibration_file import CONTINUOUS, PAPER, QUALITY_AWARE
from xfv.confidence.cscore import DISTANCE_RANGE, RANGE_TOLERANCE, check_pairs
from xfv.confidence.quality_aware import QualityAwareCScore
from xfv.datasets.pairs import check_fold, read_text_lines
from xfv.errors import XfvError
from xfv.verification import FoldResult, accuracy, kfold_verification

CSCORE = "C-Score"
VARIANT_METHODS = {CONTINUOUS: "C-Score (continuous)", QUALITY_AWARE: "C-Score (quality-aware)"}
SCORE_COLUMNS = ("distance", "label", "fold")
QUALITY_COLUMNS = ("quality1", "quality2")


@dataclass
class Evaluation:
    """``summary`` is JSON-ready; ``columns`` holds one array per ``pairs.csv`` column, one entry per pair;
    ``confidences`` the out-of-fold confidence of every method; ``fits`` per fold the C-Score and the mask of
    the pairs its figure shows (the training folds, or the fold itself for a fixed calibration)."""

    summary: dict
    columns: dict[str, np.ndarray]
    confidences: dict[str, np.ndarray]
    fits: dict[int, tuple[CScore, np.ndarray]]

    def write_csv(self, path: Path, extra_columns: dict[str, list] | None = None) -> Path:
        """``pairs.csv``; ``extra_columns`` (e.g. image1, image2) go right after ``fold,label``."""
        columns = dict(self.columns)
        if extra_columns:
            ordered = {k: columns.pop(k) for k in ("fold", "label")}
            ordered.update(extra_columns)
            ordered.update(columns)
            columns = ordered
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(list(columns))
            for row in zip(*columns.values()):
                writer.writerow([_format(v) for v in row])
        return path

    def save_figures(self, out_dir: Path) -> list[Path]:
        """Fig. 2 per fold (``cscore_fold<k>.png``) and the reliability diagram (``reliability.png``)."""
        from xfv.confidence.plots import plot_cscore_fit, plot_reliability

        out_dir = Path(out_dir)
        distances, labels = self.columns["distance"], self.columns["label"]
        paths = []
        for fold, (cscore, shown) in self.fits.items():
            path = out_dir / f"cscore_fold{fold}.png"
            paths.append(plot_cscore_fit(distances[shown], labels[shown], cscore, path, title=f"fold {fold}"))
        name = " / ".join(str(self.summary[k]) for k in ("model", "dataset") if self.summary.get(k))
        paths.append(plot_reliability(self.columns["correct"], self.confidences, out_dir / "reliability.png",
                                      title=f"Reliability, out of fold {name}".strip()))
        return paths


def _format(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6f}"
    return str(value)


def evaluate_scores(
    distances: np.ndarray,
    labels: np.ndarray,
    folds: np.ndarray,
    *,
    dataset: str | None = None,
    model: str | None = None,
    calibration: Calibration | None = None,
    quality1: np.ndarray | None = None,
    quality2: np.ndarray | None = None,
    bands: np.ndarray | None = None,
    **cscore_options,
) -> Evaluation:
    """The 10-fold protocol with out-of-fold C-Score and baseline confidences (or a fixed ``calibration``); with
    ``quality1`` and ``quality2`` the quality-aware C-Score too; with ``bands`` every method per band."""
    d, y = check_pairs(distances, labels, folds)
    folds = np.asarray(folds)
    qualities = None if quality1 is None or quality2 is None else (np.asarray(quality1, float),
                                                                    np.asarray(quality2, float))
    if qualities is not None and not (qualities[0].shape == qualities[1].shape and len(qualities[0]) == len(d)):
        raise ValueError(f"quality1 and quality2 need one row per pair ({len(d)}), got shapes "
                         f"{qualities[0].shape} and {qualities[1].shape}.")
    if bands is not None and np.asarray(bands).shape != d.shape:
        raise ValueError(f"bands need one label per pair ({len(d)}), got shape {np.asarray(bands).shape}.")
    fold_ids = np.unique(folds)
    if len(fold_ids) < 2:
        raise ValueError(f"Fold-wise evaluation needs at least 2 folds, got {fold_ids.tolist()}.")
    if calibration is None:
        report = kfold_verification(d, y, folds)
        fold_results, thresholds = report.folds, report.thresholds
    else:
        if cscore_options:
            raise ValueError(f"C-Score options {sorted(cscore_options)} do not apply with a fixed calibration.")
        thresholds = np.full_like(d, calibration.threshold)
        fold_results = [FoldResult(int(k), calibration.threshold,
                                   accuracy(d[folds == k], y[folds == k], calibration.threshold)) for k in fold_ids]
    predictions = d <= thresholds
    correct = predictions == (y == 1)

    methods = [CSCORE, *BASELINES, VARIANT_METHODS[CONTINUOUS]]
    if qualities is not None:
        methods.append(VARIANT_METHODS[QUALITY_AWARE])
    confidences = {name: np.empty_like(d) for name in methods}
    if calibration is not None and VARIANT_METHODS[CONTINUOUS] in confidences and calibration.continuous is None:
        del confidences[VARIANT_METHODS[CONTINUOUS]]
    if calibration is not None and qualities is not None and calibration.quality_aware is None:
        del confidences[VARIANT_METHODS[QUALITY_AWARE]]
    fits: dict[int, tuple[CScore, np.ndarray]] = {}
    for result in fold_results:
        held_out = folds == result.fold
        train = ~held_out
        genuine = int(y[train].sum())
        if genuine in (0, int(train.sum())):
            kind = "genuine" if genuine else "imposter"
            raise XfvError(f"Fold {result.fold}: its confidences are fitted on the other folds, whose "
                           f"{int(train.sum())} pairs are all {kind}; every fold's complement needs genuine and "
                           "imposter pairs (spread both labels over the folds, or give more pairs).")
        try:
            fits[result.fold] = _fit_fold(d, y, train, held_out, result.threshold, calibration, cscore_options,
                                          confidences, qualities)
        except ValueError as error:
            raise XfvError(f"Fold {result.fold}: the confidences are fitted on the other folds' {int(train.sum())} "
                           f"pairs ({genuine} genuine, {int(train.sum()) - genuine} imposter), and the fit failed: "
                           f"{error}") from error

    accuracies = [f.accuracy for f in fold_results]
    summary = {
        "dataset": dataset,
        "model": model,
        "pairs": len(d),
        "accuracy_mean": float(np.mean(accuracies)),
        "accuracy_std": float(np.std(accuracies)),
        "folds": [{"fold": f.fold, "threshold": f.threshold, "accuracy": f.accuracy,
                   "cscore": fits[f.fold][0].parameters} for f in fold_results],
        "ece": expected_calibration_error(correct, confidences[CSCORE]),
        "brier": brier_score(correct, confidences[CSCORE]),
        "baselines": {name: {"ece": expected_calibration_error(correct, confidences[name]),
                             "brier": brier_score(correct, confidences[name])} for name in BASELINES},
        "variants": {name: {"ece": expected_calibration_error(correct, confidences[name]),
                            "brier": brier_score(correct, confidences[name])}
                     for name in VARIANT_METHODS.values() if name in confidences},
        "ece_bins": ECE_BINS,
    }
    if bands is not None:
        summary["bands"] = band_metrics(np.asarray(bands), correct, confidences)
    if calibration is None:
        summary["cscore_options"] = CScore(**cscore_options).get_params()
    else:
        summary["calibration"] = {"model": calibration.model, "dataset": calibration.dataset,
                                  "threshold": calibration.threshold, "date": calibration.date,
                                  "variants": list(calibration.variants)}
        chosen = calibration.score(d, *(qualities or (None, None)))
        summary["cscore"] = chosen.variant
        if chosen.variant != PAPER:  # the calibration's default variant scores the pairs, as verify does
            confidences[f"{CSCORE} (paper)"] = confidences[CSCORE]
            confidences[CSCORE] = chosen.confidence
            summary["paper"] = {"ece": summary["ece"], "brier": summary["brier"]}
            summary["ece"] = expected_calibration_error(correct, chosen.confidence)
            summary["brier"] = brier_score(correct, chosen.confidence)
            if bands is not None:
                summary["bands"] = band_metrics(np.asarray(bands), correct, confidences)
    columns = {
        "fold": folds,
        "label": y,
        "distance": d,
        "threshold": thresholds,
        "prediction": np.where(predictions, "same", "different"),
        "correct": correct,
        "confidence": confidences[CSCORE],
    }
    if qualities is not None:  # the first measure (the stability, where there are several)
        columns["quality1"], columns["quality2"] = (q if q.ndim == 1 else q[:, 0] for q in qualities)
    if bands is not None:
        columns["band"] = np.asarray(bands)
    return Evaluation(summary, columns, confidences, fits)


def band_metrics(bands: np.ndarray, correct: np.ndarray, confidences: dict[str, np.ndarray]) -> dict:
    """Per band: pairs, accuracy, and each method's mean confidence, ECE and Brier."""
    out = {}
    for band in dict.fromkeys(bands.tolist()):
        mask = bands == band
        out[str(band)] = {"pairs": int(mask.sum()), "accuracy": float(correct[mask].mean()),
                          "methods": {name: {"mean": float(c[mask].mean()),
                                             "ece": expected_calibration_error(correct[mask], c[mask]),
                                             "brier": brier_score(correct[mask], c[mask])}
                                      for name, c in confidences.items()}}
    return out


def _fit_fold(
    d: np.ndarray, y: np.ndarray, train: np.ndarray, held_out: np.ndarray, t: float,
    calibration: Calibration | None, cscore_options: dict, confidences: dict[str, np.ndarray],
    qualities: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[CScore, np.ndarray]:
    """Fit the C-Score (unless ``calibration`` is fixed), its variants and the baselines on ``train`` at ``t``; fill
    the held-out fold's ``confidences``; return the C-Score and the mask of the pairs its figure shows."""
    if calibration is None:
        cscore, shown = CScore(**cscore_options).fit(d[train], y[train], t), train
    else:
        cscore, shown = calibration.cscore, held_out
    confidences[CSCORE][held_out] = cscore.confidence(d[held_out])
    continuous_name, aware_name = VARIANT_METHODS[CONTINUOUS], VARIANT_METHODS[QUALITY_AWARE]
    if continuous_name in confidences:
        continuous = (CScore(**{**cscore_options, "continuous": True}).fit(d[train], y[train], t)
                      if calibration is None else calibration.continuous)
        confidences[continuous_name][held_out] = continuous.confidence(d[held_out])
    if aware_name in confidences:
        q1, q2 = qualities
        aware = (QualityAwareCScore().fit(d[train], y[train], q1[train], q2[train], t)
                 if calibration is None else calibration.quality_aware)
        confidences[aware_name][held_out] = aware.confidence(d[held_out], q1[held_out], q2[held_out])
    train_correct = (d[train] <= t) == (y[train] == 1)
    for name, baseline in BASELINES.items():
        confidences[name][held_out] = baseline().fit(d[train], train_correct, t).confidence(d[held_out])
    return cscore, shown


QUALITY_BANDS = ("low quality", "medium quality", "high quality")


def quality_bands(quality1: np.ndarray, quality2: np.ndarray) -> np.ndarray:
    """Per pair its quality band (:data:`QUALITY_BANDS`): the tertile of its pair quality (the lower image quality;
    of the first measure where there are several) among these pairs."""
    q1, q2 = (np.asarray(q, float) for q in (quality1, quality2))
    low = np.minimum(q1 if q1.ndim == 1 else q1[:, 0], q2 if q2.ndim == 1 else q2[:, 0])
    edges = np.quantile(low, [1 / 3, 2 / 3])
    return np.array(QUALITY_BANDS)[np.searchsorted(edges, low, side="right")]


def read_scores_csv(path: Path, qualities: bool = False):
    """Read the ``distance,label,fold`` columns (header required, other columns ignored); with ``qualities``
    also ``quality1,quality2`` where the file has both (returned as a pair, else None) as a fourth value.

    UTF-8 (a byte-order mark and spaces around the header's names are fine); each value is checked: a cosine
    distance in [0, 2] (Eq. 1), a label 1 (genuine) or 0 (imposter), a fold from 0 to 9, a finite quality. Every
    error names the file and its 1-based line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Scores file {str(path)!r} not found.")
    reader = csv.reader(read_text_lines(path))
    names = [name.strip().lower() for name in next(reader, [])]
    missing = [name for name in SCORE_COLUMNS if name not in names]
    if missing:
        raise XfvError(f"{path}:1: missing column(s) {missing}; expected a header with distance,label,fold.")
    columns = [names.index(name) for name in SCORE_COLUMNS]
    rated = qualities and all(name in names for name in QUALITY_COLUMNS)
    quality_columns = [names.index(name) for name in QUALITY_COLUMNS] if rated else []
    distances, labels, folds, rates = [], [], [], []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        line = reader.line_num
        if len(row) <= max(columns):
            raise XfvError(f"{path}:{line}: {len(row)} column(s), but the header has {len(names)}.")
        distance, label, fold = (row[i].strip() for i in columns)
        try:
            value = float(distance)
        except ValueError:
            value = float("nan")
        low, high = DISTANCE_RANGE
        if not low - RANGE_TOLERANCE <= value <= high + RANGE_TOLERANCE:
            raise XfvError(f"{path}:{line}: distance must be a cosine distance in [0, 2] (Eq. 1), got {distance!r}.")
        if label not in ("0", "1"):
            raise XfvError(f"{path}:{line}: label must be 1 (genuine) or 0 (imposter), got {label!r}.")
        distances.append(value)
        labels.append(int(label))
        folds.append(check_fold(fold, path, line))
        if rated:
            rates.append([_quality(row[i].strip() if i < len(row) else "", path, line) for i in quality_columns])
    if not distances:
        raise XfvError(f"{path}:2: no pairs below the header.")
    result = np.array(distances), np.array(labels), np.array(folds)
    if not qualities:
        return result
    return (*result, (np.array(rates)[:, 0], np.array(rates)[:, 1]) if rated else None)


def _quality(text: str, path: Path, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value):
        raise XfvError(f"{path}:{line}: quality1 and quality2 must be finite numbers, got {text!r}.")
    return value
