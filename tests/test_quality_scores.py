"""Face image quality: the error-versus-discard curve, and the model-based stability score (embedding stability
under perturbations), with answers known by construction."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from xfv.faces.pipeline import load_face
from xfv.jobs.embeddings import embed_paths, embed_with_quality
from xfv.models.callable_model import CallableModel
from xfv.quality.edc import error_versus_discard, fmr_threshold, pair_quality
from xfv.quality.heuristic import crop_sharpness
from xfv.quality.rating import qualities, rate_crops
from xfv.quality.stability import (
    DEFAULT_PERTURBATIONS,
    PERTURBATIONS,
    embed_with_perturbations,
    perturbation_distances,
    perturbed_crops,
    stability_from_distances,
)


def test_fmr_threshold_accepts_at_most_the_share_of_imposters():
    imposters = np.arange(1, 1001) / 1000.0  # 0.001 .. 1.0
    d = np.concatenate([imposters, [0.0005] * 10])
    y = np.concatenate([np.zeros(1000), np.ones(10)])
    t, fmr = fmr_threshold(d, y, 1e-2)
    assert fmr == pytest.approx(0.01) and 0.010 <= t < 0.011  # ten imposters at d <= t, the eleventh is not
    t, fmr = fmr_threshold(d, y, 0.0)
    assert fmr == 0.0 and t < 0.001
    with pytest.raises(ValueError, match="fmr must lie in"):
        fmr_threshold(d, y, 1.0)


def test_edc_of_an_oracle_a_constant_and_the_reverse_order():
    """100 genuine pairs of which the 10 lowest-quality ones are misses, among 100 imposters (shuffled): discarding
    2 i pairs by that quality removes 2 i misses, and 5 % (10 pairs) removes every error."""
    order = np.random.default_rng(0).permutation(200)
    y = np.concatenate([np.ones(100), np.zeros(100)])[order]
    d = np.concatenate([np.r_[np.full(10, 0.9), np.full(90, 0.1)], np.full(100, 0.8)])[order]
    oracle = np.concatenate([np.r_[np.zeros(10), np.ones(90)], np.full(100, 0.5)])[order]
    edc = error_versus_discard(d, y, oracle, fmr=0.0, max_fraction=0.5, steps=50)  # fractions in steps of 1 %
    assert edc.fnmr[:6] == pytest.approx([(10 - 2 * i) / (100 - 2 * i) for i in range(6)])
    assert np.all(edc.fnmr[5:] == 0)
    by_hand = np.trapezoid(edc.fnmr[:31], edc.fractions[:31]) / 0.3
    assert edc.area(0.3) == pytest.approx(by_hand)
    constant = error_versus_discard(d, y, np.ones(200), fmr=0.0)  # ties go in pair order: a random order here
    reverse = error_versus_discard(d, y, -oracle, fmr=0.0)  # the misses discarded last: the FNMR rises
    assert edc.area() < constant.area() < reverse.area()
    assert reverse.fnmr[-1] > reverse.fnmr[0]


def test_edc_counts_the_discarded_pairs_exactly():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    d = np.array([0.9, 0.1, 0.1, 0.1, 0.8, 0.8, 0.8, 0.8])
    q = np.array([0.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5])
    edc = error_versus_discard(d, y, q, fmr=0.0, max_fraction=0.5, steps=4)
    # fractions 0, 1/8, 2/8, 3/8, 4/8 of 8 pairs: 0, 1, 2, 3, 4 discarded; the first is the only miss
    assert edc.fnmr.tolist() == pytest.approx([0.25, 0.0, 0.0, 0.0, 0.0])
    assert pair_quality([1, 5], [3, 2]).tolist() == [1, 2]


@pytest.mark.parametrize("kwargs, message", [
    ({"quality": np.ones(3)}, "one value per pair"),
    ({"quality": np.r_[np.nan, np.ones(7)]}, "NaN or infinite"),
    ({"max_fraction": 1.0}, "max_fraction must lie in"),
])
def test_edc_bad_input(kwargs, message):
    args = {"distances": np.linspace(0, 1, 8), "labels": np.array([1, 0] * 4), "quality": np.ones(8)}
    with pytest.raises(ValueError, match=message):
        error_versus_discard(**{**args, **kwargs})
    with pytest.raises(ValueError, match="max_discard"):
        error_versus_discard(**args).area(0.9)


def half_mean_model():
    """A 6-d embedding: the mean colour of the left and the right half of the crop."""
    def embed(faces):
        half = faces.shape[2] // 2
        return np.concatenate([faces[:, :, :half].reshape(len(faces), -1, 3).mean(1),
                               faces[:, :, half:].reshape(len(faces), -1, 3).mean(1)], axis=1) + 1.0
    return CallableModel(embed, name="halves", input_size=32)


def test_stability_is_one_for_what_no_perturbation_moves_and_lower_otherwise():
    flat = np.full((1, 32, 32, 3), 120, np.uint8)
    split = flat.copy()
    split[:, :, :16] = (250, 10, 10)
    split[:, :, 16:] = (10, 10, 250)
    model = half_mean_model()
    embeddings, perturbed = embed_with_perturbations(model, np.concatenate([flat, split]), DEFAULT_PERTURBATIONS)
    assert embeddings.shape == (2, 6) and perturbed.shape == (2, len(DEFAULT_PERTURBATIONS), 6)
    quality = stability_from_distances(perturbation_distances(embeddings, perturbed))
    assert quality[0] == pytest.approx(1.0)
    flip = DEFAULT_PERTURBATIONS.index("flip")
    assert perturbation_distances(embeddings, perturbed)[1, flip] > 0.5  # the mirror swaps the halves
    assert quality[1] < 0.9


def test_perturbations_are_deterministic_and_named():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    names = tuple(PERTURBATIONS)
    out = perturbed_crops(crops, names)
    assert out.shape == (2 * len(names), 40, 40, 3) and out.dtype == np.uint8
    assert np.array_equal(out, perturbed_crops(crops, names))
    assert np.array_equal(out[names.index("flip")], crops[0][:, ::-1])
    assert perturbed_crops(crops, ()).shape == (0, 40, 40, 3)
    with pytest.raises(ValueError, match="Unknown perturbation"):
        perturbed_crops(crops, ("blur",))
    with pytest.raises(ValueError, match="uint8"):
        perturbed_crops(crops.astype(float), ("flip",))


def test_embed_with_quality_caches_the_quality_beside_the_embedding(tmp_path, monkeypatch):
    monkeypatch.setenv("XFV_CACHE_DIR", str(tmp_path / "cache"))
    seen = []

    def embed(faces):
        seen.append(len(faces))
        return half_mean_model().fn(faces)

    model = CallableModel(embed, name="halves", input_size=32)
    paths = []
    for i, colour in enumerate([(120, 120, 120), (250, 10, 10)]):
        image = np.full((32, 32, 3), 120, np.uint8)
        image[:, :16] = colour
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image).save(paths[-1])
    embeddings, quality = embed_with_quality(paths, model, aligned=True)
    assert sum(seen) == 2 * (1 + len(DEFAULT_PERTURBATIONS))
    assert quality.shape == (2, 2)  # per image: stability, sharpness (QUALITY_MEASURES)
    assert quality[0, 0] == pytest.approx(1.0) and quality[1, 0] < 1.0
    # the sharpness of the very crop the model embedded (its input size), not of another detection or template
    crops = [load_face(path, alignment="none", size=32, aligned=True) for path in paths]
    assert quality[:, 1].tolist() == pytest.approx([crop_sharpness(crop) for crop in crops])
    assert quality[1, 1] > quality[0, 1]  # the edge between the halves
    again, quality_again = embed_with_quality(paths[::-1], model, aligned=True)
    assert sum(seen) == 2 * (1 + len(DEFAULT_PERTURBATIONS))  # both from the cache
    assert np.allclose(again, embeddings[::-1]) and np.allclose(quality_again, quality[::-1])
    assert np.allclose(embed_paths(paths, model, aligned=True), embeddings)
    _, flip_only = embed_with_quality(paths, model, aligned=True, perturbations=("flip",))
    assert sum(seen) == 2 * (1 + len(DEFAULT_PERTURBATIONS)) + 2 * 2  # another measure: computed and cached apart
    assert flip_only[1, 0] < quality[1, 0]  # the mirror alone moves it most
    assert np.allclose(flip_only[:, 1], quality[:, 1])


def test_a_rating_is_the_perturbation_distances_then_the_sharpness_of_the_same_crop():
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    crops[0] = 128  # flat: nothing moves it, and it has no edges
    model = half_mean_model()
    embeddings, ratings = rate_crops(model, crops, ("flip", "zoom+"))
    reference, perturbed = embed_with_perturbations(model, crops, ("flip", "zoom+"))
    assert np.allclose(embeddings, reference) and ratings.shape == (3, 3)
    assert np.allclose(ratings[:, :2], perturbation_distances(reference, perturbed))
    assert ratings[:, 2].tolist() == pytest.approx([crop_sharpness(c) for c in crops])
    measured = qualities(ratings)
    assert measured[0].tolist() == pytest.approx([1.0, 0.0])  # stable and without sharpness
    assert np.allclose(measured[:, 0], stability_from_distances(ratings[:, :2]))
    assert np.allclose(qualities(ratings, ("sharpness",))[:, 0], ratings[:, 2])
    with pytest.raises(ValueError, match="Unknown quality measure"):
        qualities(ratings, ("brisque",))
    with pytest.raises(ValueError, match="at least one perturbation"):
        rate_crops(model, crops, ())
