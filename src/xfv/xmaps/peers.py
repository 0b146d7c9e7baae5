"""The peers' explainers, as baselines of the faithfulness benchmark (method.md §8; docs/faithfulness.md).

Each peer is a *masked design* like method 4's (:class:`xfv.xmaps.coalitions.CoalitionDesign`): a fixed, seeded
set of ``masks`` masked versions of a face (the removed part shows the occlusion fill), each embedded once and
scored by its cosine similarity to the *other face intact* (Eq. 1), then turned into a ``(112, 112)`` map whose
positive values mark what makes the faces similar. The design is the same for every face, so the masked
embeddings are cached per face under :meth:`cache_key`, as method 4's are; ``masks`` is the forward passes per
face, the budget at which peers are compared. They are benchmark baselines, not views of the platform.

- :class:`RISE` (Petsiuk, Das, Saenko, BMVC 2018): ``masks`` random binary grids of ``grid x grid`` cells, each
  cell kept with probability ``keep``, up-sampled bilinearly to ``(grid + 1)`` cells of ``ceil(112 / grid)`` px
  and cropped at a random shift within one cell: soft masks ``M_i`` in [0, 1], masked face
  ``M_i I + (1 - M_i) fill``. Saliency ``sum_i s_i M_i / (N keep)``; here with the scores centred
  (``s_i - mean s``) so that the map has a sign (similar +, dissimilar -); the centring subtracts
  ``mean s`` times the masks' coverage, which is the same for every pixel up to sampling.
- :class:`CorrRISE` (Lu, Xu, Ebrahimi, WACV 2024): each mask removes ``patches`` squares of ``size`` px at
  uniformly random places (they may overlap) on one face, the other intact; a pixel's value is the Pearson
  correlation, over the masks, of the similarity with the pixel being kept. Positive: keeping the pixel goes
  with a higher similarity (a similar region); negative: a dissimilar one. Pixels no mask removes get 0.
- :class:`KernelSHAP` (Lundberg and Lee, NeurIPS 2017) through ``shap.KernelExplainer``: the features are the
  cells of ``cell`` px (8 x 8 = 64 for 14 px), the face with every cell is the instance and the all-fill face
  the background; shap draws its ``masks - 1`` coalitions (seeded) and solves its constrained, Shapley-kernel
  weighted least squares with ``l1_reg=False`` (every cell gets a value; shap's default would keep 10). The
  coalitions are drawn once per design (a dry run) and rendered; the fit runs shap again on the recorded
  similarities. Images: the all-fill face and the coalitions.
- :class:`LIME` (Ribeiro, Singh, Guestrin, KDD 2016) through ``lime.lime_base.LimeBase`` with the sampling and
  kernel of ``lime.lime_image`` over the same cells as segments: ``masks`` random coalitions keeping each cell
  with probability 1/2 (numpy ``RandomState(seed).randint``, as ``lime_image`` draws them), plus the intact face
  as the first row; cosine distances to it, kernel ``sqrt(exp(-d^2 / 0.25^2))``, ``feature_selection="auto"``
  and LIME's default ridge regression (alpha 1) of the similarity on the coalitions; a cell's coefficient is
  its value.

KernelSHAP and LIME need the optional extra ``xfv[peers]`` (``shap``, ``lime``).
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import ClassVar

import cv2
import numpy as np

from xfv.xmaps.coalitions import MAX_MASKS, _is_integer, _is_number
from xfv.xmaps.occlusion import IMAGE_SIZE


def _check_integer(name: str, value: object, least: int, most: float = np.inf) -> None:
    if not _is_integer(value) or not least <= value <= most:
        bound = f"from {least} to {most}" if most < np.inf else f">= {least}"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}.")


def _check_masks(masks: object, least: int) -> None:
    _check_integer("masks", masks, least, MAX_MASKS)


def _check_cell(cell: object) -> None:
    if not _is_integer(cell) or cell < 1 or IMAGE_SIZE % cell:
        raise ValueError(f"cell must be a positive integer that divides {IMAGE_SIZE}, got {cell!r}.")


def _check_similarities(similarities: np.ndarray, count: int) -> np.ndarray:
    similarities = np.asarray(similarities, dtype=np.float64)
    if similarities.shape != (count,):
        raise ValueError(f"Expected {count} similarities, one per masked image, got shape {similarities.shape}.")
    return similarities


class _Peer:
    """What every peer shares: its name, cache key and the check of its similarities."""

    name: ClassVar[str]
    masks: int

    def cache_key(self, fill_key: str) -> str:
        """Everything that changes the masked images (a cache key part); ``fill_key``: the fill's own."""
        return json.dumps({"explainer": self.name, **asdict(self), **self._versions(), "fill": fill_key},
                          sort_keys=True)

    def _versions(self) -> dict:
        return {}

    def describe(self) -> dict:
        """The settings, for reports."""
        return {"explainer": self.name, **asdict(self)}


