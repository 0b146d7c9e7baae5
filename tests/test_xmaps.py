"""X-Maps: Algorithm 1, methods 1-3 (Eq. 6-10), the explainer, its cache and Algorithm 2, on toy models."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from xfv.files import CacheEntryWarning
from xfv.models.base import EmbeddingModel, ModelConfig
from xfv.verification import cosine_distance
from xfv.xmaps import (
    DEFAULT_MASKS,
    METHODS,
    CoalitionDesign,
    Explanation,
    OcclusionCache,
    OcclusionConfig,
    XMapExplainer,
    blend,
)
from xfv.xmaps.methods import (
    blur_map,
    method_distances,
    multiscale_map,
    normalise_map,
    similarity_map,
    unit_rows,
)
from xfv.xmaps.occlusion import grid_positions, odd_kernel

A = (slice(10, 40), slice(10, 40))  # where the toy pair differs
B = (slice(60, 100), slice(60, 100))  # where it agrees


class RegionToy(EmbeddingModel):
    """``f = (1, mean(A) - 1/2, mean(B) - 1/2)`` in grey levels / 255: reads two fixed regions only."""

    config = ModelConfig(name="toy", input_size=112, alignment="none")

    def __init__(self) -> None:
        self.batches: list[int] = []

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        self.batches.append(len(faces))
        a = faces[:, A[0], A[1]].mean(axis=(1, 2, 3)) / 255.0 - 0.5
        b = faces[:, B[0], B[1]].mean(axis=(1, 2, 3)) / 255.0 - 0.5
        return np.stack([np.ones(len(faces)), a, b], axis=1)


class ConstantToy(EmbeddingModel):
    config = ModelConfig(name="constant", input_size=112, alignment="none")

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        return np.ones((len(faces), 4))


@pytest.fixture()
def toy_pair() -> tuple[np.ndarray, np.ndarray]:
    return toy_faces()


def toy_faces() -> tuple[np.ndarray, np.ndarray]:
    """Grey faces; A is white in face 1 and black in face 2, B is white in both."""
    face1 = np.full((112, 112, 3), 128, dtype=np.uint8)
    face2 = face1.copy()
    face1[A] = 255
    face2[A] = 0
    face1[B] = face2[B] = 255
    return face1, face2


def _argext(values: np.ndarray, which) -> tuple[int, int]:
    return tuple(int(v) for v in np.unravel_index(which(values), values.shape))


def _inside(point: tuple[int, int], region: tuple[slice, slice]) -> bool:
    return region[0].start <= point[0] < region[0].stop and region[1].start <= point[1] < region[1].stop


# Algorithm 1 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("convention, counts", [("paper", [441, 361, 256]), ("code", [441, 400, 289])])
def test_position_counts_of_both_conventions(convention, counts):
    assert [len(grid_positions(p, 5, convention)) for p in (7, 14, 28)] == counts
    assert OcclusionConfig(convention=convention).count() == sum(counts)


def test_positions_run_left_to_right_then_top_to_bottom():
    positions = grid_positions(28, 5)
    assert positions[:2].tolist() == [[0, 0], [0, 5]]
    assert positions[16].tolist() == [5, 0]
    assert positions.max() + 28 <= 112


def test_sharp_black_square_patch_replaces_exactly_its_pixels():
    face = np.full((112, 112, 3), 200, dtype=np.uint8)
    grid = OcclusionConfig().grid(14)
    occluded = grid.render(face, OcclusionConfig().fill(), 20, 22)
    assert occluded.shape == (2, 112, 112, 3) and occluded.dtype == np.uint8
    y, x = grid.positions[20]
    expected = face.copy()
    expected[y : y + 14, x : x + 14] = 0
    np.testing.assert_array_equal(occluded[0], expected)


def test_code_convention_draws_patches_one_pixel_larger():
    face = np.full((112, 112, 3), 200, dtype=np.uint8)
    config = OcclusionConfig(patch_sizes=(7,), convention="code", color="white")
    occluded = config.grid(7).render(face, config.fill(), 0, 1)[0]
    assert (occluded[..., 0] == 255).sum() == 8 * 8


def test_round_patch_is_the_inscribed_disk():
    grid = OcclusionConfig(shape="round").grid(28)
    footprint = grid.footprint
    assert footprint.shape == (28, 28)
    assert footprint[14, 14] and not footprint[0, 0] and not footprint[27, 27]
    assert abs(footprint.sum() - np.pi * 14**2) < 0.03 * 28**2
    np.testing.assert_array_equal(footprint, footprint.T)
    np.testing.assert_array_equal(footprint, footprint[::-1])


@pytest.mark.parametrize("soft_edge", [7, 14, 56])
def test_soft_edges_spread_the_patch_without_changing_its_total_opacity(soft_edge):
    grid = OcclusionConfig(soft_edge=soft_edge).grid(14)
    opacity, margin = grid.opacity
    assert margin == odd_kernel(soft_edge) // 2
    assert opacity.max() < 1.0
    assert opacity.sum() == pytest.approx(14 * 14, rel=0.01)
    face = np.full((112, 112, 3), 200, dtype=np.uint8)
    occluded = grid.render(face, OcclusionConfig().fill(), 180, 181)[0]
    y, x = grid.positions[180]
    outside = np.ones((112, 112), dtype=bool)
    outside[y : y + 14, x : x + 14] = False
    assert (occluded[outside] < 200).any()  # the soft edge reaches beyond the footprint


def test_noise_is_seeded_and_shown_through_the_patch():
    assert np.array_equal(
        OcclusionConfig(color="noise").fill(), OcclusionConfig(color="noise", seed=0).fill()
    )
    assert not np.array_equal(
        OcclusionConfig(color="noise").fill(), OcclusionConfig(color="noise", seed=1).fill()
    )
    config = OcclusionConfig(color="noise", patch_sizes=(7,))
    fill = config.fill()
    occluded = config.grid(7).render(np.zeros((112, 112, 3), np.uint8), fill, 0, 1)[0]
    np.testing.assert_array_equal(occluded[:7, :7], fill[:7, :7])
    assert not occluded[7:, 7:].any()


@pytest.mark.parametrize("color, value", [("black", 0), ("gray", 128), ("white", 255)])
def test_constant_colours(color, value):
    assert (OcclusionConfig(color=color).fill() == value).all()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"patch_sizes": (0,)}, "patch_sizes"),
        ({"patch_sizes": (112,)}, r"\(112,\)"),
        ({"patch_sizes": (7, 7)}, "distinct"),
        ({"patch_sizes": ()}, "patch_sizes"),
        ({"patch_sizes": "7"}, "got '7'"),
        ({"patch_sizes": 7}, "got 7"),
        ({"stride": 0}, "stride must be a positive integer, got 0"),
        ({"stride": 200}, "leaves no position"),
        ({"color": "pink"}, "'pink'"),
        ({"shape": "star"}, "'star'"),
        ({"convention": "mine"}, "'mine'"),
        ({"soft_edge": 0}, "soft_edge"),
    ],
)
def test_invalid_occlusion_configurations_name_the_bad_value(options, message):
    with pytest.raises(ValueError, match=message):
        OcclusionConfig(**options)


def test_odd_kernels_for_opencv():
    assert [odd_kernel(s) for s in (5, 4, 14, 56, 7)] == [5, 5, 15, 57, 7]


# Methods, Eq. 6-10 ---------------------------------------------------------------------------------------


def test_methods_match_the_equations_computed_pair_by_pair(rng):
    f1, f2 = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    o1, o2 = rng.normal(size=5), rng.normal(size=5)
    u1, u2, v1, v2 = unit_rows(f1), unit_rows(f2), unit_rows(o1), unit_rows(o2)
    every = np.array([[cosine_distance(a, b) for b in f2] for a in f1])
    d1, d2 = method_distances(1, u1, u2, v1, v2)
    np.testing.assert_allclose(d1, every.mean(axis=1), atol=1e-12)
    np.testing.assert_allclose(d2, every.mean(axis=0), atol=1e-12)
    d1, d2 = method_distances(2, u1, u2, v1, v2)
    np.testing.assert_allclose(d1, [cosine_distance(a, o2) for a in f1], atol=1e-12)
    np.testing.assert_allclose(d2, [cosine_distance(o1, b) for b in f2], atol=1e-12)
    d1, d2 = method_distances(3, u1, u2, v1, v2)
    np.testing.assert_allclose(d1, cosine_distance(f1, f2), atol=1e-12)
    assert d1 is d2
    with pytest.raises(ValueError, match=r"method must be one of \(1, 2, 3\), got 4"):
        method_distances(4, u1, u2, v1, v2)


def test_similarity_map_is_eq_9_by_hand():
    grid = OcclusionConfig(patch_sizes=(28,)).grid(28)
    distances = np.full(len(grid), 0.3)
    distances[0] = 0.5  # occluding (0, 0) pushes the faces apart
    distances[1] = 0.2  # occluding (0, 5) brings them together
    s = similarity_map(distances, 0.3, grid)
    n = len(grid)
    assert s[0, 0] == pytest.approx(0.2 / n)
    assert s[10, 10] == pytest.approx((0.2 - 0.1) / n)
    assert s[0, 30] == pytest.approx(-0.1 / n)
    assert s[50, 50] == 0.0
    with pytest.raises(ValueError, match="Expected 256 distances"):
        similarity_map(distances[:3], 0.3, grid)


def test_coalition_design_pairs_complements_on_shifted_grids_and_covers_every_coalition_size():
    design = CoalitionDesign()
    kept = design.kept
    assert kept.shape == (1058, 16, 16) and design.masks == 1058 and design.atom == 7
    np.testing.assert_array_equal(kept[0::2], ~kept[1::2])  # complementary pairs, side by side
    shares = kept[0::2].mean(axis=(1, 2))
    assert 0 < shares.min() < 0.05 and 0.95 < shares.max() < 1 and abs(np.median(shares) - 0.5) < 0.1  # uniform sizes
    assert design.offsets() == [(0, 0), (0, 7), (7, 0), (7, 7)]
    for k, (dy, dx) in enumerate(design.offsets()):  # pair k keeps whole cells of grid k mod 4
        pixels = np.repeat(np.repeat(kept[2 * k], 7, 0), 7, 1)
        padded = np.pad(pixels, ((dy, 14 - dy), (dx, 14 - dx)), mode="edge")[: 126, : 126]
        cells = padded.reshape(9, 14, 9, 14)
        assert (cells.min(axis=(1, 3)) == cells.max(axis=(1, 3))).all(), (dy, dx)
    np.testing.assert_array_equal(CoalitionDesign().kept, kept)  # seeded: the same design for every face
    assert not np.array_equal(CoalitionDesign(seed=1).kept, kept)
    np.testing.assert_array_equal(CoalitionDesign(masks=200).kept, kept[:200])  # a smaller design: a prefix
    assert design.masks == DEFAULT_MASKS == 1058


def test_former_design_recovers_an_additive_model_by_hand(rng):
    """One grid and no prior (the former method 4): if the similarity is b_0 + sum_c b_c [c kept], the least-squares
    fit returns every b_c (step 4)."""
    design = CoalitionDesign(masks=200, cell=28, shifts=1, prior=(0, 0, 0))  # 4 x 4 cells
    effects = rng.normal(size=(4, 4))
    similarities = 0.3 + (design.kept * effects).sum(axis=(1, 2))
    attribution = design.attribution(similarities)
    assert attribution.shape == (112, 112)
    np.testing.assert_allclose(attribution[::28, ::28], effects, atol=1e-8)
    np.testing.assert_allclose(attribution[27, 55], effects[0, 1], atol=1e-8)  # each pixel: its cell's b_c
    with pytest.raises(ValueError, match=r"Expected the similarities of the first 2 to 200 masked faces"):
        design.attribution(similarities[:1])
    with pytest.raises(ValueError, match=r"got shape \(201,\)"):
        design.attribution(np.zeros(201))


def test_the_multiscale_fit_solves_the_penalised_least_squares(rng):
    """Step 4 against a stacked least-squares problem built here row by row: the similarities, then one row per
    penalised component (sqrt(lambda) on the component, 0 as target); atoms = 28 px block + cell + own part."""
    design = CoalitionDesign(masks=120, cell=28, shifts=2, prior=(2.0, 3.0, 7.0))  # 14 px atoms, 8 x 8
    similarities = rng.normal(size=120)
    atoms = design.kept.reshape(120, 64).astype(float)
    index = np.arange(8)
    block = (index[:, None] // 2 * 4 + index[None, :] // 2).ravel()  # 28 px blocks: 2 x 2 atoms
    # parameters: intercept, 16 blocks of 28 px (prior 2) and 64 atoms (prior 7); the coarsest component and the
    # cells are both 28 px here, so the cells' component (prior 3) is left out as redundant
    columns = 1 + 16 + 64
    rows = [np.concatenate([[1.0], [a[block == q].sum() for q in range(16)], a]) for a in atoms]
    targets = list(similarities)
    for j in range(16 + 64):
        row = np.zeros(columns)
        row[1 + j] = np.sqrt(2.0 if j < 16 else 7.0)
        rows.append(row)
        targets.append(0.0)
    solution = np.linalg.lstsq(np.array(rows), np.array(targets), rcond=None)[0]
    expected = (solution[1:17][block] + solution[17:]).reshape(8, 8)
    np.testing.assert_allclose(design.attribution(similarities)[::14, ::14], expected, atol=1e-7)


def test_smoothing_solves_the_penalised_fit(rng):
    """With smoothing lambda the atoms' effects minimise |s - b_0 - X b|^2 + lambda sum (b_a - b_a')^2 over
    4-neighbours: checked against a stacked least-squares problem built here, row by row."""
    design = CoalitionDesign(masks=200, cell=28, shifts=1, prior=(0, 0, 0), smoothing=7.5)
    similarities = rng.normal(size=200)
    rows = [np.concatenate([[1.0], kept.ravel()]) for kept in design.kept.astype(float)]
    targets = list(similarities)
    for y in range(4):
        for x in range(4):
            for dy, dx in ((0, 1), (1, 0)):
                if y + dy < 4 and x + dx < 4:
                    row = np.zeros(17)
                    row[1 + 4 * y + x], row[1 + 4 * (y + dy) + x + dx] = np.sqrt(7.5), -np.sqrt(7.5)
                    rows.append(row)
                    targets.append(0.0)
    expected = np.linalg.lstsq(np.array(rows), np.array(targets), rcond=None)[0][1:].reshape(4, 4)
    np.testing.assert_allclose(design.attribution(similarities)[::28, ::28], expected, atol=1e-7)
    plain = CoalitionDesign(masks=200, cell=28, shifts=1, prior=(0, 0, 0)).attribution(similarities)[::28, ::28]
    assert np.ptp(expected) < np.ptp(plain)  # smoother: the effects spread less
    assert design.cache_key("{}") == CoalitionDesign(masks=200, cell=28, shifts=1).cache_key("{}")  # same faces


class SquareToy(EmbeddingModel):
    """Sees only one 7 px aligned square, rows 35-49, columns 63-70 (two atoms, straddling two 14 px cells)."""

    config = ModelConfig(name="square", input_size=112, alignment="none")

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        inside = faces[:, 35:49, 63:70].mean(axis=(1, 2, 3)) / 255.0 - 0.5
        return np.stack([np.ones(len(faces)), inside], axis=1)


def test_a_model_that_sees_one_small_region_gets_a_map_of_that_region_at_7_px(rng):
    """The shifted grids resolve 7 px with 512 masks or more (default 1,058): the map of a model that reads two
    atoms (an area smaller than a 14 px cell, straddling two of them) is largest on those atoms, and beyond their
    7 px neighbours it stays under a quarter of their value (measured: 20 %; the prior spreads some of it over
    their cells, up to 58 % on the nearest atoms). With 256 masks the prior weighs more: the largest atom is one
    of the two, but the map spreads up to 38 % of their value beyond their neighbours, and on 3 of 8 random faces
    the second largest atom is a neighbour (docs/faithfulness.md, "Mask budget"). The former one-grid design can
    only mark the two whole 14 px cells."""
    face = rng.integers(150, 256, (112, 112, 3), dtype=np.uint8)
    model = SquareToy()
    other = model.embed(face[None])[0]
    fill = np.zeros_like(face)

    def effects(design: CoalitionDesign) -> np.ndarray:
        masked = model.embed(design.render(face, fill))
        similarities = masked @ other / (np.linalg.norm(masked, axis=1) * np.linalg.norm(other))
        return design.attribution(similarities)

    near = np.zeros((16, 16), dtype=bool)
    near[4:8, 8:11] = True  # the two atoms and their neighbours
    for design in (CoalitionDesign(), CoalitionDesign(masks=512)):
        atoms = effects(design)[::7, ::7]
        assert set(zip(*np.unravel_index(np.argsort(atoms, axis=None)[-2:], atoms.shape))) == {(5, 9), (6, 9)}
        assert np.abs(atoms[~near]).max() < 0.25 * atoms[5:7, 9].min(), design.masks
    atoms = effects(CoalitionDesign(masks=256))[::7, ::7]
    assert np.unravel_index(np.argmax(atoms), atoms.shape) in {(5, 9), (6, 9)}
    assert 0.25 * atoms[5:7, 9].max() < np.abs(atoms[~near]).max() < 0.5 * atoms[5:7, 9].max()  # coarser
    former = effects(CoalitionDesign(shifts=1, prior=(0, 0, 0)))[::14, ::14]  # 14 px cells
    assert former[2:4, 4].min() > 0 and np.isclose(former[2, 4], former[3, 4], rtol=0.2)  # both cells, no finer


def test_a_fit_on_the_first_masks_is_a_coarse_version_of_the_final_map(rng):
    """Progressive display: the fit on any even prefix is a map; with few masks the prior keeps it coarse (28 px
    blocks), and it approaches the final map as masks arrive."""
    design = CoalitionDesign()
    effects = np.zeros((16, 16))
    effects[4:8, 2:6] = 1.0  # a 28 px block that matters
    effects[5, 9] = 0.5  # and one atom
    similarities = 0.2 + design.kept.reshape(1058, -1) @ effects.ravel() * 0.01
    similarities += rng.normal(scale=0.002, size=1058)
    final = design.attribution(similarities)
    correlations = []
    for count in (64, 128, 256, 1058):
        early = design.attribution(similarities[:count])
        assert early.shape == (112, 112) and np.isfinite(early).all()
        correlations.append(np.corrcoef(early.ravel(), final.ravel())[0, 1])
        assert early[35, 21] > early[100, 100], count  # the block shows from the start
    assert correlations == sorted(correlations) and correlations[0] > 0.6 and correlations[-1] == pytest.approx(1.0)
    early = design.attribution(similarities[:64])[::7, ::7]
    assert np.ptp(early[4:8, 2:6]) < 0.5 * np.ptp(early)  # coarse: the block is nearly one value


def test_coalition_masks_show_the_fill_where_a_cell_is_removed(rng):
    design = CoalitionDesign(masks=200)
    face = rng.integers(1, 255, (112, 112, 3), dtype=np.uint8)
    fill = np.zeros_like(face)
    images = design.render(face, fill, 3, 7)
    assert images.shape == (4, 112, 112, 3) and images.dtype == np.uint8
    for image, kept in zip(images, design.kept[3:7]):
        pixels = np.repeat(np.repeat(kept, 7, 0), 7, 1)
        np.testing.assert_array_equal(image[pixels], face[pixels])
        assert not image[~pixels].any()


@pytest.mark.parametrize("arguments", [
    {"cell": 10}, {"cell": 0}, {"masks": 1057}, {"masks": 0}, {"masks": 10**9}, {"shifts": 3}, {"shifts": 0},
    {"seed": -1}, {"prior": (1.0, 2.0)}, {"prior": (-1.0, 2.0, 3.0)}, {"prior": (1.0, 2.0, float("inf"))},
    {"prior": "abc"},
    {"smoothing": -1.0}, {"smoothing": float("nan")}, {"smoothing": float("inf")}, {"smoothing": "1"},
])
def test_a_bad_coalition_design_is_a_clear_error(arguments):
    with pytest.raises(ValueError, match="cell must|masks must|shifts must|seed must|prior must|"
                                         "smoothing must be a finite number >= 0"):
        CoalitionDesign(**arguments)


def test_multiscale_map_weights_by_patch_area():
    maps = {7: np.ones((112, 112)), 14: np.ones((112, 112))}
    np.testing.assert_allclose(multiscale_map(maps), (1 / 49 + 1 / 196) / 2)


def test_normalisation_keeps_zero_and_sign():
    values = np.array([[-2.0, 0.0], [1.0, 0.5]])
    normalised = normalise_map(values)
    assert normalised.dtype == np.float32
    np.testing.assert_allclose(normalised, [[-1.0, 0.0], [0.5, 0.25]])
    zero = normalise_map(np.zeros((112, 112)))
    assert not zero.any() and np.isfinite(zero).all()


@pytest.mark.parametrize("stride", [4, 5])
def test_blur_accepts_even_strides_and_keeps_constants(stride):
    np.testing.assert_allclose(blur_map(np.full((112, 112), 0.25), stride), 0.25)
    impulse = np.zeros((112, 112))
    impulse[56, 56] = 1.0
    blurred = blur_map(impulse, stride)
    assert blurred.sum() == pytest.approx(1.0)
    assert (blurred > 0).sum() == odd_kernel(stride) ** 2


# The explainer ------------------------------------------------------------------------------------------


def test_each_method_marks_the_known_regions(toy_pair):
    explanation = XMapExplainer(RegionToy()).explain(*toy_pair)
    assert isinstance(explanation, Explanation)
    assert explanation.distance == pytest.approx(float(cosine_distance([1, 0.5, 0.5], [1, -0.5, 0.5])))
    for method in (1, 2, 3, 4):
        for image in (1, 2):
            values = explanation.map(method, image)
            assert values.dtype == np.float32 and values.shape == (112, 112)
            assert np.abs(values).max() == pytest.approx(1.0)
    # Occluding A (where the faces differ) brings them together: dissimilar; B (shared): similar.
    for method, image in [(1, 1), (2, 1), (3, 1), (3, 2), (4, 1)]:
        values = explanation.map(method, image)
        assert _inside(_argext(values, np.argmin), A), (method, image)
        assert _inside(_argext(values, np.argmax), B), (method, image)
    # Method 3 has one map; far from A and B nothing changes.
    np.testing.assert_array_equal(explanation.map(3, 1), explanation.map(3, 2))
    assert abs(explanation.map(3, 1)[5, 105]) < 1e-6
    # Method 2, image 2: A is black already, so occluding it changes nothing (away from patches that reach B);
    # occluding B separates the faces.
    image2 = explanation.map(2, 2)
    assert np.abs(image2[10:28, 10:28]).max() < 1e-6
    assert image2[80, 80] > 0.5 and _inside(_argext(image2, np.argmax), B)


def test_each_patch_size_map_is_its_eq_9_map_blurred_and_normalised(toy_pair):
    explanation = XMapExplainer(RegionToy()).explain(*toy_pair)
    for method in (1, 2, 3):
        assert sorted(explanation.scale_maps[method]) == [7, 14, 28]
        for image in (1, 2):
            per_size = {p: explanation.scale_map(method, image, p) for p in (7, 14, 28)}
            for values in per_size.values():
                assert values.dtype == np.float32 and np.abs(values).max() == pytest.approx(1.0)
                assert _inside(_argext(values, np.argmax), B) or (method, image) == (2, 2)
            assert not np.allclose(per_size[7], per_size[28])
    with pytest.raises(ValueError, match="patch size 9 was not computed"):
        explanation.scale_map(1, 1, 9)


class LeftHalfToy(EmbeddingModel):
    """Mean grey level minus 128 of each 8 x 8 block of the image's left half: blind to the right half."""

    config = ModelConfig(name="left", input_size=112, alignment="none")

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        left = faces[:, :, :56].reshape(len(faces), 14, 8, 7, 8 * 3).mean(axis=(2, 4))
        return (left - 128.0).reshape(len(faces), -1)


