"""Figures of X-Maps: one pair's overview (Fig. 4), cut-and-paste (Section 4.3), sensitivity (Fig. 6) and the
faithfulness benchmark's mean deletion and insertion curves."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from xfv.xmaps.experiments import RESPONSIVE, CutPasteResult
from xfv.xmaps.explainer import Explanation

BASELINE_ORDERS = ("random", "centre", "edge")
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


def _explainer_label(name: int | str) -> str:
    return f"method {name}" if isinstance(name, int) else name


def cut_paste_figure(result: CutPasteResult, colormap: str = "red-green") -> Figure:
    """Example composites (region outlined) with their maps of methods 1-4, and the mean pixel AUC per explainer
    and region: over the cases the model responded to (the paste lowered the distance by more than
    :data:`RESPONSIVE`, the headline), and over all cases."""
    examples = result.examples
    methods = sorted(examples[0].explanation.maps) if examples else []
    names = list(dict.fromkeys(r.method for r in result.records))
    columns = 2 + len(methods)
    figure = Figure(figsize=(1.6 * columns + 3.6 + 0.25 * len(names), 1.6 * max(len(examples), 2) + 0.4),
                    layout="constrained")
    grid = figure.add_gridspec(max(len(examples), 2), columns + 2)
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
    rows = max(len(examples), 2)
    regions = list(dict.fromkeys(r.region for r in result.records))
    width = 0.8 / len(names)
    panels = (("responsive", lambda r: r.distance_before - r.distance_after > RESPONSIVE,
               f"cases with effect > {RESPONSIVE}"), ("all", lambda r: True, "all cases"))
    for panel, (_, keep, title) in enumerate(panels):
        axis = figure.add_subplot(grid[panel * rows // 2 : (panel + 1) * rows // 2, columns:])
        for k, name in enumerate(names):
            means = []
            for g in regions:
                aucs = [r.auc for r in result.records if r.method == name and r.region == g and keep(r)]
                means.append(np.mean(aucs) if aucs else np.nan)
            axis.bar(np.arange(len(regions)) + k * width, means, width, label=_explainer_label(name))
        axis.axhline(0.5, color="gray", linewidth=0.8, linestyle="--")
        counts = [sum(1 for r in result.records if r.method == names[0] and r.region == g and keep(r))
                  for g in regions]
        axis.set_xticks(np.arange(len(regions)) + width * (len(names) - 1) / 2,
                        [f"{g} ({n})" for g, n in zip(regions, counts)])
        axis.set_ylim(0, 1)
        axis.set_title(title, fontsize=8)
        axis.set_ylabel("mean pixel ROC-AUC")
        if panel == 1:
            axis.legend(fontsize=6, ncol=2, loc="lower right")
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
                style = "-" if name.startswith("method") else "--" if name in BASELINE_ORDERS else ":"
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
