"""Figures of X-Maps: one pair's overview (Fig. 4), cut-and-paste (Section 4.3), sensitivity (Fig. 6) and the
faithfulness benchmark's mean deletion and insertion curves."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from xfv.xmaps.experiments import CutPasteResult
from xfv.xmaps.explainer import Explanation

METHOD_TITLES = {
    1: "method 1 (Eq. 6)",
    2: "method 2 (Eq. 7)",
    3: "method 3 (Eq. 8)",
    4: "method 4 (coalitions)",
}


def _show(axis, image: np.ndarray, title: str) -> None:
    axis.imshow(image)
    axis.set_title(title, fontsize=8)
    axis.set_xticks([])
    axis.set_yticks([])


def overview_figure(explanation: Explanation, colormap: str = "red-green") -> Figure:
    """Rows: image 1, image 2; columns: the face, then the blended X-Map of each method."""
    methods = sorted(explanation.maps)
    figure = Figure(figsize=(1.7 * (1 + len(methods)), 3.8), layout="constrained")
    axes = figure.subplots(2, 1 + len(methods), squeeze=False)
    for row, face in enumerate((explanation.face1, explanation.face2)):
        _show(axes[row, 0], face, f"image {row + 1}")
        for column, method in enumerate(methods, start=1):
            _show(axes[row, column], explanation.blend(method, row + 1, colormap), METHOD_TITLES[method])
    figure.suptitle(
        f"X-Maps, cosine distance {explanation.distance:.3f} (green: similar, red: dissimilar)", fontsize=9
    )
    return figure


def _outline(face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The face with the region's border drawn in blue."""
    border = mask & ~(np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(mask, -1, 1))
    out = face.copy()
    out[border] = (0, 90, 255)
    return out


def cut_paste_figure(result: CutPasteResult, colormap: str = "red-green") -> Figure:
    """Example composites (region outlined) with their maps, and the mean pixel AUC per method and region."""
    examples = result.examples
    methods = sorted({r.method for r in result.records})
    columns = 2 + len(methods)
    figure = Figure(figsize=(1.6 * columns + 3.6, 1.6 * max(len(examples), 2) + 0.4), layout="constrained")
    grid = figure.add_gridspec(max(len(examples), 1), columns + 2)
    for row, example in enumerate(examples):
        e = example.explanation
        _show(
            figure.add_subplot(grid[row, 0]),
            _outline(e.face1, example.mask),
            f"pair {example.pair}: {example.region}",
        )
        _show(figure.add_subplot(grid[row, 1]), e.face2, "image 2 (source)")
        for column, method in enumerate(methods, start=2):
            _show(figure.add_subplot(grid[row, column]), e.blend(method, 1, colormap), METHOD_TITLES[method])
    axis = figure.add_subplot(grid[:, columns:])
    regions = sorted({r.region for r in result.records})
    width = 0.8 / len(methods)
    for k, method in enumerate(methods):
        means = [
            np.mean([r.auc for r in result.records if r.method == method and r.region == g]) for g in regions
        ]
        axis.bar(np.arange(len(regions)) + k * width, means, width, label=f"method {method}")
    axis.axhline(0.5, color="gray", linewidth=0.8, linestyle="--")
    axis.set_xticks(np.arange(len(regions)) + width * (len(methods) - 1) / 2, regions)
    axis.set_ylim(0, 1)
    axis.set_ylabel("mean pixel ROC-AUC (pasted region = positive)")
    axis.legend(fontsize=8)
    figure.suptitle(f"Cut-and-paste on {result.summary()['pairs']} imposter pairs", fontsize=9)
    return figure


def sensitivity_figure(
    results: dict[str, dict[str, Explanation]], method: int = 3, colormap: str = "red-green"
) -> Figure:
    """Fig. 6: one row per varied parameter, the pair's X-Map (image 1) for each setting."""
    rows, columns = len(results), max(len(v) for v in results.values())
    figure = Figure(figsize=(1.7 * columns + 0.3, 1.8 * rows + 0.3), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for row, (group, variants) in enumerate(results.items()):
        for column in range(columns):
            axes[row, column].axis("off")
        for column, (name, explanation) in enumerate(variants.items()):
            axes[row, column].axis("on")
            _show(axes[row, column], explanation.blend(method, 1, colormap), f"{group}: {name}")
    figure.suptitle(f"Sensitivity of the method {method} X-Map to the occlusion (Fig. 6)", fontsize=9)
    return figure


def faithfulness_figure(summary: dict) -> Figure:
    """Mean decision-score curves per order: rows genuine / imposter, columns deletion / insertion."""
    classes = summary["classes"]
    figure = Figure(figsize=(10, 3.6 * len(classes)), layout="constrained")
    axes = figure.subplots(len(classes), 2, squeeze=False)
    for row, (label, entry) in enumerate(classes.items()):
        for column, mode in enumerate(("deletion", "insertion")):
            axis = axes[row, column]
            for name, order in entry["orders"].items():
                curve = np.asarray(order[f"{mode}_curve"])
                style = "-" if name.startswith("method") else "--"
                axis.plot(np.linspace(0, 1, len(curve)), curve, style, label=name, linewidth=1.2)
            axis.axvline(summary["start_fraction"], color="grey", linewidth=0.6)
            score = "similarity" if label == "genuine" else "distance"
            axis.set_title(f"{label} pairs ({entry['pairs']}): {mode}", fontsize=9)
            axis.set_xlabel(
                f"fraction of {summary['block']} px blocks {'removed' if mode == 'deletion' else 'restored'}"
            )
            axis.set_ylabel(f"cosine {score}")
            axis.legend(fontsize=7)
    return figure
