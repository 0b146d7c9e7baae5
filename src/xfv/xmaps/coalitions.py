"""Method 4 (beyond the paper): what each face region adds to the pair's similarity, over random coalitions.

Methods 1-3 occlude one patch of an otherwise intact face, so they measure single-patch effects; these do not add
up when many regions are missing (docs/faithfulness.md). Method 4 measures effects in every context instead:

1. **Shifted grids.** The 112 x 112 crop is cut into cells of ``cell`` px (default 14, the paper's middle patch
   size), on ``shifts ** 2`` grids offset from each other by multiples of ``cell / shifts`` px (default 2 x 2
   grids, offsets 0 and 7 px); a shifted grid has partial cells at the border. The atoms, squares of
   ``cell / shifts`` px (7 px: 16 x 16 = 256), are the map's resolution: an eye spans about 3 x 2 of them.
2. **Coalitions.** A fixed, seeded design of ``masks`` binary masks, in complementary pairs: pair ``k`` uses grid
   ``k mod shifts^2``, draws a share of kept cells uniformly from [0, 1] (coalitions of every size are equally
   likely, as in the Shapley value; no mask keeps all or no atoms) and keeps each cell with that probability;
   its second mask keeps exactly the cells the first removes. Removed cells show the occlusion colour. Any even
   prefix of the sequence is itself such a design: the map can be fitted on the first masks only.
3. Each masked face ``m`` is embedded once (the design is the same for every face, so the embeddings are cached
   per face like the occlusions) and scored by its cosine similarity ``s_m`` to the *intact* other face (Eq. 1).
4. **Multi-scale fit.** ``s_m = b_0 + sum_a b_a x_ma`` with ``x_ma = 1`` when mask ``m`` keeps atom ``a``; each
   atom's effect is the sum of a 28 px, a ``cell`` px and an atom component,
   ``b_a = c28_{q(a)} + c_{p(a)} + d_a`` (the cells of the unshifted grids that hold it), fitted by least
   squares with the penalty ``prior[0] |c28|^2 + prior[1] |c|^2 + prior[2] |d|^2`` (default 10, 100, 300): a
   Gaussian prior, broadest for the 28 px blocks, that lets an atom differ from its cell, and a cell from its
   block, only as far as the masks show it. ``b_a > 0``: the region makes the faces similar (+, green); ``b_a < 0``: dissimilar (-, red). The
   penalties weigh more on a short prefix of the design, so a fit on the first masks is coarse and sharpens as
   masks arrive.
5. Each pixel takes its atom's ``b_a``; blur and normalisation to [-1, 1] as for methods 1-3 (method.md §4).

Option ``smoothing`` (lambda, default 0) adds ``lambda * sum (b_a - b_a')^2`` over neighbouring atoms
(4-neighbours) to the loss of step 4, a prior that neighbouring face regions act alike: region-shaped maps at
the cost of the order in which they rank the model's evidence (docs/faithfulness.md has the trade-off).

With ``shifts=1`` and ``prior=(0, 0, 0)`` the design is the former method 4 (one grid of 14 px cells, plain least
squares), drawn in the new order.

**Budget.** ``masks`` defaults to :data:`DEFAULT_MASKS` (1,058, as many as the occlusions of methods 1-3 with the
paper's defaults). Fewer masks are an option (``masks=256``, ``--masks 256``): the design is drawn mask pair by
mask pair, so the first ``n`` masks of any design are the ``n``-mask design, and a fit on a prefix
(:meth:`CoalitionDesign.attribution`) is the map of that budget. On a development set (40 + 40 pairs of LFW fold
10, dlib; docs/faithfulness.md, "Mask budget") 256 masks still met the benchmark's deletion targets, but with
fewer masks the prior weighs more: the map falls back towards 14 px blocks and marks regions the model ignores
(tests/test_xmaps.py measures it), so the default keeps 1,058.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from threadpoolctl import threadpool_limits

from xfv.xmaps.occlusion import IMAGE_SIZE

DEFAULT_MASKS = 1058  # method 4's budget, forward passes per face: as many as methods 1-3's occlusions ("Budget")
MAX_MASKS = 16384  # bounds the design's memory: 12.5 kB of pixel masks per mask, about 200 MB at most
NEGLIGIBLE = 1e-9  # an atom effect on the cosine similarity below this is the fit's round-off: 0
COARSE = 28  # the coarsest component of the fit (step 4): 4 x 4 blocks of the crop
RIDGE = 1e-10  # relative to the Gram matrix's mean diagonal: makes the fit unique where components overlap


def _is_integer(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


@dataclass(frozen=True)
class CoalitionDesign:
    """The masks of method 4 and their fit: ``masks`` masks over cells of ``cell`` px on ``shifts ** 2`` shifted
    grids, drawn with ``seed``; ``prior``: the penalties of the 28 px, cell and atom components (step 4)."""

    masks: int = DEFAULT_MASKS
    cell: int = 14
    shifts: int = 2
    seed: int = 0
    prior: tuple[float, float, float] = (10.0, 100.0, 300.0)
    smoothing: float = 0.0

    def __post_init__(self) -> None:
        if not _is_integer(self.cell) or self.cell < 1 or IMAGE_SIZE % self.cell:
            raise ValueError(f"cell must be a positive integer that divides {IMAGE_SIZE}, got {self.cell!r}.")
        if not _is_integer(self.shifts) or self.shifts < 1 or self.cell % self.shifts:
            raise ValueError(f"shifts must be a positive integer that divides the cell ({self.cell}), "
                             f"got {self.shifts!r}.")
        if not _is_integer(self.masks) or not 2 <= self.masks <= MAX_MASKS or self.masks % 2:
            raise ValueError(f"masks must be an even integer from 2 to {MAX_MASKS}, got {self.masks!r}.")
        if not _is_integer(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}.")
        prior = tuple(self.prior) if np.iterable(self.prior) else ()
        if len(prior) != 3 or not all(_is_number(p) and 0 <= p < np.inf for p in prior):
            raise ValueError("prior must be three finite numbers >= 0 (the 28 px, cell and atom penalties), "
                             f"got {self.prior!r}.")
        object.__setattr__(self, "prior", tuple(float(p) for p in prior))
        if not _is_number(self.smoothing) or not 0 <= self.smoothing < np.inf:
            raise ValueError(f"smoothing must be a finite number >= 0, got {self.smoothing!r}.")

    @property
    def atom(self) -> int:
        """The map's resolution in pixels: the grids' offsets are multiples of it."""
        return self.cell // self.shifts

    @property
    def side(self) -> int:
        """Atoms per side."""
        return IMAGE_SIZE // self.atom

    def offsets(self) -> list[tuple[int, int]]:
        """The grids' offsets ``(dy, dx)`` in pixels, in the order the pairs of masks cycle through them."""
        steps = range(0, self.cell, self.atom)
        return [(dy, dx) for dy in steps for dx in steps]

    @cached_property
    def kept(self) -> np.ndarray:
        """``bool (masks, side, side)``: True where a mask keeps the atom; complementary pairs ``2k``, ``2k + 1``.

        Every coalition is proper (keeps some atom and removes some), as in Shapley regressions: the empty and the
        whole face are the two ends every deletion curve shares."""
        rng = np.random.default_rng(self.seed + self.cell)
        offsets = self.offsets()
        out = np.empty((self.masks, self.side, self.side), dtype=bool)
        for k in range(self.masks // 2):
            dy, dx = offsets[k % len(offsets)]
            rows, columns = self._cells(dy), self._cells(dx)
            while True:
                share = rng.uniform()
                cells = rng.uniform(size=(rows.max() + 1, columns.max() + 1)) < share
                atoms = cells[rows][:, columns]
                if 0 < atoms.sum() < atoms.size:
                    break
            out[2 * k], out[2 * k + 1] = atoms, ~atoms
        return out

    def _cells(self, offset: int) -> np.ndarray:
        """Along one axis: the cell of each atom on the grid shifted by ``offset`` px."""
        return (np.arange(self.side) * self.atom + offset) // self.cell

    def cache_key(self, fill_key: str) -> str:
        """Everything that changes the masked images (a cache key part; not ``prior`` or ``smoothing``, which only
        change the fit); ``fill_key``: the fill's own."""
        return json.dumps({"method": 4, "design": "shifted grids", "masks": self.masks, "cell": self.cell,
                           "shifts": self.shifts, "seed": self.seed, "fill": fill_key}, sort_keys=True)

    @cached_property
    def _kept_pixels(self) -> np.ndarray:
        """:attr:`kept` per pixel, ``bool (masks, 112, 112, 1)`` (13 MB for the default design), built once."""
        return np.repeat(np.repeat(self.kept, self.atom, axis=1), self.atom, axis=2)[..., None]

    def render(self, face: np.ndarray, fill: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Masked faces for masks ``start:stop``: ``uint8 (n, 112, 112, 3)``, removed cells showing ``fill``."""
        return np.where(self._kept_pixels[start:stop], face[None], fill[None])

    def attribution(self, similarities: np.ndarray) -> np.ndarray:
        """Step 4 from the similarities of the first ``n`` masked faces (all of them, or a prefix: the map after
        ``n`` forward passes), as a ``float64 (112, 112)`` map (step 5's atoms)."""
        similarities = np.asarray(similarities, dtype=np.float64)
        if similarities.ndim != 1 or not 2 <= len(similarities) <= self.masks:
            raise ValueError(f"Expected the similarities of the first 2 to {self.masks} masked faces, in order, "
                             f"got shape {similarities.shape}.")
        effects = (self._operator(len(similarities)) @ similarities).reshape(self.side, self.side)
        effects[np.abs(effects) < NEGLIGIBLE] = 0.0  # round-off of the fit, far below float32 embeddings' precision
        return np.repeat(np.repeat(effects, self.atom, axis=0), self.atom, axis=1)

    def _operator(self, count: int) -> np.ndarray:
        """The linear map from the first ``count`` similarities to the atoms' effects (step 4), built once per
        ``count``: ``B (Z^T Z + P)^-1 Z^T`` with ``Z = [1, X B]`` over the components ``B`` and ``P`` the
        penalties (the intercept free; a vanishing ridge, :data:`RIDGE`, picks one of the equal decompositions
        where free components overlap, which leaves ``b`` as it is)."""
        operators = self.__dict__.setdefault("_operators", {})  # a cache beside the frozen fields
        if count not in operators:
            kept = self.kept[:count].reshape(count, -1).astype(np.float64)
            bases, penalties = [], []
            for size, penalty in zip((COARSE, self.cell, self.atom), self.prior):
                if size >= self.atom and IMAGE_SIZE % size == 0 and (not bases or size < bases[-1][0]):
                    bases.append((size, _blocks(self.side, self.atom, size)))
                    penalties.append(np.full(bases[-1][1].shape[1], penalty))
            basis = np.hstack([b for _, b in bases])
            design = np.hstack([np.ones((count, 1)), kept @ basis])
            penalty = np.diag(np.concatenate([[0.0], *penalties]))
            if self.smoothing:
                penalty[1:, 1:] += self.smoothing * basis.T @ _grid_laplacian(self.side) @ basis
            gram = design.T @ design + penalty
            gram[np.diag_indices_from(gram)] += RIDGE * np.trace(gram) / len(gram)  # the free parts overlap
            with threadpool_limits(1, user_api="blas"):  # a small system: threads only contend (20x slower loaded)
                operators[count] = basis @ np.linalg.solve(gram, design.T)[1:]
        return operators[count]


@lru_cache(maxsize=16)
def _blocks(side: int, atom: int, size: int) -> np.ndarray:
    """``(side^2, blocks)``: 1 where an atom lies in a block of ``size`` px of the unshifted grid."""
    index = np.arange(side) * atom // size
    per_side = index.max() + 1
    columns = (index[:, None] * per_side + index[None, :]).ravel()
    out = np.zeros((side * side, per_side * per_side))
    out[np.arange(side * side), columns] = 1.0
    return out


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
