"""Figures: the paper's Fig. 2 (histograms, bin-wise ratio, fitted curve, threshold) and a reliability
diagram. Drawn on bare :class:`matplotlib.figure.Figure` objects (Agg canvas, no pyplot state)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
from matplotlib.figure import Figure

from xfv.confidence.cscore import CScore, bin_ratios, histograms
from xfv.confidence.metrics import ECE_BINS, calibration_curve


def plot_cscore_fit(distances: np.ndarray, labels: np.ndarray, cscore: CScore, path: str | Path | BinaryIO, *,
                    title: str = "") -> Path | BinaryIO:
    """Fig. 2: genuine and imposter histograms, the bin-wise genuine ratio, the curve c(d) (Eq. 2) and t."""
    genuine, imposter, edges = histograms(distances, labels, n_bins=cscore.n_bins, density=cscore.density)
    centres, ratios = bin_ratios(distances, labels, n_bins=cscore.n_bins, density=cscore.density,
                                 fill_empty=cscore.fill_empty, threshold=cscore.threshold_)
    figure = Figure(figsize=(7, 4.2))
    figure.subplots_adjust(left=0.09, right=0.9, bottom=0.12, top=0.92)
    counts_axis = figure.add_subplot()
    counts_axis.stairs(genuine, edges, fill=True, color="tab:green", alpha=0.5, label="genuine")
    counts_axis.stairs(imposter, edges, fill=True, color="tab:red", alpha=0.5, label="imposter")
    counts_axis.set_xlabel("cosine distance d")
    counts_axis.set_ylabel("share of class" if cscore.density else "pairs per bin")
    ratio_axis = counts_axis.twinx()
    ratio_axis.plot(centres, ratios, ".", color="0.3", markersize=3, label="genuine ratio r")
    grid = np.linspace(0.0, 2.0, 1001)
    ratio_axis.plot(grid, cscore.curve(grid), color="tab:blue", label="c(d), Eq. 2")
    ratio_axis.axvline(cscore.threshold_, color="black", linestyle="--", label=f"t = {cscore.threshold_:.4f}")
    ratio_axis.set_ylim(-0.02, 1.02)
    ratio_axis.set_ylabel("ratio / c(d)")
    low, high = _visible_range(distances)
    counts_axis.set_xlim(low, high)
    handles = counts_axis.get_legend_handles_labels()
    more = ratio_axis.get_legend_handles_labels()
    ratio_axis.legend(handles[0] + more[0], handles[1] + more[1], loc="center right", fontsize="small")
    p = cscore.parameters
    counts_axis.set_title(f"{title}  L={p['L']:.3f} d0={p['d0']:.4f} k={p['k']:.1f} b={p['b']:.3f}".strip(),
                          fontsize="medium")
    return _save(figure, path)


def plot_reliability(correct: np.ndarray, confidences: dict[str, np.ndarray], path: str | Path | BinaryIO, *,
                     n_bins: int = ECE_BINS, title: str = "") -> Path | BinaryIO:
    """Reliability diagram: share of correct decisions against mean confidence per bin, one line per method,
    above the number of pairs per bin (log scale) that says how much each point weighs in the ECE. The axis starts
    at 0.5, or at 0 where a confidence lies below 0.5 (the quality-aware C-Score's)."""
    figure = Figure(figsize=(5.5, 6.2))
    figure.subplots_adjust(left=0.13, right=0.96, bottom=0.08, top=0.94, hspace=0.08)
    axis, counts_axis = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    low = 0.0 if any(np.min(c) < 0.5 for c in confidences.values() if len(c)) else 0.5
    axis.plot([low, 1.0], [low, 1.0], color="0.6", linestyle=":", label="perfect calibration")
    edges = np.linspace(low, 1.0, round(n_bins * (1.0 - low) / 0.5) + 1)
    for name, confidence in confidences.items():
        accuracy, mean_confidence, _ = calibration_curve(correct, confidence, n_bins=n_bins)
        line, = axis.plot(mean_confidence, accuracy, marker="o", label=name)
        counts, _ = np.histogram(confidence, bins=edges)
        counts_axis.stairs(counts, edges, color=line.get_color())
    axis.set_xlim(low, 1.0)
    axis.set_ylim(0.0, 1.02)
    axis.set_ylabel("share correct")
    axis.set_title(title or f"Reliability ({len(edges) - 1} bins over [{low:g}, 1])", fontsize="medium")
    axis.legend(fontsize="small")
    counts_axis.set_yscale("log")
    counts_axis.set_ylabel("pairs")
    counts_axis.set_xlabel(f"mean confidence ({len(edges) - 1} bins over [{low:g}, 1])")
    return _save(figure, path)


def _visible_range(distances: np.ndarray) -> tuple[float, float]:
    d = np.asarray(distances, dtype=np.float64)
    margin = 0.05 * max(float(d.max() - d.min()), 0.1)
    return max(float(d.min()) - margin, 0.0), min(float(d.max()) + margin, 2.0)


def _save(figure: Figure, path: str | Path | BinaryIO) -> Path | BinaryIO:
    """PNG at 100 dpi into a file (its folder made) or a binary stream (the web app's responses)."""
    if isinstance(path, (str, Path)):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, format="png")
    return path
