"""The faithfulness benchmark: orders, curve images, AUCs by hand, toy models with a known answer, the command."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

from xfv.models.base import EmbeddingModel, ModelConfig
from xfv.xmaps import CoalitionDesign, OcclusionConfig, XMapExplainer
from xfv.xmaps.faithfulness import (
    FaithfulnessResult,
    auc,
    baseline_orders,
    block_scores,
    centre_order,
    curve_images,
    edge_order,
    evidence_order,
    faithfulness_experiment,
    pair_curves,
    random_order,
    step_counts,
)
from xfv.xmaps.figures import faithfulness_figure
from xfv.xmaps.peers import make_peers


class CornerToy(EmbeddingModel):
    """Reads the top-left 32 x 32 corner only: ``(1, mean grey level of the corner / 255 - 1/2)``."""

    config = ModelConfig(name="corner", input_size=112, alignment="none")

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        corner = faces[:, :32, :32].mean(axis=(1, 2, 3)) / 255.0 - 0.5
        return np.stack([np.full(len(faces), 0.2), corner, np.full(len(faces), 0.1)], axis=1)


def _checkerboard() -> np.ndarray:
    face = np.full((112, 112, 3), 200, dtype=np.uint8)
    face[40:72, 40:72] = 0  # a dark square: strong edges around it
    return face


# Orders and curve images -----------------------------------------------------------------------------------


def test_block_scores_are_block_means_by_hand():
    values = np.zeros((112, 112))
    values[:8, :8] = 1.0  # block 0
    values[8:12, 8:16] = 1.0  # half of block 15 (row 1, column 1)
    scores = block_scores(values)
    assert scores.shape == (196,)
    assert scores[0] == 1.0 and scores[15] == 0.5 and scores[1] == 0.0
    assert block_scores(np.ones((112, 112, 3)), 16).shape == (49,)
    with pytest.raises(ValueError, match="block must be a positive integer that divides 112, got 5"):
        block_scores(values, 5)
    with pytest.raises(ValueError, match=r"Expected a \(112, 112\) map, got shape \(10, 10\)"):
        block_scores(np.zeros((10, 10)))


def test_evidence_order_puts_similar_first_for_genuine_and_dissimilar_first_for_imposters():
    values = np.zeros((112, 112))
    values[:8, :8] = 1.0  # block 0: similar
    values[-8:, -8:] = -1.0  # block 195: dissimilar
    assert evidence_order(values, genuine=True)[0] == 0
    assert evidence_order(values, genuine=False)[0] == 195
    assert evidence_order(values, genuine=True)[-1] == 195
    assert sorted(evidence_order(values, True).tolist()) == list(range(196))


def test_baseline_orders():
    np.testing.assert_array_equal(random_order(3), random_order(3))
    assert not np.array_equal(random_order(3), random_order(4))
    centre = centre_order()
    assert set(centre[:4].tolist()) == {
        6 * 14 + 6,
        6 * 14 + 7,
        7 * 14 + 6,
        7 * 14 + 7,
    }  # the four central blocks
    edges = edge_order(_checkerboard())
    rows, columns = np.divmod(edges[:8], 14)
    assert all(r in (4, 5, 8, 9) or c in (4, 5, 8, 9) for r, c in zip(rows, columns))  # the square's rim
    orders = baseline_orders(_checkerboard(), _checkerboard(), [10, 11])
    assert set(orders) == {"random-0", "random-1", "centre", "edge"}
    assert not np.array_equal(*orders["random-0"])  # one permutation per face


def test_steps_and_curve_images_by_hand():
    np.testing.assert_array_equal(step_counts(196, 4), [0, 49, 98, 147, 196])
    face = np.full((112, 112, 3), 90, dtype=np.uint8)
    order = np.arange(196)
    deletion = curve_images(face, order, "deletion", steps=4)
    insertion = curve_images(face, order, "insertion", steps=4)
    assert deletion.shape == insertion.shape == (3, 112, 112, 3)
    for k, count in enumerate((49, 98, 147)):
        blocks = block_scores(deletion[k])
        assert (blocks == 0).sum() == count and (blocks[:count] == 0).all()  # the first blocks go black
        assert (block_scores(insertion[k])[:count] == 90).all() and (
            block_scores(insertion[k]) == 0
        ).sum() == 196 - count
    white = curve_images(face, order, "deletion", steps=4, fill=255)
    assert (white[0, :8, :8] == 255).all()
    with pytest.raises(ValueError, match="mode must be one of"):
        curve_images(face, order, "erase")
    with pytest.raises(ValueError, match="order must be a permutation of the 196 blocks"):
        curve_images(face, np.zeros(196, dtype=int), "deletion")
    with pytest.raises(ValueError, match=r"steps must be an integer in \[1, 196\], got 0"):
        step_counts(196, 0)


def test_auc_by_hand():
    line = np.linspace(1.0, 0.0, 11)  # falls from 1 to 0
    assert auc(line) == pytest.approx(0.5)
    assert auc(line, 0.2) == pytest.approx(0.9)  # mean of 1 - x over [0, 0.2]
    assert auc(line, 0.25) == pytest.approx(0.875)  # between samples: interpolated
    assert auc([2.0, 2.0]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="at least two points"):
        auc([1.0])
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\], got 0"):
        auc(line, 0)


# Curves and the experiment on a toy model with a known answer -----------------------------------------------


def test_curves_of_a_model_that_reads_one_corner():
    """Deleting the corner first changes the decision score at once; deleting elsewhere changes nothing."""
    face1 = np.full((112, 112, 3), 255, dtype=np.uint8)
    face2 = face1.copy()
    corner_first = np.argsort([0 if (b // 14 < 4 and b % 14 < 4) else 1 for b in range(196)], kind="stable")
    corner_last = corner_first[::-1].copy()
    calls = []

    def embed(images):
        calls.append(len(images))
        return CornerToy().embed(images)

    curves = pair_curves(
        embed,
        face1,
        face2,
        True,
        {"first": (corner_first, corner_first), "last": (corner_last, corner_last)},
        steps=14,
        batch_size=50,
    )
    assert sum(calls) == curves.forward_passes == 3 + 2 * 2 * 2 * 13 and max(calls) == 50
    first, last = curves.curves["first"]["deletion"], curves.curves["last"]["deletion"]
    assert first.shape == (2, 15) and first[0, 0] == pytest.approx(1.0)  # identical faces
    assert first[0, 2] < 0.9 and last[0, 12] == pytest.approx(1.0)  # corner (16 blocks) gone by step 2
    aucs = curves.aucs()
    assert aucs["first"]["deletion"] < aucs["last"]["deletion"]
    assert aucs["first"]["insertion"] > aucs["last"]["insertion"]
    imposter = pair_curves(
        CornerToy().embed, face1, face2, False, {"first": (corner_first, corner_first)}, steps=14
    )
    np.testing.assert_allclose(imposter.curves["first"]["deletion"], 1.0 - first)  # the distance


def test_maps_of_every_method_beat_random_orders_on_a_toy_model(rng):
    face1 = np.repeat(np.repeat(rng.integers(0, 256, (14, 14, 3), dtype=np.uint8), 8, 0), 8, 1)
    face1[:32, :32] = 255
    face2 = face1.copy()
    face2[:32, :32] = 0  # the corner differs: an imposter as the toy sees it
    explainer = XMapExplainer(CornerToy(), occlusion=OcclusionConfig(patch_sizes=(14, 28), stride=7))
    reports = []
    result = faithfulness_experiment(
        explainer,
        [(0, face1, face1.copy(), True), (1, face1, face2, False)],
        seeds=2,
        steps=14,
        progress=reports.append,
    )
    assert isinstance(result, FaithfulnessResult) and len(reports) == 2 and len(result.records) == 2
    summary = result.summary()
    assert set(summary["classes"]) == {"genuine", "imposter"}
    for label in ("genuine", "imposter"):
        orders = summary["classes"][label]["orders"]
        assert set(orders) == {"method 1", "method 2", "method 3", "method 4", "centre", "edge", "random"}
        # Method 3 occludes both faces at the same place: two identical corners stay identical, so on the
        # genuine pair its map is blank (Eq. 8's blind spot) and its order no better than chance.
        for method in (1, 2, 4) if label == "genuine" else (1, 2, 3, 4):
            row = orders[f"method {method}"]
            assert row["deletion_start_beats_random"] == 1.0, (label, method)
            assert row["insertion_start_beats_random"] == 1.0, (label, method)
            assert len(row["deletion_curve"]) == 15
    json.dumps(summary)  # serialisable
    assert faithfulness_figure(summary).get_axes()
    with pytest.raises(ValueError, match="No pairs"):
        faithfulness_experiment(explainer, [])
    with pytest.raises(ValueError, match="seeds must be a positive integer, got 0"):
        faithfulness_experiment(explainer, [], seeds=0)
    with pytest.raises(ValueError, match="methods must be a non-empty selection"):
        faithfulness_experiment(explainer, [], methods=(7,))


def test_peers_and_budgets_are_orders_and_method_4_is_compared_with_each(rng):
    face1 = np.repeat(np.repeat(rng.integers(0, 256, (14, 14, 3), dtype=np.uint8), 8, 0), 8, 1)
    face2 = face1.copy()
    face2[:32, :32] = 0
    explainer = XMapExplainer(CornerToy(), occlusion=OcclusionConfig(patch_sizes=(28,), stride=14),
                              coalitions=CoalitionDesign(masks=200))
    peers = make_peers(["rise", "lime"], masks=60, cell=28)
    result = faithfulness_experiment(explainer, [(0, face1, face1.copy(), True), (1, face1, face2, False)],
                                     methods=(2, 4), peers=peers, budgets=(100,), seeds=1, steps=7)
    summary = result.summary()
    for label in ("genuine", "imposter"):
        orders = summary["classes"][label]["orders"]
        assert set(orders) == {"method 2", "method 4", "method 4 (100 masks)", "RISE", "LIME", "centre", "edge",
                               "random"}
        record = next(r for r in result.records if r["genuine"] == (label == "genuine"))
        for mode, sign in (("deletion", 1), ("insertion", -1)):
            beats = orders["method 4"][f"{mode}_full_beats"]
            assert set(beats) == {"method 2", "method 4 (100 masks)", "RISE", "LIME"}
            for other, share in beats.items():  # one pair per class: 1.0 or 0.0, from the AUCs by hand
                mine, theirs = record["auc"]["method 4"][mode]["full"], record["auc"][other][mode]["full"]
                assert share == float(sign * (mine - theirs) < 0), (label, mode, other)
            assert "deletion_full_beats" in orders["method 4 (100 masks)"]
            assert "deletion_full_beats" not in orders["RISE"]
    with pytest.raises(ValueError, match="include method 4"):
        faithfulness_experiment(explainer, [], methods=(2,), budgets=(100,))


# The command and the real model ------------------------------------------------------------------------------


def test_command_rejects_bad_counts(run_cli, tmp_path):
    code, _, err = run_cli("experiment", "faithfulness", "--pairs", "0", "--out", str(tmp_path))
    assert code == 2 and "--pairs must be at least 1, got 0" in err


@pytest.mark.slow
def test_real_model_maps_beat_random_orders_on_lfw_pairs(run_cli, shared_data, tmp_path):
    """dlib on 2 genuine + 2 imposter LFW pairs: method 4's deletion order removes the evidence for the
    decision faster than random orders, at the start of the curve and over the whole of it, on average and in
    most pairs."""
    options = shlex.split(
        "--pairs 2 --methods 2,4 --patch-sizes 14,28 --seeds 2 --steps 10 --cut-paste 1 --json"
    )
    code, stdout, _ = run_cli(
        "experiment", "faithfulness", "--root", str(shared_data / "lfw"), "--out", str(tmp_path), *options
    )
    assert code == 0
    report = json.loads(stdout)
    for label in ("genuine", "imposter"):
        entry = report["faithfulness"]["classes"][label]
        assert entry["pairs"] == 2
        method4, chance = entry["orders"]["method 4"], entry["orders"]["random"]
        assert method4["deletion_start_auc"] < chance["deletion_start_auc"], label
        assert method4["deletion_full_auc"] < chance["deletion_full_auc"], label  # over the whole curve too
        assert method4["insertion_full_auc"] > chance["insertion_full_auc"], label
        assert method4["deletion_start_beats_random"] >= 0.5, label
    assert report["cut_paste"]["methods"]["4"]["cases"] == 3
    assert report["cut_paste"]["paste_lowers_distance"]["cases"] == 3  # one pair, three regions
    saved = json.loads((tmp_path / "faithfulness.json").read_text())
    assert len(saved["pairs"]) == 4 and (tmp_path / "curves.png").stat().st_size > 0