@pytest.mark.parametrize("method", METHODS)
def test_a_model_that_sees_only_the_left_half_gets_maps_of_the_left_half_only(method, rng):
    faces = [
        np.repeat(np.repeat(rng.integers(0, 256, (14, 14, 3), dtype=np.uint8), 8, 0), 8, 1) for _ in "ab"
    ]
    explanation = XMapExplainer(LeftHalfToy()).explain(*faces, methods=(method,))
    reach = 56 + 28 + 2  # the widest patch that still touches the left half, plus the blur's radius
    for image in (1, 2):
        values = explanation.map(method, image)
        # Method 1 (Eq. 6) measures from d_orig, not from mean_j d(N(I1), F2_j): patches the model ignores
        # carry a constant offset, which Eq. 9's sum spreads as the pattern of patch coverage (faint, not 0).
        # Method 4 fits its atoms' effects on a finite random design: atoms the model ignores keep some sampling
        # noise (the effects of the left cells are not exactly additive; 256 atoms are noisier than the former
        # 64 cells), and the prior, shrinking the left atoms in a design whose cells go together through the
        # shares, moves a little of their effect elsewhere (measured: 0.149 and 0.158 of the peak).
        tolerance = {1: 0.05, 4: 0.2}.get(method, 1e-6)
        assert np.abs(values[:, reach:]).max() < tolerance, (method, image)
        # Between 56 and the reach, patches that straddle the middle spread their effect over their footprint.
        assert np.abs(values[:, :56]).mean() > (5 if method == 4 else 2) * np.abs(values[:, 56:]).mean(), (method, image)
    if method == 4:  # 256 masks: noisier and more prior (measured: 0.378 and 0.243 of the peak on the right half)
        cheap = XMapExplainer(LeftHalfToy(), coalitions=CoalitionDesign(masks=256)).explain(*faces, methods=(4,))
        leaks = [np.abs(cheap.map(4, image)[:, reach:]).max() for image in (1, 2)]
        assert max(leaks) > 0.2 and all(leak < 0.45 for leak in leaks), leaks


