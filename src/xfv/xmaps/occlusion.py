"""Systematic occlusion, Algorithm 1 (method.md §2): patch positions, footprints and occluded images.

A patch of size ``p`` moves over the aligned ``112 x 112`` crop with stride ``s``, left to right, then top to
bottom.

- ``convention="paper"`` (default): ``floor((112 - p) / s)`` positions per axis at ``0, s, 2s, ...`` and
  ``p``-pixel patches, ``N = floor((112 - p) / s)^2`` (441 + 361 + 256 for p = 7, 14, 28 and s = 5).
- ``convention="code"`` (the authors' code): positions ``range(0, 112 - p, s)`` and ``(p + 1)``-pixel patches
  (441 + 400 + 289).

Patch variants (Section 4.4): colour ``black`` / ``gray`` (128) / ``white`` / ``noise`` (uniform in [0, 255],
one seeded noise image per configuration, the patch shows its pixels at the patch's place); ``shape`` square
or round (the disk inscribed in the square); ``soft_edge`` K: the patch's opacity is its footprint blurred
with a Gaussian of sigma K and a K x K kernel (K + 1 when K is even, OpenCV needs odd kernels), zero outside
the image. The blur keeps the patch's total opacity, so the soft part reaches beyond the footprint and a small
patch with a wide blur occludes only faintly. The mask ``M_i`` of Eq. 9 is always the binary footprint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import cv2
import numpy as np

IMAGE_SIZE = 112
COLORS = {"black": 0, "gray": 128, "white": 255, "noise": None}
SHAPES = ("square", "round")
CONVENTIONS = ("paper", "code")

Color = Literal["black", "gray", "white", "noise"]
Shape = Literal["square", "round"]
Convention = Literal["paper", "code"]


def odd_kernel(size: int) -> int:
    """OpenCV's Gaussian kernels must be odd: an even ``size`` becomes ``size + 1``."""
    return size if size % 2 == 1 else size + 1


def grid_positions(patch_size: int, stride: int, convention: Convention = "paper") -> np.ndarray:
    """Top-left corners ``(y, x)`` of every patch position, row by row: ``int (N, 2)``."""
    if convention == "paper":
        starts = np.arange((IMAGE_SIZE - patch_size) // stride) * stride
    elif convention == "code":
        starts = np.arange(0, IMAGE_SIZE - patch_size, stride)
    else:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}.")
    ys, xs = np.meshgrid(starts, starts, indexing="ij")
    return np.stack([ys.ravel(), xs.ravel()], axis=1)


@dataclass(frozen=True)
class OcclusionConfig:
    """Algorithm 1's parameters. Default: the paper's black, sharp, square patches of 7, 14, 28, stride 5."""

    patch_sizes: tuple[int, ...] = (7, 14, 28)
    stride: int = 5
    color: Color = "black"
    soft_edge: int | None = None
    shape: Shape = "square"
    convention: Convention = "paper"
    seed: int = 0

    def __post_init__(self) -> None:
        integers = np.iterable(self.patch_sizes) and all(
            isinstance(p, (int, np.integer)) for p in self.patch_sizes
        )
        sizes = tuple(int(p) for p in self.patch_sizes) if integers else ()
        if not sizes or any(p < 1 or p >= IMAGE_SIZE for p in sizes) or len(set(sizes)) != len(sizes):
            raise ValueError(
                f"patch_sizes must be distinct integers in [1, {IMAGE_SIZE - 1}], got {self.patch_sizes!r}."
            )
        object.__setattr__(self, "patch_sizes", sizes)
        if not isinstance(self.stride, (int, np.integer)) or self.stride < 1:
            raise ValueError(f"stride must be a positive integer, got {self.stride!r}.")
        if self.color not in COLORS:
            raise ValueError(f"color must be one of {sorted(COLORS)}, got {self.color!r}.")
        if self.soft_edge is not None and (
            not isinstance(self.soft_edge, (int, np.integer)) or self.soft_edge < 1
        ):
            raise ValueError(f"soft_edge must be None or a positive integer, got {self.soft_edge!r}.")
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {self.shape!r}.")
        if self.convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {self.convention!r}.")
        for p in sizes:
            if len(grid_positions(p, self.stride, self.convention)) == 0:
                raise ValueError(f"patch size {p} with stride {self.stride} leaves no position on the image.")

    def grid(self, patch_size: int) -> PatchGrid:
        """The positions and patch of one patch size."""
        if patch_size not in self.patch_sizes:
            raise ValueError(f"patch size {patch_size!r} is not one of {self.patch_sizes}.")
        return PatchGrid(self, patch_size)

    def grids(self) -> list[PatchGrid]:
        return [PatchGrid(self, p) for p in self.patch_sizes]

    def count(self) -> int:
        """Occluded images per face, all patch sizes together."""
        return sum(len(grid) for grid in self.grids())

    def cache_key(self, patch_size: int) -> str:
        """Everything that changes the occluded images of one patch size (a cache key part)."""
        fields = {
            "patch_size": patch_size,
            "stride": self.stride,
            "color": self.color,
            "soft_edge": self.soft_edge,
            "shape": self.shape,
            "convention": self.convention,
        }
        if self.color == "noise":
            fields["seed"] = self.seed
        return json.dumps(fields, sort_keys=True)

    def fill(self) -> np.ndarray:
        """What a patch shows: ``uint8 (112, 112, 3)`` (constant colour or seeded uniform noise)."""
        if self.color == "noise":
            return np.random.default_rng(self.seed).integers(
                0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8
            )
        return np.full((IMAGE_SIZE, IMAGE_SIZE, 3), COLORS[self.color], dtype=np.uint8)


