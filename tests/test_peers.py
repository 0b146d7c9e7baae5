"""The peers' explainers (RISE, CorrRISE, KernelSHAP, LIME): known answers on toy models, their masks, the budget,
the cache, the benchmark's use of them and their errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from xfv.models.base import EmbeddingModel, ModelConfig
from xfv.xmaps import OcclusionCache, XMapExplainer
from xfv.xmaps.methods import unit_rows
from xfv.xmaps.peers import LIME, PEERS, RISE, CorrRISE, KernelSHAP, make_peers

REGION = (slice(28, 56), slice(56, 84))  # a 28 px square on the 14 px cells: rows 2-3, columns 4-5
CELLS = [(2, 4), (2, 5), (3, 4), (3, 5)]


class SquareToy(EmbeddingModel):
    """Sees only :data:`REGION`: ``f = (1, mean grey level of the square / 255 - 1/2)``."""

    config = ModelConfig(name="square", input_size=112, alignment="none")

    def __init__(self) -> None:
        self.calls = 0

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        self.calls += len(faces)
        inside = faces[:, REGION[0], REGION[1]].mean(axis=(1, 2, 3)) / 255.0 - 0.5
        return np.stack([np.ones(len(faces)), inside], axis=1)


def _faces(rng) -> tuple[np.ndarray, np.ndarray]:
    face1 = rng.integers(150, 256, (112, 112, 3), dtype=np.uint8)
    return face1, face1.copy()  # a genuine pair: removing the square lowers the similarity


def _raw_map(peer, model, face1, face2) -> np.ndarray:
    fill = np.zeros_like(face1)
    other = unit_rows(model.embed(face2[None]))[0]
    similarities = unit_rows(model.embed(peer.render(face1, fill))) @ other
    return peer.attribution(similarities, float(unit_rows(model.embed(face1[None]))[0] @ other))


@pytest.mark.parametrize(
    "peer, reach",
    [
        (RISE(masks=4000), 32),  # a grid point of RISE's bilinear masks reaches one cell (16 px), the shift another
        (CorrRISE(masks=2000), 24),  # one square of the masks
        (KernelSHAP(masks=400), 0),  # the cells themselves
        (LIME(masks=400), 0),
    ],
    ids=lambda value: getattr(value, "name", str(value)),
)
def test_a_model_that_sees_one_square_gets_a_map_of_that_square_at_the_peers_resolution(peer, reach, rng):
    """Beyond the square and the peer's reach the map is flat: the same value up to sampling noise (0 for all but
    CorrRISE, whose fixed number of squares per mask makes any kept pixel a sign that the squares fell elsewhere,
    the square included: a negative offset everywhere, which leaves the order of the pixels alone)."""
    values = _raw_map(peer, SquareToy(), *_faces(rng))
    assert values.shape == (112, 112)
    inside = np.zeros((112, 112), dtype=bool)
    inside[REGION] = True
    near = np.zeros_like(inside)
    near[max(28 - reach, 0) : 56 + reach, max(56 - reach, 0) : 84 + reach] = True
    beyond = values[~near]
    level = 0.0 if peer.name != "CorrRISE" else float(np.median(beyond))
    contrast = values[inside].mean() - level
    assert values[inside].min() > beyond.max()  # the square makes the faces similar: it comes first
    assert np.abs(beyond - level).max() < (0.12 if peer.name != "CorrRISE" else 0.25) * contrast, peer.name


@pytest.mark.parametrize("kind", [KernelSHAP, LIME])
def test_cell_peers_recover_an_additive_similarity(kind, rng):
    """A similarity ``b_0 + sum_c b_c [cell c kept]``: KernelSHAP's Shapley values are the ``b_c`` exactly
    (efficiency holds), LIME's ridge coefficients nearly (its penalty shrinks them a little)."""
    peer = kind(masks=300, cell=28)  # 4 x 4 cells
    effects = rng.normal(size=16)
    coalitions = peer._coalitions()
    similarities = 0.3 + coalitions.astype(float) @ effects
    values = peer.attribution(similarities, intact=0.3 + effects.sum())
    assert values.shape == (112, 112)
    cells = values[::28, ::28].ravel()
    error = np.abs(cells - effects).max() / np.abs(effects).max()
    assert error < (1e-8 if kind is KernelSHAP else 0.05)  # LIME's ridge penalty (alpha 1) shrinks a little
    np.testing.assert_array_equal(values[:28, :28], cells[0])  # a cell's value on all its pixels