def test_maps_do_not_depend_on_the_batch_size(toy_pair):
    results = [XMapExplainer(RegionToy(), batch_size=b).explain(*toy_pair) for b in (7, 64, 5000)]
    for other in results[1:]:
        for method in (1, 2, 3, 4):
            for image in (1, 2):
                np.testing.assert_array_equal(results[0].map(method, image), other.map(method, image))
                np.testing.assert_array_equal(
                    results[0].raw_maps[method][image - 1], other.raw_maps[method][image - 1]
                )


def test_one_bounded_embedding_pass_per_face_for_all_methods(toy_pair):
    model = RegionToy()
    model.batch_size = 1000  # the explainer, not the model, must bound the batches
    progress: list[tuple[int, int]] = []
    explanation = XMapExplainer(model, batch_size=50).explain(
        *toy_pair, progress=lambda *a: progress.append(a)
    )
    # per face: the original, 1,058 occlusions (methods 1-3) and 1,058 masks (method 4)
    assert explanation.forward_passes == sum(model.batches) == 2 * (1 + 1058 + 1058)
    assert max(model.batches) == 50
    assert progress[-1] == (4234, 4234) and all(a[0] < b[0] for a, b in itertools.pairwise(progress))
    assert set(explanation.timings) == {"embed", "maps", "total"}