class PatchGrid:
    """One patch size of Algorithm 1: positions, binary footprint ``M`` and opacity template."""

    def __init__(self, config: OcclusionConfig, patch_size: int) -> None:
        self.config = config
        self.patch_size = patch_size
        self.positions = grid_positions(patch_size, config.stride, config.convention)
        self.extent = patch_size + 1 if config.convention == "code" else patch_size

    def __len__(self) -> int:
        return len(self.positions)

    @cached_property
    def footprint(self) -> np.ndarray:
        """Binary mask of the patch, ``bool (extent, extent)``: a square or its inscribed disk."""
        e = self.extent
        if self.config.shape == "square":
            return np.ones((e, e), dtype=bool)
        centre = (np.arange(e) + 0.5 - e / 2.0) ** 2
        return centre[:, None] + centre[None, :] <= (e / 2.0) ** 2

    @cached_property
    def opacity(self) -> tuple[np.ndarray, int]:
        """Opacity template ``float32`` and its margin around the footprint (0 for sharp edges)."""
        alpha = self.footprint.astype(np.float32)
        if self.config.soft_edge is None:
            return alpha, 0
        kernel = odd_kernel(self.config.soft_edge)
        margin = kernel // 2
        padded = np.pad(alpha, margin)
        blurred = cv2.GaussianBlur(
            padded, (kernel, kernel), sigmaX=self.config.soft_edge, borderType=cv2.BORDER_CONSTANT
        )
        return blurred, margin

    def masks(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[slice, slice, np.ndarray]]:
        """For each position: the window it covers and the binary footprint ``M_i`` in it (Eq. 9)."""
        for y, x in self.positions[start:stop]:
            yield slice(y, y + self.extent), slice(x, x + self.extent), self.footprint

    def render(
        self, face: np.ndarray, fill: np.ndarray, start: int = 0, stop: int | None = None
    ) -> np.ndarray:
        """Occluded images ``O_i`` for positions ``start:stop``: ``uint8 (n, 112, 112, 3)``."""
        positions = self.positions[start:stop]
        alpha, margin = self.opacity
        size = alpha.shape[0]
        out = np.repeat(face[None], len(positions), axis=0)
        for k, (y, x) in enumerate(positions):
            y0, x0 = y - margin, x - margin
            ys = slice(max(y0, 0), min(y0 + size, IMAGE_SIZE))
            xs = slice(max(x0, 0), min(x0 + size, IMAGE_SIZE))
            a = alpha[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0, None]
            blended = face[ys, xs] * (1.0 - a) + fill[ys, xs] * a
            out[k, ys, xs] = np.rint(blended).astype(np.uint8)
        return out
