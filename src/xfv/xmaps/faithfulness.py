"""Faithfulness of explanation maps to the model (method.md §7): deletion and insertion curves, model-free baselines.

Protocol (arrays in, arrays out; the caller chooses the pairs):

- The 112 x 112 crop is cut into ``block x block`` pixel blocks (default 8: a 14 x 14 grid, 196 blocks). A map
  scores a block by its mean value.
- **Evidence order.** A map orders the blocks of *its own* face (the image-1 map orders face 1, the image-2 map
  face 2; the other face stays intact). For a genuine pair the evidence for the decision is similarity, so the
  most similar blocks (largest map values) come first; for an imposter pair it is dissimilarity, so the most
  dissimilar blocks (smallest values) come first.
- **Decision score** of a pair: the cosine similarity for genuine pairs, the cosine distance ``1 - similarity``
  for imposters (Eq. 1). Removing evidence must lower it, restoring evidence must raise it.
- **Deletion**: ``steps`` equal steps from the intact face to a face entirely of ``fill`` (default black), the
  first ``round(k * blocks / steps)`` blocks of the order replaced by the fill at step ``k``. **Insertion**: the
  same steps from the all-fill face, the first blocks of the order restored. Every step of every order and both
  faces of a pair go through the model in batched calls; steps 0 and ``steps`` are shared by all orders.
- **AUC**: the trapezoid area under the score over the deleted (inserted) fraction, divided by the fraction's
  range, so it is the mean score: over the whole curve ``[0, 1]`` and over its start ``[0, 0.2]``. Lower is
  better for deletion, higher for insertion. A map *beats* an order when its AUC is better, per pair, with
  both faces' AUCs averaged.
- **Baselines** that know nothing of the model: random orders (seeded), a centre prior (blocks nearest the crop
  centre first) and an edge prior (blocks with the largest mean Sobel gradient magnitude of the face first).
  They order the blocks the same way for genuine and imposter pairs.
- **Explainers** measured beside methods 1-4: method 4 fitted on the first masks of its design (a smaller
  budget, :func:`budget_name`) and the peers' explainers (:mod:`xfv.xmaps.peers`), each at a stated number of
  forward passes per face; their maps order the blocks like the methods' maps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from xfv.xmaps.explainer import Explanation, PeerDesign, XMapExplainer, check_methods
from xfv.xmaps.methods import METHODS
from xfv.xmaps.occlusion import COLORS, IMAGE_SIZE

BASELINES = ("random", "centre", "edge")
MODES = ("deletion", "insertion")
START = 0.2  # the start of a curve: its first 20 %


def check_block(block: int) -> int:
    """A block size that tiles the 112 crop."""
    if not isinstance(block, (int, np.integer)) or block < 1 or IMAGE_SIZE % block:
        raise ValueError(f"block must be a positive integer that divides {IMAGE_SIZE}, got {block!r}.")
    return int(block)


def block_scores(values: np.ndarray, block: int = 8) -> np.ndarray:
    """Mean of a ``(112, 112)`` map (or image channel average) per block, row by row: ``float64 (n_blocks,)``."""
    block = check_block(block)
    values = np.asarray(values, dtype=np.float64)
    if values.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"Expected a (112, 112) map, got shape {values.shape}.")
    if values.ndim == 3:
        values = values.mean(axis=2)
    side = IMAGE_SIZE // block
    return values.reshape(side, block, side, block).mean(axis=(1, 3)).ravel()


def evidence_order(xmap: np.ndarray, genuine: bool, block: int = 8) -> np.ndarray:
    """Blocks most similar first (genuine) or most dissimilar first (imposter); ties in row order."""
    scores = block_scores(xmap, block)
    return np.argsort(-scores if genuine else scores, kind="stable")


def random_order(seed: int, block: int = 8) -> np.ndarray:
    side = IMAGE_SIZE // check_block(block)
    return np.random.default_rng(seed).permutation(side * side)


def centre_order(block: int = 8) -> np.ndarray:
    """Blocks nearest the crop centre first (a face prior)."""
    side = IMAGE_SIZE // check_block(block)
    centres = (np.arange(side) + 0.5) * block - IMAGE_SIZE / 2
    distance = centres[:, None] ** 2 + centres[None, :] ** 2
    return np.argsort(distance.ravel(), kind="stable")


def edge_order(face: np.ndarray, block: int = 8) -> np.ndarray:
    """Blocks with the strongest image gradients first (a saliency prior from the pixels alone)."""
    gray = cv2.cvtColor(np.ascontiguousarray(face), cv2.COLOR_RGB2GRAY).astype(np.float32)
    magnitude = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    return np.argsort(-block_scores(magnitude, block), kind="stable")


def step_counts(n_blocks: int, steps: int) -> np.ndarray:
    """Blocks changed at each step ``0..steps``: ``round(k * n_blocks / steps)``."""
    if not isinstance(steps, (int, np.integer)) or not 1 <= steps <= n_blocks:
        raise ValueError(f"steps must be an integer in [1, {n_blocks}], got {steps!r}.")
    return np.rint(np.arange(steps + 1) * n_blocks / steps).astype(int)


def curve_images(
    face: np.ndarray, order: np.ndarray, mode: str, *, steps: int = 20, block: int = 8, fill: int = 0
) -> np.ndarray:
    """The inner steps ``1..steps-1`` of a deletion or insertion curve: ``uint8 (steps - 1, 112, 112, 3)``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    block = check_block(block)
    side = IMAGE_SIZE // block
    order = np.asarray(order)
    if sorted(order.tolist()) != list(range(side * side)):
        raise ValueError(f"order must be a permutation of the {side * side} blocks.")
    counts = step_counts(side * side, steps)[1:-1]
    changed = np.zeros((len(counts), side * side), dtype=bool)
    for k, count in enumerate(counts):
        changed[k, order[:count]] = True
    pixels = np.repeat(np.repeat(changed.reshape(-1, side, side), block, axis=1), block, axis=2)
    filled = pixels if mode == "deletion" else ~pixels
    images = np.repeat(face[None], len(counts), axis=0)
    images[filled] = fill
    return images