def test_a_face_paired_with_itself_is_embedded_once(toy_pair):
    explanation = XMapExplainer(RegionToy()).explain(toy_pair[0], toy_pair[0].copy())
    assert explanation.forward_passes == 1 + 1058 + 1058
    assert explanation.distance == pytest.approx(0.0, abs=1e-12)


def test_code_convention_and_a_subset_of_methods(toy_pair):
    explainer = XMapExplainer(RegionToy(), occlusion=OcclusionConfig(convention="code"))
    explanation = explainer.explain(*toy_pair, methods=(3,))
    assert explanation.forward_passes == 2 * (1 + 1130)
    assert list(explanation.maps) == [3]
    with pytest.raises(ValueError, match="method 1 was not computed"):
        explanation.map(1, 1)
    with pytest.raises(ValueError, match="image must be 1 or 2, got 3"):
        explanation.map(3, 3)


def test_a_model_that_ignores_the_image_gives_zero_maps(toy_pair):
    explanation = XMapExplainer(ConstantToy()).explain(*toy_pair)
    for method in (1, 2, 3, 4):
        values = explanation.map(method, 1)
        assert np.isfinite(values).all() and not values.any()


def test_cache_is_hit_for_a_repeated_face(toy_pair, tmp_path):
    cache = OcclusionCache(tmp_path)
    explainer = XMapExplainer(RegionToy(), cache=cache)
    first = explainer.explain(*toy_pair)
    assert first.forward_passes == 2 * (1 + 1058 + 1058)
    again = explainer.explain(*toy_pair)
    assert again.forward_passes == 0
    for method in (1, 2, 3):
        np.testing.assert_array_equal(first.map(method, 1), again.map(method, 1))
    third = toy_pair[1].copy()
    third[0, 0] = 7
    assert explainer.explain(toy_pair[0], third).forward_passes == 1 + 2 * 1058  # face 1 comes from the cache
    # Only patch size 14 is new under another configuration sharing 7 and 28's occlusions.
    shared = XMapExplainer(RegionToy(), occlusion=OcclusionConfig(patch_sizes=(7, 28)), cache=cache)
    assert shared.explain(*toy_pair).forward_passes == 0
    other = XMapExplainer(RegionToy(), occlusion=OcclusionConfig(color="white"), cache=cache)
    assert other.explain(*toy_pair).forward_passes == 2 * 2 * 1058  # white occlusions and white-filled masks


