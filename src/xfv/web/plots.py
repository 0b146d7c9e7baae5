"""The confidence figure (the paper's Fig. 2), rendered server-side from the stored distances."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from xfv.confidence import Calibration

BINS = 100


def confidence_figure(distances: np.ndarray, labels: np.ndarray, calibration: Calibration | None, title: str) -> bytes:
    """Histograms of genuine and imposter distances, the bin-wise genuine ratio, the fitted curve ``c(d)``
    and the C-Score, with the threshold; PNG bytes."""
    distances, labels = np.asarray(distances, dtype=float), np.asarray(labels)
    edges = np.linspace(0.0, min(2.0, float(distances.max()) * 1.1 + 1e-6), BINS + 1)
    genuine, _ = np.histogram(distances[labels == 1], edges)
    imposter, _ = np.histogram(distances[labels == 0], edges)
    centres = (edges[:-1] + edges[1:]) / 2
    figure = Figure(figsize=(7.5, 3.6), dpi=110)
    counts = figure.subplots()
    counts.bar(centres, genuine, width=edges[1] - edges[0], color="#2e7d32", alpha=0.55, label="genuine pairs")
    counts.bar(centres, imposter, width=edges[1] - edges[0], color="#c62828", alpha=0.55, label="imposter pairs")
    counts.set_xlabel("cosine distance d")
    counts.set_ylabel("pairs")
    ratio_axis = counts.twinx()
    filled = genuine + imposter > 0
    ratio_axis.plot(centres[filled], genuine[filled] / (genuine + imposter)[filled], ".", color="#555",
                    markersize=3, label="bin-wise ratio r")
    if calibration is not None:
        grid = np.linspace(edges[0], edges[-1], 400)
        ratio_axis.plot(grid, np.asarray(calibration.cscore.curve(grid)), color="#1565c0", label="fitted c(d)")
        ratio_axis.plot(grid, np.asarray(calibration.confidence(grid)), color="#f9a825", label="C-Score")
        ratio_axis.axvline(calibration.threshold, color="black", linestyle="--", linewidth=1,
                           label=f"threshold t = {calibration.threshold:.3f}")
    ratio_axis.set_ylim(-0.02, 1.02)
    ratio_axis.set_ylabel("ratio / confidence")
    handles = counts.get_legend_handles_labels()[0] + ratio_axis.get_legend_handles_labels()[0]
    counts.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="center right")
    counts.set_title(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