def auc(curve: np.ndarray, fraction: float = 1.0) -> float:
    """Mean score over the first ``fraction`` of a curve sampled at ``0, 1/steps, ..., 1`` (trapezoids)."""
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim != 1 or len(curve) < 2:
        raise ValueError(f"A curve needs at least two points, got shape {curve.shape}.")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}.")
    x = np.linspace(0.0, 1.0, len(curve))
    end = np.interp(fraction, x, curve)
    inside = x < fraction
    xs, ys = np.append(x[inside], fraction), np.append(curve[inside], end)
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2) / fraction)


@dataclass(frozen=True)
class PairCurves:
    """Decision-score curves of one pair: ``curves[order][mode]`` is ``float64 (2, steps + 1)`` (face 1, 2)."""

    genuine: bool
    curves: dict[str, dict[str, np.ndarray]]
    forward_passes: int

    def aucs(self, fraction: float = 1.0) -> dict[str, dict[str, float]]:
        """Per order and mode: the AUC averaged over both faces."""
        return {
            name: {mode: float(np.mean([auc(c, fraction) for c in curves[mode]])) for mode in MODES}
            for name, curves in self.curves.items()
        }


def pair_curves(
    embed: Callable[[np.ndarray], np.ndarray],
    face1: np.ndarray,
    face2: np.ndarray,
    genuine: bool,
    orders: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    steps: int = 20,
    block: int = 8,
    fill: int = 0,
    batch_size: int = 128,
) -> PairCurves:
    """Deletion and insertion curves of every order ``(order of face 1, order of face 2)`` for one pair.

    ``embed``: images ``uint8 (n, 112, 112, 3)`` to embeddings ``(n, D)``. Face ``k`` changes while the other
    face keeps its intact embedding; the curves hold the decision score (similarity for genuine pairs,
    distance for imposters).
    """
    faces = (face1, face2)
    blank = np.full_like(face1, fill)
    images = [face1[None], face2[None], blank[None]]
    slots: list[tuple[str, str, int]] = []
    for name, pair_orders in orders.items():
        for mode in MODES:
            for k in (0, 1):
                images.append(
                    curve_images(faces[k], pair_orders[k], mode, steps=steps, block=block, fill=fill)
                )
                slots.append((name, mode, k))
    stacked = np.concatenate(images)
    embedded = np.concatenate(
        [
            np.asarray(embed(stacked[i : i + batch_size]), dtype=np.float64)
            for i in range(0, len(stacked), batch_size)
        ]
    )
    embedded /= np.linalg.norm(embedded, axis=1, keepdims=True)
    intact, blank_embedding, inner = (
        embedded[:2],
        embedded[2],
        embedded[3:].reshape(len(slots), steps - 1, -1),
    )
    curves: dict[str, dict[str, np.ndarray]] = {
        name: {mode: np.zeros((2, steps + 1)) for mode in MODES} for name in orders
    }
    for (name, mode, k), rows in zip(slots, inner):
        start, end = (intact[k], blank_embedding) if mode == "deletion" else (blank_embedding, intact[k])
        similarity = np.concatenate([[start @ intact[1 - k]], rows @ intact[1 - k], [end @ intact[1 - k]]])
        curves[name][mode][k] = similarity if genuine else 1.0 - similarity
    return PairCurves(genuine, curves, len(stacked))


