"""A weights-free Local Binary Pattern descriptor (Ahonen et al. 2006): a classical, weak baseline.

Each face (dlib chip geometry, 112 px, grey) is coded with 8-neighbour, radius-1 LBP; the 58 uniform
patterns keep their own bin and all others share one (59 bins). Histograms over a ``grid x grid`` layout of
cells are L1-normalised per cell and square-rooted (Hellinger), so cosine distance compares them sensibly.
"""

from __future__ import annotations

import numpy as np

from xfv.models.base import EmbeddingModel, ModelConfig
from xfv.models.registry import register_model

_NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]


def _uniform_lookup() -> np.ndarray:
    """Map the 256 LBP codes to 59 bins: one per uniform pattern (<= 2 bit transitions), one for the rest."""
    lookup = np.full(256, 58, dtype=np.int64)
    next_bin = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        if sum(bits[i] != bits[(i + 1) % 8] for i in range(8)) <= 2:
            lookup[code] = next_bin
            next_bin += 1
    return lookup


_LOOKUP = _uniform_lookup()
BINS = 59


class LBPModel(EmbeddingModel):
    def __init__(self, grid: int = 8, input_size: int = 112, batch_size: int = 256, flip: bool = False):
        if not isinstance(grid, int) or not 1 <= grid <= input_size // 4:
            raise ValueError(f"grid must be an integer in [1, {input_size // 4}], got {grid!r}.")
        self.grid = grid
        self.batch_size = batch_size
        self.config = ModelConfig(
            name="lbp", input_size=input_size, alignment="dlib", embedding_dim=grid * grid * BINS,
            options={"grid": grid, "flip": bool(flip)},
        )

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        grey = faces.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        n, size = grey.shape[0], grey.shape[1]
        centre = grey[:, 1:-1, 1:-1]
        codes = np.zeros(centre.shape, dtype=np.int64)
        for bit, (dy, dx) in enumerate(_NEIGHBOURS):
            neighbour = grey[:, 1 + dy : size - 1 + dy, 1 + dx : size - 1 + dx]
            codes |= (neighbour >= centre).astype(np.int64) << bit
        bins = _LOOKUP[codes]
        inner = size - 2
        cell_of_row = np.minimum(np.arange(inner) * self.grid // inner, self.grid - 1)
        cell = cell_of_row[:, None] * self.grid + cell_of_row[None, :]
        cells = self.grid * self.grid
        index = (np.arange(n)[:, None, None] * cells + cell[None]) * BINS + bins
        histograms = np.bincount(index.ravel(), minlength=n * cells * BINS).reshape(n, cells, BINS).astype(np.float32)
        histograms /= histograms.sum(axis=2, keepdims=True)
        return np.sqrt(histograms).reshape(n, cells * BINS)


@register_model("lbp", "Local Binary Pattern histograms (weights-free classical baseline)",
                source="computed (Ahonen et al. 2006), no weights", licence="-", input="112 x 112 grey",
                template="dlib face chip (padding 0.25)", lfw="65.75% +- 1.69 (xfv, deep-funneled)")
def create_lbp(**options) -> LBPModel:
    return LBPModel(**options)