def test_unreadable_cache_entries_are_recomputed(toy_pair, tmp_path):
    explainer = XMapExplainer(RegionToy(), cache=OcclusionCache(tmp_path))
    first = explainer.explain(*toy_pair)
    entries = sorted(tmp_path.rglob("*.entry"))
    assert len(entries) == 2 * 5 and not list(tmp_path.rglob(".tmp-*"))  # original, 3 patch sizes, masks
    entries[0].write_bytes(b"not a cache entry")
    with pytest.warns(CacheEntryWarning, match=str(entries[0])):
        again = explainer.explain(*toy_pair)
    assert 0 < again.forward_passes < 4234
    np.testing.assert_array_equal(first.map(1, 2), again.map(1, 2))


def test_default_cache_folder_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("XFV_CACHE_DIR", str(tmp_path))
    assert OcclusionCache().directory == tmp_path / "xmaps"


@pytest.mark.parametrize(
    "face, message",
    [
        (
            np.zeros((100, 100, 3), np.uint8),
            r"face1 must be an aligned crop of shape \(112, 112, 3\), got shape \(100, 100, 3\)",
        ),
        (np.zeros((112, 112, 3), np.float32), "face1 must be uint8 in \\[0, 255\\], got dtype float32"),
        (np.zeros((1, 112, 112, 3), np.uint8), r"\(1, 112, 112, 3\)"),
    ],
)
def test_bad_faces_are_named(face, message, toy_pair):
    with pytest.raises(ValueError, match=message):
        XMapExplainer(RegionToy()).explain(face, toy_pair[1])