def test_rise_masks_follow_the_paper(rng):
    peer = RISE(masks=400, grid=7, keep=0.5)
    soft = peer.soft
    assert soft.shape == (400, 112, 112) and soft.min() >= 0 and soft.max() <= 1
    assert abs(soft.mean() - 0.5) < 0.03  # each cell kept with p = 0.5
    assert np.unique(soft[0]).size > 2  # bilinear: soft edges
    np.testing.assert_array_equal(RISE(masks=400).soft, soft)  # seeded
    face, fill = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8), np.full((112, 112, 3), 7, dtype=np.uint8)
    image = peer.render(face, fill, 5, 6)[0]
    np.testing.assert_allclose(image, np.rint(face * soft[5, ..., None] + 7 * (1 - soft[5, ..., None])), atol=0)
    similarities = rng.normal(size=400)
    values = peer.attribution(similarities, intact=1.0)
    for y, x in [(0, 0), (50, 70)]:  # sum_i (s_i - mean s) M_i(x) / (N p), by hand
        expected = sum((s - similarities.mean()) * m for s, m in zip(similarities, soft[:, y, x])) / (400 * 0.5)
        assert values[y, x] == pytest.approx(expected, rel=1e-5)


def test_corrrise_is_the_pixelwise_correlation(rng):
    peer = CorrRISE(masks=300, patches=3, size=20)
    kept = peer.kept
    assert kept.shape == (300, 112, 112)
    removed = (~kept).sum(axis=(1, 2))
    assert removed.max() <= 3 * 400 and removed.min() >= 400  # up to three squares of 20 px, overlapping
    similarities = rng.normal(size=300)
    values = peer.attribution(similarities, intact=0.0)
    for y, x in [(10, 10), (60, 90), (111, 0)]:
        column = kept[:, y, x].astype(float)
        expected = 0.0 if column.std() == 0 else np.corrcoef(column, similarities)[0, 1]
        assert values[y, x] == pytest.approx(expected, abs=1e-12)


def test_peer_masks_are_cached_per_face_at_the_matched_budget(rng, tmp_path):
    model = SquareToy()
    explainer = XMapExplainer(model, cache=OcclusionCache(tmp_path))
    peers = make_peers(["rise", "corrrise", "kernelshap", "lime"], masks=60, cell=28)
    assert list(peers) == ["RISE", "CorrRISE", "KernelSHAP", "LIME"]
    face1, face2 = _faces(rng)
    face2[0, 0] = 0  # two faces
    (e1, e2), passes = explainer.embed_faces([face1, face2], methods=(2,), designs=peers.values())
    assert passes == 2 * (1 + explainer.occlusion.count() + 4 * 60)  # each peer: 60 forward passes per face
    for peer in peers.values():
        assert e1[explainer.design_key(peer)].shape == (60, 2)
    maps = explainer.peer_maps(e1, e2, peers)
    for name, (map1, map2) in maps.items():
        assert map1.dtype == np.float32 and np.abs(map1).max() == pytest.approx(1.0), name
        assert map1[REGION].mean() > 0.3, name
    again = explainer.embed_faces([face1, face2], methods=(2,), designs=peers.values())[1]
    assert again == 0  # all from the cache
    keys = {explainer.design_key(peer) for peer in peers.values()}
    assert len(keys) == 4 and explainer.design_key(RISE(masks=61)) not in keys


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: RISE(masks=1), "masks must be an integer from 2"),
        (lambda: RISE(keep=1.0), "keep must be a probability strictly between 0 and 1, got 1.0"),
        (lambda: RISE(grid=1), "grid must be an integer from 2 to 56, got 1"),
        (lambda: CorrRISE(size=112), "size must be an integer from 1 to 111, got 112"),
        (lambda: CorrRISE(patches=0), "patches must be an integer >= 1, got 0"),
        (lambda: KernelSHAP(cell=10), "cell must be a positive integer that divides 112, got 10"),
        (lambda: LIME(kernel_width=0), "kernel_width must be a positive number, got 0"),
        (lambda: make_peers(["gradcam"], 100), "Unknown peer explainer 'gradcam'"),
    ],
)
def test_bad_peer_settings_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_wrong_similarities_and_a_missing_package_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match=r"Expected 10 similarities, one per masked image, got shape \(3,\)"):
        RISE(masks=10).attribution(np.zeros(3), 0.0)
    monkeypatch.setitem(sys.modules, "shap", None)  # as if not installed
    with pytest.raises(ImportError, match=r"needs the 'shap' package: pip install 'xfv\[peers\]'"):
        KernelSHAP(masks=20).cache_key("{}")


def test_peer_names():
    assert set(PEERS) == {"rise", "corrrise", "kernelshap", "lime"}
