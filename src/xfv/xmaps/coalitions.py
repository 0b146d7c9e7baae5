"""Method 4 (beyond the paper): what each face region adds to the pair's similarity, over random coalitions.

Methods 1-3 occlude one patch of an otherwise intact face, so they measure single-patch effects; these do not add
up when many regions are missing (docs/faithfulness.md). Method 4 measures effects in every context instead:

1. The 112 x 112 crop is cut into ``cell x cell`` cells (default 14 px, the paper's middle patch size: 8 x 8 = 64).
2. A fixed, seeded design of ``masks`` binary masks keeps some cells and fills the others with the occlusion
   colour. Masks come in complementary pairs, and a pair's share of kept cells is drawn uniformly from [0, 1], so
   coalitions of every size are equally likely, as in the Shapley value.
3. Each masked face ``k`` is embedded once (the design is the same for every face, so the embeddings are cached
   per face like the occlusions) and scored by its cosine similarity to the *intact* other face (Eq. 1).
4. A least-squares fit ``s_m = b_0 + sum_c b_c [cell c kept in mask m]`` gives ``b_c``: the mean change of the
   similarity when cell ``c`` is present, over contexts of all sizes. ``b_c > 0``: the region makes the faces
   similar (+, green); ``b_c < 0``: dissimilar (-, red).
5. Each pixel takes its cell's ``b_c``; blur and normalisation as for methods 1-3 (method.md §4).

Option ``smoothing`` (lambda, default 0: the plain fit of step 4) adds ``lambda * sum (b_c - b_c')^2`` over
neighbouring cells (4-neighbours) to the least-squares loss, a prior that neighbouring face regions act alike. It
makes the maps more region-shaped (they fill a pasted half face) at the cost of the order in which they rank the
model's evidence (deletion); docs/faithfulness.md has the measured trade-off.

With ``masks`` equal to the occlusions of methods 1-3 (1,058 with the paper's defaults), method 4 costs the same
forward passes as methods 1-3 together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from xfv.xmaps.occlusion import IMAGE_SIZE

MAX_MASKS = 16384  # bounds the design's memory: 12.5 kB of pixel masks per mask, about 200 MB at most
NEGLIGIBLE = 1e-9  # a cell effect on the cosine similarity below this is the fit's round-off: 0


@dataclass(frozen=True)
class CoalitionDesign:
    """The masks of method 4: ``masks`` (even) masks over cells of ``cell`` pixels, drawn with ``seed``."""

    masks: int = 1058
    cell: int = 14
    seed: int = 0
    smoothing: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.cell, (int, np.integer)) or self.cell < 1 or IMAGE_SIZE % self.cell:
            raise ValueError(f"cell must be a positive integer that divides {IMAGE_SIZE}, got {self.cell!r}.")
        cells = (IMAGE_SIZE // self.cell) ** 2
        if (not isinstance(self.masks, (int, np.integer)) or not 2 * (cells + 1) <= self.masks <= MAX_MASKS
                or self.masks % 2):
            raise ValueError(f"masks must be an even integer from {2 * (cells + 1)} (twice the {cells} cells and "
                             f"intercept, for the least-squares fit) to {MAX_MASKS}, got {self.masks!r}.")
        if (isinstance(self.smoothing, bool) or not isinstance(self.smoothing, (int, float, np.number))
                or not 0 <= self.smoothing < np.inf):
            raise ValueError(f"smoothing must be a finite number >= 0, got {self.smoothing!r}.")

    @property
    def side(self) -> int:
        """Cells per side."""
        return IMAGE_SIZE // self.cell

    @cached_property
    def kept(self) -> np.ndarray:
        """``bool (masks, side, side)``: True where a mask keeps the cell; complementary pairs ``m``, ``m + masks/2``.

        Every coalition is proper (keeps some cell and removes some), as in Shapley regressions: the empty and the
        whole face are the two ends every deletion curve shares."""
        rng = np.random.default_rng(self.seed)
        half = self.masks // 2
        first = np.zeros((half, self.side, self.side), dtype=bool)
        redraw = np.ones(half, dtype=bool)
        while redraw.any():
            shares = rng.uniform(0.0, 1.0, size=(int(redraw.sum()), 1, 1))
            first[redraw] = rng.uniform(size=(int(redraw.sum()), self.side, self.side)) < shares
            counts = first.sum(axis=(1, 2))
            redraw = (counts == 0) | (counts == self.side * self.side)
        return np.concatenate([first, ~first])

    @cached_property
    def _solver(self) -> np.ndarray:
        """The least-squares operator ``(X^T X + lambda P)^-1 X^T`` of the design with an intercept column; ``P``
        penalises the differences of neighbouring cells (the graph Laplacian of the grid), not the intercept."""
        design = np.hstack([np.ones((self.masks, 1)), self.kept.reshape(self.masks, -1).astype(np.float64)])
        if self.smoothing == 0:
            return np.linalg.pinv(design)
        penalty = np.zeros((design.shape[1], design.shape[1]))
        penalty[1:, 1:] = self.smoothing * _grid_laplacian(self.side)
        return np.linalg.solve(design.T @ design + penalty, design.T)

    def cache_key(self, color_key: str) -> str:
        """Everything that changes the masked images (a cache key part; not ``smoothing``, which only changes
        the fit); ``color_key``: the fill's own."""
        return json.dumps({"method": 4, "masks": self.masks, "cell": self.cell, "seed": self.seed,
                           "fill": color_key}, sort_keys=True)

    @cached_property
    def _kept_pixels(self) -> np.ndarray:
        """:attr:`kept` per pixel, ``bool (masks, 112, 112, 1)`` (13 MB for the default design), built once."""
        return np.repeat(np.repeat(self.kept, self.cell, axis=1), self.cell, axis=2)[..., None]

    def render(self, face: np.ndarray, fill: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Masked faces for masks ``start:stop``: ``uint8 (n, 112, 112, 3)``, removed cells showing ``fill``."""
        return np.where(self._kept_pixels[start:stop], face[None], fill[None])

    def attribution(self, similarities: np.ndarray) -> np.ndarray:
        """Step 4: ``b_c`` per cell from the masked faces' similarities, as a ``(112, 112)`` map (step 5's cells)."""
        similarities = np.asarray(similarities, dtype=np.float64)
        if similarities.shape != (self.masks,):
            raise ValueError(f"Expected {self.masks} similarities, one per mask, got shape {similarities.shape}.")
        effects = (self._solver @ similarities)[1:].reshape(self.side, self.side)
        effects[np.abs(effects) < NEGLIGIBLE] = 0.0  # round-off of the fit, far below float32 embeddings' precision
        return np.repeat(np.repeat(effects, self.cell, axis=0), self.cell, axis=1)


def _grid_laplacian(side: int) -> np.ndarray:
    """``L`` with ``b^T L b = sum (b_c - b_c')^2`` over the 4-neighbour pairs of a ``side x side`` grid."""
    index = np.arange(side * side).reshape(side, side)
    neighbours = np.concatenate([
        np.stack([index[:, :-1].ravel(), index[:, 1:].ravel()], axis=1),
        np.stack([index[:-1].ravel(), index[1:].ravel()], axis=1),
    ])
    incidence = np.zeros((len(neighbours), side * side))
    incidence[np.arange(len(neighbours)), neighbours[:, 0]] = 1.0
    incidence[np.arange(len(neighbours)), neighbours[:, 1]] = -1.0
    return incidence.T @ incidence