@dataclass(frozen=True)
class RISE(_Peer):
    """RISE's soft random masks (see the module docstring); defaults: the paper's 7 x 7 grid, p = 0.5."""

    name: ClassVar[str] = "RISE"
    masks: int = 1058
    grid: int = 7
    keep: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        _check_masks(self.masks, 2)
        _check_integer("grid", self.grid, 2, 56)
        if not _is_number(self.keep) or not 0 < self.keep < 1:
            raise ValueError(f"keep must be a probability strictly between 0 and 1, got {self.keep!r}.")

    @cached_property
    def soft(self) -> np.ndarray:
        """``float32 (masks, 112, 112)`` in [0, 1]: 1 keeps the pixel."""
        rng = np.random.default_rng(self.seed)
        cell = math.ceil(IMAGE_SIZE / self.grid)
        up = (self.grid + 1) * cell
        out = np.empty((self.masks, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
        for k in range(self.masks):
            grid = (rng.uniform(size=(self.grid, self.grid)) < self.keep).astype(np.float32)
            large = cv2.resize(grid, (up, up), interpolation=cv2.INTER_LINEAR)
            dy, dx = rng.integers(0, cell, size=2)
            out[k] = large[dy : dy + IMAGE_SIZE, dx : dx + IMAGE_SIZE]
        return out

    def render(self, face: np.ndarray, fill: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        alpha = self.soft[start:stop, :, :, None]
        return np.rint(face[None] * alpha + fill[None] * (1.0 - alpha)).astype(np.uint8)

    def attribution(self, similarities: np.ndarray, intact: float) -> np.ndarray:
        """``sum_i (s_i - mean s) M_i / (N p)``, a ``float64 (112, 112)`` map."""
        similarities = _check_similarities(similarities, self.masks)
        weights = similarities - similarities.mean()
        flat = self.soft.reshape(self.masks, -1).astype(np.float64)
        return (weights @ flat / (self.masks * self.keep)).reshape(IMAGE_SIZE, IMAGE_SIZE)


@dataclass(frozen=True)
class CorrRISE(_Peer):
    """CorrRISE's masks of a few random squares and its per-pixel correlation (see the module docstring)."""

    name: ClassVar[str] = "CorrRISE"
    masks: int = 1058
    patches: int = 4
    size: int = 24
    seed: int = 0

    def __post_init__(self) -> None:
        _check_masks(self.masks, 3)
        _check_integer("patches", self.patches, 1)
        _check_integer("size", self.size, 1, IMAGE_SIZE - 1)

    @cached_property
    def kept(self) -> np.ndarray:
        """``bool (masks, 112, 112)``: False inside the mask's squares."""
        rng = np.random.default_rng(self.seed)
        out = np.ones((self.masks, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
        corners = rng.integers(0, IMAGE_SIZE - self.size + 1, size=(self.masks, self.patches, 2))
        for k, squares in enumerate(corners):
            for y, x in squares:
                out[k, y : y + self.size, x : x + self.size] = False
        return out

    def render(self, face: np.ndarray, fill: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        return np.where(self.kept[start:stop, :, :, None], face[None], fill[None])

    def attribution(self, similarities: np.ndarray, intact: float) -> np.ndarray:
        """Pearson correlation of each pixel's kept indicator with the similarity (0 where it is constant)."""
        similarities = _check_similarities(similarities, self.masks)
        kept = self.kept.reshape(self.masks, -1).astype(np.float64)
        kept -= kept.mean(axis=0)
        centred = similarities - similarities.mean()
        spread = np.sqrt((kept**2).sum(axis=0) * (centred**2).sum())
        covariance = centred @ kept
        correlation = np.divide(covariance, spread, out=np.zeros_like(covariance), where=spread > 0)
        return correlation.reshape(IMAGE_SIZE, IMAGE_SIZE)


class _CellPeer(_Peer):
    """A peer whose features are the cells of ``cell`` px: coalitions render as kept cells, values as cells."""

    cell: int

    @property
    def side(self) -> int:
        return IMAGE_SIZE // self.cell

    def _coalitions(self) -> np.ndarray:
        """``bool (images, cells)``: the cells each rendered image keeps."""
        raise NotImplementedError

    @cached_property
    def _kept_pixels(self) -> np.ndarray:
        kept = self._coalitions().reshape(-1, self.side, self.side)
        return np.repeat(np.repeat(kept, self.cell, axis=1), self.cell, axis=2)[..., None]

    def render(self, face: np.ndarray, fill: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        return np.where(self._kept_pixels[start:stop], face[None], fill[None])

    def _cells_to_pixels(self, values: np.ndarray) -> np.ndarray:
        cells = np.asarray(values, dtype=np.float64).reshape(self.side, self.side)
        return np.repeat(np.repeat(cells, self.cell, axis=0), self.cell, axis=1)


def _require(module: str):
    """Import an optional dependency of the peers, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.partition(".")[0]
        raise ImportError(f"This peer explainer needs the {package!r} package: pip install 'xfv[peers]'.") from None


@dataclass(frozen=True)
class KernelSHAP(_CellPeer):
    """``shap.KernelExplainer`` over the cells (see the module docstring)."""

    name: ClassVar[str] = "KernelSHAP"
    masks: int = 1058
    cell: int = 14
    seed: int = 0

    def __post_init__(self) -> None:
        _check_cell(self.cell)
        _check_masks(self.masks, 4)

    def _versions(self) -> dict:
        return {"shap": _require("shap").__version__}  # the coalitions are shap's own draw

    def _explain(self, model) -> np.ndarray:
        """Run ``shap.KernelExplainer`` with ``model`` (coalitions ``(n, cells)`` to scores), seeded."""
        shap = _require("shap")
        cells = self.side * self.side
        state = np.random.get_state()
        np.random.seed(self.seed)  # shap draws its coalitions from numpy's global generator
        try:
            explainer = shap.KernelExplainer(model, np.zeros((1, cells)))
            values = explainer.shap_values(np.ones((1, cells)), nsamples=self.masks - 1, l1_reg=False, silent=True)
        finally:
            np.random.set_state(state)
        self.__dict__.setdefault("_drawn", explainer.maskMatrix[: explainer.nsamplesAdded].astype(bool))
        return np.asarray(values, dtype=np.float64).reshape(-1)

    def _coalitions(self) -> np.ndarray:
        if "_drawn" not in self.__dict__:
            self._explain(lambda z: np.zeros(len(z)))  # a dry run records shap's coalitions
        drawn = self.__dict__["_drawn"]
        blank = np.zeros((1, drawn.shape[1]), dtype=bool)
        return np.concatenate([blank, drawn])

    def attribution(self, similarities: np.ndarray, intact: float) -> np.ndarray:
        """The cells' Shapley values from shap, on the recorded similarities (image 0: the all-fill face)."""
        similarities = _check_similarities(similarities, self.masks)
        coalitions = self._coalitions()
        lookup = {row.tobytes(): s for row, s in zip(coalitions, similarities)}
        lookup[np.ones(coalitions.shape[1], dtype=bool).tobytes()] = float(intact)

        def model(rows: np.ndarray) -> np.ndarray:
            keys = [np.asarray(row).astype(bool).tobytes() for row in rows]
            missing = sum(key not in lookup for key in keys)
            if missing:
                raise RuntimeError(f"shap asked for {missing} coalitions outside the recorded design; "
                                   "was the shap version changed?")
            return np.array([lookup[key] for key in keys])

        return self._cells_to_pixels(self._explain(model))


@dataclass(frozen=True)
class LIME(_CellPeer):
    """``lime.lime_base.LimeBase`` with ``lime_image``'s sampling and kernel over the cells (module docstring)."""

    name: ClassVar[str] = "LIME"
    masks: int = 1058
    cell: int = 14
    seed: int = 0
    kernel_width: float = 0.25

    def __post_init__(self) -> None:
        _check_cell(self.cell)
        _check_masks(self.masks, 2)
        if not _is_number(self.kernel_width) or not 0 < self.kernel_width < np.inf:
            raise ValueError(f"kernel_width must be a positive number, got {self.kernel_width!r}.")

    @cached_property
    def _data(self) -> np.ndarray:
        """LIME's neighbourhood ``int (masks + 1, cells)``: row 0 the intact face, then the coalitions."""
        cells = self.side * self.side
        data = np.random.RandomState(self.seed).randint(0, 2, (self.masks + 1) * cells).reshape(-1, cells)
        data[0] = 1
        return data

    def _coalitions(self) -> np.ndarray:
        return self._data[1:].astype(bool)

    def attribution(self, similarities: np.ndarray, intact: float) -> np.ndarray:
        """The cells' coefficients of LIME's weighted ridge fit."""
        similarities = _check_similarities(similarities, self.masks)
        lime_base = _require("lime.lime_base")
        from sklearn.metrics import pairwise_distances

        width = float(self.kernel_width)
        base = lime_base.LimeBase(lambda d: np.sqrt(np.exp(-(d**2) / width**2)), random_state=self.seed)
        labels = np.concatenate([[float(intact)], similarities])[:, None]
        distances = pairwise_distances(self._data, self._data[:1], metric="cosine").ravel()
        _, weights, _, _ = base.explain_instance_with_data(
            self._data, labels, distances, 0, self._data.shape[1], feature_selection="auto"
        )
        values = np.zeros(self._data.shape[1])
        for cell, weight in weights:
            values[cell] = weight
        return self._cells_to_pixels(values)


PEERS = {peer.name.lower(): peer for peer in (RISE, CorrRISE, KernelSHAP, LIME)}
"""The peer explainers by their option names (``rise``, ``corrrise``, ``kernelshap``, ``lime``)."""


def make_peers(names: list[str] | tuple[str, ...], masks: int, cell: int = 14, seed: int = 0) -> dict[str, _Peer]:
    """Peers by option name, each at ``masks`` forward passes per face (cell-based ones over ``cell`` px)."""
    peers: dict[str, _Peer] = {}
    for name in names:
        key = name.lower()
        if key not in PEERS:
            raise ValueError(f"Unknown peer explainer {name!r}; expected some of {sorted(PEERS)}.")
        kind = PEERS[key]
        options = {"cell": cell} if kind in (KernelSHAP, LIME) else {}
        peer = kind(masks=masks, seed=seed, **options)
        peers[peer.name] = peer
    return peers