def baseline_orders(
    face1: np.ndarray, face2: np.ndarray, seeds: Sequence[int], block: int = 8
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``random-<k>`` for the ``k``-th seed (one permutation per face), ``centre`` and ``edge`` orders."""
    orders = {
        f"random-{k}": (random_order(2 * seed, block), random_order(2 * seed + 1, block))
        for k, seed in enumerate(seeds)
    }
    orders["centre"] = (centre_order(block), centre_order(block))
    orders["edge"] = (edge_order(face1, block), edge_order(face2, block))
    return orders


@dataclass
class FaithfulnessResult:
    """Per-pair AUCs of every order, and the summed curves, of a faithfulness run (see the module docstring)."""

    steps: int
    block: int
    records: list[dict]

    def add(self, pair: int, curves: PairCurves) -> None:
        """Record one pair: per order and mode, the both-faces AUC over the whole curve and its start."""
        full, start = curves.aucs(1.0), curves.aucs(START)
        self.records.append(
            {
                "pair": pair,
                "genuine": curves.genuine,
                "forward_passes": curves.forward_passes,
                "auc": {
                    name: {mode: {"full": full[name][mode], "start": start[name][mode]} for mode in MODES}
                    for name in full
                },
                "curves": {
                    name: {mode: c.mean(axis=0).tolist() for mode, c in modes.items()}
                    for name, modes in curves.curves.items()
                },
            }
        )

    def summary(self) -> dict:
        """Per class (genuine / imposter) and order: mean AUCs, and the share of pairs whose AUC beats the
        mean of the random orders (deletion: lower, insertion: higher), plus the mean curves; for method 4 (and
        its budgets) also the share of pairs where it beats each other explainer (``*_beats``)."""
        out: dict = {"steps": self.steps, "block": self.block, "start_fraction": START, "classes": {}}
        for label, genuine in (("genuine", True), ("imposter", False)):
            rows = [r for r in self.records if r["genuine"] == genuine]
            if not rows:
                continue
            names = list(rows[0]["auc"])
            randoms = [n for n in names if n.startswith("random-")]
            orders: dict = {}
            for name in [n for n in names if n not in randoms] + ["random"]:
                entry: dict = {}
                for mode, sign in (("deletion", 1.0), ("insertion", -1.0)):
                    for part in ("full", "start"):
                        values = np.array([_auc(r, name, randoms, mode, part) for r in rows])
                        entry[f"{mode}_{part}_auc"] = float(values.mean())
                        if name != "random":
                            entry[f"{mode}_{part}_beats_random"] = _share_better(values, "random", rows, randoms,
                                                                                  mode, part, sign)
                        if name.startswith("method 4"):  # against every other explainer, pair by pair
                            entry[f"{mode}_{part}_beats"] = {
                                other: _share_better(values, other, rows, randoms, mode, part, sign)
                                for other in names
                                if other not in (*randoms, *BASELINES, name)
                            }
                    entry[f"{mode}_curve"] = np.mean(
                        [
                            np.mean(
                                [r["curves"][n][mode] for n in (randoms if name == "random" else [name])],
                                axis=0,
                            )
                            for r in rows
                        ],
                        axis=0,
                    ).tolist()
                orders[name] = entry
            out["classes"][label] = {"pairs": len(rows), "orders": orders}
        return out


def _share_better(values: np.ndarray, other: str, rows: list[dict], randoms: list[str], mode: str, part: str,
                  sign: float) -> float:
    """The share of pairs whose ``values`` (AUCs) beat ``other``'s: lower for deletion (``sign`` 1), higher for
    insertion (-1)."""
    theirs = np.array([_auc(r, other, randoms, mode, part) for r in rows])
    return float(np.mean(sign * (values - theirs) < 0))


def _auc(record: dict, name: str, randoms: list[str], mode: str, part: str) -> float:
    """One pair's AUC of an order; ``random`` is the mean over the random orders."""
    if name == "random":
        return float(np.mean([record["auc"][n][mode][part] for n in randoms]))
    return record["auc"][name][mode][part]


def budget_name(count: int) -> str:
    """The name of method 4 fitted on its first ``count`` masks."""
    return f"method 4 ({count} masks)"


def check_budgets(budgets: Iterable[int], masks: int, methods: tuple[int, ...]) -> tuple[int, ...]:
    """Mask counts below method 4's ``masks`` at which to fit it again (prefixes of its design)."""
    budgets = tuple(dict.fromkeys(budgets))
    if budgets and 4 not in methods:
        raise ValueError("budgets are prefixes of method 4's masks: include method 4 in methods.")
    for count in budgets:
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 2 <= count < masks:
            raise ValueError(f"a budget must be an integer from 2 to method 4's {masks - 1} masks, got {count!r}.")
    return budgets


def explainer_maps(
    explainer: XMapExplainer,
    face1: np.ndarray,
    face2: np.ndarray,
    *,
    methods: tuple[int, ...],
    peers: Mapping[str, PeerDesign],
    budgets: tuple[int, ...],
) -> tuple[dict[int | str, tuple[np.ndarray, np.ndarray]], Explanation]:
    """Normalised maps of both faces, one embedding pass for all: ``methods`` by number, method 4 fitted on each
    budget's first masks by :func:`budget_name`, the ``peers`` by name; with the explanation of ``methods``
    (its ``forward_passes``: those of the pass)."""
    (embeddings1, embeddings2), passes = explainer.embed_faces([face1, face2], methods, peers.values())
    explanation = explainer.assemble(face1, face2, embeddings1, embeddings2, methods=methods)
    maps: dict[int | str, tuple[np.ndarray, np.ndarray]] = dict(explanation.maps)
    for count in budgets:
        maps[budget_name(count)] = explainer.assemble(
            face1, face2, embeddings1, embeddings2, methods=(4,), count=count).maps[4]
    maps |= explainer.peer_maps(embeddings1, embeddings2, peers)
    return maps, dataclasses.replace(explanation, forward_passes=passes)


def faithfulness_experiment(
    explainer: XMapExplainer,
    pairs: Iterable[tuple[int, np.ndarray, np.ndarray, bool]],
    *,
    methods: Iterable[int] = METHODS,
    peers: Mapping[str, PeerDesign] | None = None,
    budgets: Iterable[int] = (),
    seeds: int = 3,
    steps: int = 20,
    block: int = 8,
    batch_size: int = 128,
    progress: Callable[[FaithfulnessResult], None] | None = None,
) -> FaithfulnessResult:
    """Deletion and insertion curves of each method's maps, of method 4 on the first ``budgets`` masks of its
    design, of the ``peers`` (:mod:`xfv.xmaps.peers`, by name) and of the baselines on ``(index, face1, face2,
    genuine)`` pairs. The maps come from ``explainer`` (its cache spares the masked faces of known faces); the
    curves' images take ``steps - 1`` batched forward passes per order, mode and face. ``seeds`` random orders
    per pair, seeded by the pair's index. ``progress(result)`` after every pair."""
    methods = check_methods(methods)
    peers = dict(peers or {})
    budgets = check_budgets(budgets, explainer.coalitions.masks, methods)
    if not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}.")
    fill = COLORS[explainer.occlusion.color] or 0  # the occlusion colour; black for noise
    result = FaithfulnessResult(steps, check_block(block), [])
    for index, face1, face2, genuine in pairs:
        maps, _ = explainer_maps(explainer, face1, face2, methods=methods, peers=peers, budgets=budgets)
        orders = {
            f"method {name}" if isinstance(name, int) else name: tuple(
                evidence_order(m, genuine, block) for m in pair_maps)
            for name, pair_maps in maps.items()
        }
        orders |= baseline_orders(face1, face2, [index * 1000 + k for k in range(seeds)], block)
        curves = pair_curves(
            explainer.model.embed,
            face1,
            face2,
            genuine,
            orders,
            steps=steps,
            block=block,
            fill=fill,
            batch_size=batch_size,
        )
        result.add(index, curves)
        if progress is not None:
            progress(result)
    if not result.records:
        raise ValueError("No pairs were given to the faithfulness experiment.")
    return result