def test_a_face_that_is_not_an_array_is_named(toy_pair):
    with pytest.raises(
        TypeError, match="face1 must be a numpy array, got list|face1 must be a numpy array of shape"
    ):
        XMapExplainer(RegionToy()).explain([[0]], toy_pair[1])


def test_bad_arguments_are_named(toy_pair):
    with pytest.raises(
        ValueError, match=r"methods must be a non-empty selection of \(1, 2, 3, 4\), got \(5,\)"
    ):
        XMapExplainer(RegionToy()).explain(*toy_pair, methods=(5,))
    with pytest.raises(ValueError, match=r"got \(\)"):
        XMapExplainer(RegionToy()).explain(*toy_pair, methods=())
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        XMapExplainer(RegionToy(), batch_size=0)
    with pytest.raises(TypeError, match="embed"):
        XMapExplainer(object())


# Algorithm 2 --------------------------------------------------------------------------------------------


def _lightness(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2HLS)[..., 1]


@pytest.mark.parametrize("colormap", ["red-green", "PiYG"])
def test_blend_keeps_the_faces_lightness(rng, colormap):
    face = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    values = rng.uniform(-1, 1, (112, 112))
    blended = blend(face, values, colormap)
    assert blended.dtype == np.uint8 and blended.shape == face.shape
    np.testing.assert_allclose(_lightness(blended), _lightness(face), atol=1.0 / 255)


def test_blend_colours_similar_green_dissimilar_red_and_zero_grey():
    face = np.full((112, 112, 3), 128, dtype=np.uint8)
    values = np.zeros((112, 112))
    values[:, :40] = -1.0
    values[:, 80:] = 1.0
    blended = blend(face, values).astype(int)
    red, grey, green = blended[50, 10], blended[50, 60], blended[50, 100]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    assert green[1] > 200 and green[0] < 60 and green[2] < 60
    assert grey[0] == grey[1] == grey[2] == 128


def test_blend_resizes_the_map_and_rejects_bad_input():
    face = np.full((224, 224, 3), 100, dtype=np.uint8)
    assert blend(face, np.zeros((112, 112))).shape == (224, 224, 3)
    with pytest.raises(ValueError, match="colormap must be one of"):
        blend(face, np.zeros((112, 112)), "jet")
    with pytest.raises(ValueError, match=r"shape \(224, 224\)"):
        blend(face[..., 0], np.zeros((112, 112)))
    with pytest.raises(ValueError, match=r"got shape \(112,\)"):
        blend(face, np.zeros(112))
