"""XMapExplainer.stream: partial explanations in the order that shows something useful first, the last one final."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from test_xmaps import RegionToy, toy_faces

from xfv.xmaps import OcclusionCache, XMapExplainer
from xfv.xmaps.explainer import FINAL, mask_prefixes

PASSES = 2 * (1 + 1058 + 1058)


@pytest.fixture()
def toy_pair() -> tuple[np.ndarray, np.ndarray]:
    return toy_faces()


def _same(first, second) -> None:
    """Two explanations with bit-identical distance, maps, raw maps and per-patch-size maps."""
    assert first.distance == second.distance
    assert first.maps.keys() == second.maps.keys() and first.stages == second.stages
    for method in first.maps:
        for image in (0, 1):
            np.testing.assert_array_equal(first.maps[method][image], second.maps[method][image])
            np.testing.assert_array_equal(first.raw_maps[method][image], second.raw_maps[method][image])
        assert first.scale_maps[method].keys() == second.scale_maps[method].keys()
        for p in first.scale_maps[method]:
            for image in (0, 1):
                np.testing.assert_array_equal(first.scale_maps[method][p][image], second.scale_maps[method][p][image])


def test_mask_prefixes_double_from_32_up_to_the_design():
    assert mask_prefixes(1058) == [32, 64, 128, 256, 512, 1058]
    assert mask_prefixes(64) == [32, 64]
    assert mask_prefixes(20) == [20]


def test_the_stream_shows_the_verdict_then_method_4_coarse_to_fine_then_methods_1_3_by_patch_size(toy_pair):
    model = RegionToy()
    explanations = list(XMapExplainer(model, batch_size=50).stream(*toy_pair))
    assert [e.stage for e in explanations] == [
        "original faces", *(f"method 4: {n} of 1058 masks" for n in (32, 64, 128, 256, 512, 1058)),
        "methods 1-3: 28 px patches", "methods 1-3: 14 px patches", FINAL]
    assert [e.partial for e in explanations] == [True] * 9 + [False]
    first = explanations[0]
    assert first.maps == {} and first.forward_passes == 2 and first.distance == explanations[-1].distance
    assert [e.stages for e in explanations[1:6]] == [{4: f"{n} of 1058 masks"} for n in (32, 64, 128, 256, 512)]
    assert explanations[6].stages == {4: FINAL}
    assert explanations[7].stages == {1: "28 px patches", 2: "28 px patches", 3: "28 px patches", 4: FINAL}
    assert explanations[8].stages == {1: "28, 14 px patches", 2: "28, 14 px patches", 3: "28, 14 px patches",
                                      4: FINAL}
    assert explanations[-1].stages == dict.fromkeys((1, 2, 3, 4), FINAL)
    assert [e.forward_passes for e in explanations] == [2, 66, 130, 258, 514, 1026, 2118, 2630, 3352, PASSES]
    assert {e.total_passes for e in explanations} == {PASSES}
    assert all(0 <= a.timings["elapsed"] <= b.timings["elapsed"] for a, b in itertools.pairwise(explanations[:-1]))
    assert set(explanations[-1].timings) == {"embed", "maps", "total", "partial maps"}
    # every model call is one batch of at most 50 images; a step ends a batch, nothing is embedded twice
    assert sum(model.batches) == PASSES and max(model.batches) == 50
    assert len(model.batches) == 1 + 2 + 2 + 3 + 6 + 11 + 22 + 11 + 15 + 18  # per step: ceil(images / 50)


def test_each_partial_map_is_the_fit_on_what_is_embedded_so_far(toy_pair):
    explainer = XMapExplainer(RegionToy())
    explanations = list(explainer.stream(*toy_pair))
    (embeddings1, embeddings2), _ = explainer.embed_faces(toy_pair)
    for explanation, count in zip(explanations[1:6], (32, 64, 128, 256, 512)):
        expected = explainer.assemble(*toy_pair, embeddings1, embeddings2, methods=(4,), count=count)
        _same(explanation, expected)
    for explanation, sizes in zip(explanations[7:9], ((28,), (28, 14))):
        expected = explainer.assemble(*toy_pair, embeddings1, embeddings2, patch_sizes=sizes)
        _same(explanation, expected)
        assert explanation.scale_maps[1].keys() == set(sizes)
    # the maps improve: each method-4 partial correlates better with the final map than the one before
    final = explanations[-1].raw_maps[4][0].ravel()
    correlations = [np.corrcoef(e.raw_maps[4][0].ravel(), final)[0, 1] for e in explanations[1:7]]
    assert correlations == sorted(correlations) and correlations[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("methods", [(1, 2, 3, 4), (4,), (2,), (1, 3)])
def test_the_last_explanation_of_the_stream_is_explain_bit_for_bit(toy_pair, methods):
    explainer = XMapExplainer(RegionToy(), batch_size=37)
    streamed = list(explainer.stream(*toy_pair, methods=methods))[-1]
    explained = explainer.explain(*toy_pair, methods=methods)
    assert not streamed.partial and not explained.partial
    _same(streamed, explained)
    assert streamed.forward_passes == explained.forward_passes == explained.total_passes
    # and the maps are those of the embeddings computed in one go (today's explain: embed_faces, then assemble)
    (embeddings1, embeddings2), passes = explainer.embed_faces(toy_pair, methods)
    _same(explained, explainer.assemble(*toy_pair, embeddings1, embeddings2, methods=methods))
    assert passes == explained.forward_passes


def test_only_methods_asked_for_are_streamed(toy_pair):
    stages = [e.stage for e in XMapExplainer(RegionToy()).stream(*toy_pair, methods=(2,))]
    assert stages == ["original faces", "methods 1-3: 28 px patches", "methods 1-3: 14 px patches", FINAL]


def test_a_cached_pair_arrives_final_at_once_and_a_half_cached_one_starts_from_the_cache(toy_pair, tmp_path):
    explainer = XMapExplainer(RegionToy(), cache=OcclusionCache(tmp_path))
    first = explainer.explain(*toy_pair)
    again = list(explainer.stream(*toy_pair))
    assert len(again) == 1 and again[0].forward_passes == 0 and again[0].total_passes == 0
    _same(first, again[0])
    third = toy_pair[1].copy()
    third[0, 0] = 7
    partials = list(explainer.stream(toy_pair[0], third))
    assert partials[0].stage == "original faces" and partials[0].forward_passes == 1
    assert partials[-1].forward_passes == partials[-1].total_passes == 1 + 2 * 1058


def test_closing_the_stream_stops_before_the_next_step_and_caches_only_complete_entries(toy_pair, tmp_path):
    model = RegionToy()
    explainer = XMapExplainer(model, cache=OcclusionCache(tmp_path))
    stream = explainer.stream(*toy_pair)
    assert next(stream).stage == "original faces"
    assert next(stream).stage == "method 4: 32 of 1058 masks"
    stream.close()
    assert sum(model.batches) == 2 + 64
    assert len(list(tmp_path.rglob("*.entry"))) == 2  # both originals; no half of the masked faces
    assert explainer.explain(*toy_pair).forward_passes == PASSES - 2


def test_an_exception_from_progress_stops_between_batches(toy_pair, tmp_path):
    model = RegionToy()
    explainer = XMapExplainer(model, batch_size=50, cache=OcclusionCache(tmp_path))

    def cancel(done: int, total: int) -> None:
        if done > 300:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(explainer.stream(*toy_pair, progress=cancel))
    assert sum(model.batches) == 2 + 64 + 64 + 128 + 50  # the batch that passed 300, then nothing
    assert len(list(tmp_path.rglob("*.entry"))) == 2
