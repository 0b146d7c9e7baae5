"""X-Map experiments (cut-and-paste, sensitivity), figures and the ``explain`` / ``experiment`` commands."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from xfv.models.base import EmbeddingModel, ModelConfig
from xfv.xmaps import CoalitionDesign, OcclusionConfig, XMapExplainer
from xfv.xmaps.experiments import (
    PASTE_EFFECT_BANDS,
    REGIONS,
    RESPONSIVE,
    TEMPLATE_POINTS,
    cut_paste_experiment,
    paste,
    pixel_auc,
    region_mask,
    sensitivity_experiment,
)
from xfv.xmaps.figures import cut_paste_figure, overview_figure, sensitivity_figure
from xfv.xmaps.peers import make_peers


class BlockToy(EmbeddingModel):
    """Mean grey level minus 128 of each 8 x 8 block: a gray patch removes what it covers."""

    config = ModelConfig(name="blocks", input_size=112, alignment="none")

    def __init__(self) -> None:
        self.calls = 0

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        self.calls += len(faces)
        blocks = faces.reshape(len(faces), 14, 8, 14, 8 * 3).sum(axis=(2, 4), dtype=np.float32)
        return (blocks / (8 * 8 * 3) - 128.0).reshape(len(faces), -1)


def _textured(rng: np.random.Generator) -> np.ndarray:
    blocks = rng.integers(0, 256, (14, 14, 3), dtype=np.uint8)
    return np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)


GRAY = OcclusionConfig(color="gray", patch_sizes=(14, 28), stride=10)


def test_regions_lie_on_the_template(rng):
    for alignment in TEMPLATE_POINTS:
        masks = {region: region_mask(region, alignment) for region in REGIONS}
        for mask in masks.values():
            assert mask.shape == (112, 112) and mask.dtype == bool and 0 < mask.sum() < 112 * 112
        left_eye, right_eye = TEMPLATE_POINTS[alignment][:2].round().astype(int)
        assert masks["eyes"][left_eye[1], left_eye[0]] and masks["eyes"][right_eye[1], right_eye[0]]
        assert (
            masks["eye_mouth"][left_eye[1], left_eye[0]]
            and not masks["eye_mouth"][right_eye[1], right_eye[0]]
        )
        assert masks["half"][:, :50].all() and not masks["half"][:, 60:].any()
    with pytest.raises(ValueError, match="alignment 'none' has none"):
        region_mask("eyes", "none")
    with pytest.raises(ValueError, match="'nose'"):
        region_mask("nose", "dlib")


def test_paste_copies_only_the_region(rng):
    face1, face2 = _textured(rng), _textured(rng)
    mask = region_mask("eyes", "arcface")
    composite = paste(face1, face2, mask)
    np.testing.assert_array_equal(composite[mask], face2[mask])
    np.testing.assert_array_equal(composite[~mask], face1[~mask])


def test_pixel_auc(rng):
    mask = np.zeros((10, 10), dtype=bool)
    mask[:3] = True
    assert pixel_auc(mask.astype(float), mask) == 1.0
    assert pixel_auc(-mask.astype(float), mask) == 0.0
    assert pixel_auc(np.zeros((10, 10)), mask) == 0.5
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    scores = rng.normal(size=(10, 10))
    assert pixel_auc(scores, mask) == pytest.approx(
        sklearn_metrics.roc_auc_score(mask.ravel(), scores.ravel())
    )
    with pytest.raises(ValueError, match="some but not all pixels, got 0 of 100"):
        pixel_auc(scores, np.zeros((10, 10), dtype=bool))


def test_cut_paste_marks_the_pasted_region_similar(rng):
    pairs = [(k, _textured(rng), _textured(rng)) for k in range(3)]
    result = cut_paste_experiment(XMapExplainer(BlockToy(), occlusion=GRAY), pairs, "arcface", examples=2)
    summary = result.summary()
    assert summary["pairs"] == 3 and len(result.records) == 3 * 3 * 4 and len(result.examples) == 2
    method3 = summary["methods"]["3"]
    assert method3["inside_above_outside"] == 1.0 and method3["auc_mean"] > 0.8
    assert method3["pairs_found_in_every_region"] == 1.0
    assert summary["methods"]["4"]["inside_above_outside"] == 1.0
    assert set(method3["regions"]) == set(REGIONS)
    assert {"pair", "region", "method", "inside", "outside", "auc"} <= set(result.rows()[0])
    # Two example rows of composite, source and four maps, then bar charts of the mean AUCs: over the cases the
    # model responded to (the headline), and over all cases.
    figure = cut_paste_figure(result)
    *panels, responsive, bars = figure.get_axes()
    assert responsive.get_title() == "cases with effect > 0.05" and bars.get_title() == "all cases"
    assert len(panels) == 2 * (2 + 4)
    assert [panels[6 * row].get_title() for row in range(2)] == [
        f"pair {e.pair}: {e.region}" for e in result.examples
    ]
    np.testing.assert_array_equal(panels[2].images[0].get_array(), result.examples[0].explanation.blend(1, 1))
    heights = sorted(round(bar.get_height(), 9) for bar in bars.patches)
    expected = sorted(
        round(np.mean([r.auc for r in result.records if (r.method, r.region) == (m, g)]), 9)
        for m in (1, 2, 3, 4) for g in REGIONS
    )
    assert heights == expected
    with pytest.raises(ValueError, match="No pairs"):
        cut_paste_experiment(XMapExplainer(BlockToy(), occlusion=GRAY), [], "arcface")


def test_cut_paste_records_how_the_model_took_each_paste(rng):
    model = BlockToy()
    face1, face2 = _textured(rng), _textured(rng)
    # Pair 1 pastes face 1's own pixels: the model cannot move, so no case of it counts as helped.
    pairs = [(0, face1, face2), (1, face1, face1.copy())]
    result = cut_paste_experiment(XMapExplainer(model, occlusion=GRAY), pairs, "arcface", methods=(2, 4))

    def distance(a: np.ndarray, b: np.ndarray) -> float:
        ea, eb = model.embed(np.stack([a, b])).astype(np.float64)
        return 1.0 - ea @ eb / (np.linalg.norm(ea) * np.linalg.norm(eb))

    for record in result.records:
        source = face2 if record.pair == 0 else face1
        composite = paste(face1, source, region_mask(record.region, "arcface"))
        assert record.distance_before == pytest.approx(distance(face1, source), abs=1e-6)
        assert record.distance_after == pytest.approx(distance(composite, source), abs=1e-6)
        assert record.paste_lowers_distance == (record.pair == 0)
    summary = result.summary()
    response = summary["paste_lowers_distance"]
    assert response["cases"] == 6 and response["share"] == 0.5
    assert {region: row["share"] for region, row in response["regions"].items()} == dict.fromkeys(REGIONS, 0.5)
    for method in ("2", "4"):
        helped = summary["methods"][method]["where_paste_helps"]
        assert helped["cases"] == 3
        assert helped["auc_mean"] == pytest.approx(
            np.mean([r.auc for r in result.records if r.pair == 0 and r.method == int(method)])
        )
    assert summary["methods"]["2"]["regions"]["eyes"]["where_paste_helps"]["cases"] == 1
    bands = summary["methods"]["2"]["by_paste_effect"]
    assert list(bands) == [name for name, _, _ in PASTE_EFFECT_BANDS]
    assert bands["none or negative"]["cases"] == 3  # pair 1's pastes change nothing
    assert sum(band["cases"] for band in bands.values() if band) == 6
    effects = [r.distance_before - r.distance_after for r in result.records if r.method == 2]
    assert summary["methods"]["2"]["auc_effect_spearman"] == pytest.approx(
        spearmanr(effects, [r.auc for r in result.records if r.method == 2])[0]
    )
    only_pair_1 = cut_paste_experiment(XMapExplainer(model, occlusion=GRAY), pairs[1:], "arcface", methods=(2,))
    assert only_pair_1.summary()["methods"]["2"]["where_paste_helps"] is None


def test_cut_paste_scores_peers_and_budgets_and_heads_with_the_responsive_cases(rng):
    """Every explainer gets a record per case (methods by number, method 4 on a prefix of its masks and the
    peers by name); the headline (``responsive``) holds the cases whose paste lowered the distance by more than
    0.05, per region too."""
    pairs = [(k, _textured(rng), _textured(rng)) for k in range(2)]
    explainer = XMapExplainer(BlockToy(), occlusion=GRAY, coalitions=CoalitionDesign(masks=300))
    peers = make_peers(["rise", "corrrise"], masks=40)
    result = cut_paste_experiment(explainer, pairs, "arcface", methods=(2, 4), peers=peers, budgets=(150,))
    summary = result.summary()
    assert list(summary["methods"]) == ["2", "4", "method 4 (150 masks)", "RISE", "CorrRISE"]
    assert len(result.records) == 2 * 3 * 5
    for name, row in summary["methods"].items():
        chosen = [r for r in result.records if str(r.method) == name
                  and r.distance_before - r.distance_after > RESPONSIVE]
        assert chosen, name  # the pastes move this toy's distance
        assert row["responsive"]["cases"] == len(chosen)
        assert row["responsive"]["auc_mean"] == pytest.approx(np.mean([r.auc for r in chosen]))
        for region in REGIONS:
            in_region = [r.auc for r in chosen if r.region == region]
            entry = row["regions"][region]["responsive"]
            assert (entry is None) if not in_region else entry["auc_mean"] == pytest.approx(np.mean(in_region))
    full = [r for r in result.records if r.method == 4]
    prefix = [r for r in result.records if r.method == "method 4 (150 masks)"]
    assert [r.auc for r in full] != [r.auc for r in prefix]  # a different fit of the same masked faces
    with pytest.raises(ValueError, match="a budget must be an integer from 2 to method 4's 299 masks, got 300"):
        cut_paste_experiment(explainer, pairs, "arcface", methods=(4,), budgets=(300,))
    with pytest.raises(ValueError, match="include method 4"):
        cut_paste_experiment(explainer, pairs, "arcface", methods=(2,), budgets=(100,))


def test_sensitivity_explains_each_distinct_configuration_once(rng):
    model = BlockToy()
    variants = {
        "patch size": {"14": OcclusionConfig(patch_sizes=(14,), stride=10), "14+28": GRAY},
        "colour": {"gray": GRAY, "white": OcclusionConfig(color="white", patch_sizes=(14, 28), stride=10)},
    }
    results = sensitivity_experiment(XMapExplainer(model), _textured(rng), _textured(rng), variants=variants)
    assert list(results) == ["patch size", "colour"] and list(results["colour"]) == ["gray", "white"]
    assert results["colour"]["gray"] is results["patch size"]["14+28"]
    counts = [GRAY.count(), OcclusionConfig(patch_sizes=(14,), stride=10).count(), GRAY.count()]
    assert model.calls == sum(2 * (1 + n) for n in counts)
    # Fig. 6: one row per parameter, one panel per setting, each the method 3 map of image 1.
    axes = sensitivity_figure(results).get_axes()
    assert [axis.get_title() for axis in axes] == ["patch size: 14", "patch size: 14+28", "colour: gray",
                                                   "colour: white"]
    np.testing.assert_array_equal(axes[3].images[0].get_array(), results["colour"]["white"].blend(3, 1))
    white = results["colour"]["white"]
    overview = overview_figure(white).get_axes()
    assert [axis.get_title() for axis in overview] == ["image 1", "method 3 (Eq. 8)", "image 2", "method 3 (Eq. 8)"]
    assert f"{white.distance:.3f}" in overview[0].figure.get_suptitle()
    np.testing.assert_array_equal(overview[2].images[0].get_array(), white.face2)
    np.testing.assert_array_equal(overview[3].images[0].get_array(), white.blend(3, 2))


# Command line ------------------------------------------------------------------------------------------


def assert_figure_png(path) -> None:
    """A figure saved at 150 dpi: a PNG of several hundred pixels a side that shows faces and coloured maps,
    not only titles and frames (grey: at least 5 % of its pixels are coloured)."""
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 300
        pixels = np.asarray(image.convert("RGB"), dtype=np.int64)
    saturation = pixels.max(axis=-1) - pixels.min(axis=-1)
    assert (saturation > 40).mean() > 0.05


@pytest.fixture()
def face_files(tmp_path, rng):
    paths = []
    for k in range(2):
        path = tmp_path / f"face{k}.png"
        Image.fromarray(
            np.repeat(np.repeat(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8), 8, 0), 8, 1)
        ).save(path)
        paths.append(str(path))  # 224 x 224: resized to 112 with --aligned
    return paths


def test_explain_writes_maps_pngs_and_json(run_cli, face_files, tmp_path):
    out = tmp_path / "out"
    code, stdout, _ = run_cli(
        "explain",
        *face_files,
        "--aligned",
        "--model",
        "lbp",
        "--patch-sizes",
        "14,28",
        "--stride",
        "7",
        "--out",
        str(out),
        "--json",
    )
    assert code == 0
    summary = json.loads(stdout)
    assert summary["forward_passes"] == 2 * (1 + 196 + 144 + 1058) and summary["seconds"] > 0  # + method 4's masks
    assert 0 <= summary["distance"] <= 2
    with np.load(out / "maps.npz") as maps:
        assert sorted(maps.files) == [f"method{m}_image{i}" for m in (1, 2, 3, 4) for i in (1, 2)]
        for name in maps.files:
            assert maps[name].dtype == np.float32 and maps[name].shape == (112, 112)
            assert np.abs(maps[name]).max() == pytest.approx(1.0)  # normalised by the largest |value|
            # The blend's hue follows the map: green where similar (> 0.5), red where dissimilar (< -0.5).
            blended = np.asarray(Image.open(out / f"{name}.png").convert("RGB"), dtype=np.float64)
            assert blended.shape == (112, 112, 3)
            green_minus_red = blended[..., 1] - blended[..., 0]
            similar, dissimilar = maps[name] > 0.5, maps[name] < -0.5
            assert similar.any() or dissimilar.any()
            assert not similar.any() or green_minus_red[similar].mean() > 0
            assert not dissimilar.any() or green_minus_red[dissimilar].mean() < 0
        np.testing.assert_array_equal(maps["method3_image1"], maps["method3_image2"])
    assert_figure_png(out / "overview.png")
    for name in [f"method{m}_image{i}.png" for m in (1, 2, 3, 4) for i in (1, 2)]:
        assert (out / name).stat().st_size > 0


def test_explain_stream_writes_each_partial_map_as_it_arrives_and_ends_with_the_same_maps(run_cli, face_files,
                                                                                          tmp_path):
    options = ("--aligned", "--model", "lbp", "--patch-sizes", "14,28", "--stride", "7", "--no-cache")
    code, stdout, _ = run_cli("explain", *face_files, *options, "--out", str(tmp_path / "s"), "--stream", "--json")
    assert code == 0
    *lines, summary = [json.loads(line) for line in stdout.splitlines()]
    masks = [f"method 4: {n} of 1058 masks" for n in (32, 64, 128, 256, 512, 1058)]
    assert [line["stage"] for line in lines] == ["original faces", *masks, "methods 1-3: 28 px patches", "final"]
    assert lines[0]["maps"] == {} and lines[1]["maps"] == {"4": "32 of 1058 masks"}
    assert lines[-2]["maps"] == {"1": "28 px patches", "2": "28 px patches", "3": "28 px patches", "4": "final"}
    assert [line["forward_passes"] for line in lines][-1] == summary["forward_passes"] == 2 * (1 + 196 + 144 + 1058)
    seconds = [line["seconds"] for line in lines]
    assert seconds == sorted(seconds) and summary["seconds"] == seconds[-1]
    code, _, _ = run_cli("explain", *face_files, *options, "--out", str(tmp_path / "e"), "--json")
    with np.load(tmp_path / "s" / "maps.npz") as streamed, np.load(tmp_path / "e" / "maps.npz") as explained:
        assert sorted(streamed.files) == sorted(explained.files) and len(streamed.files) == 8
        for name in streamed.files:
            np.testing.assert_array_equal(streamed[name], explained[name])
    for name in streamed.files:
        assert (tmp_path / "s" / f"{name}.png").read_bytes() == (tmp_path / "e" / f"{name}.png").read_bytes()
    # as text: the verdict first, then one timed line per stage, then the summary
    code, stdout, _ = run_cli("explain", *face_files, *options, "--methods", "4", "--out", str(tmp_path / "t"),
                              "--stream")
    lines = stdout.splitlines()
    assert code == 0 and len(lines) == 1 + 7 + 1
    assert re.fullmatch(r" *[0-9.]+ s  method 4: 32 of 1058 masks \(66 of 2118 passes\): method 4: 32 of 1058 masks",
                        lines[2]), lines[2]
    assert lines[-2].endswith("final (2118 of 2118 passes): method 4: final") and "2118 forward passes" in lines[-1]


def test_explain_reuses_the_cache_unless_told_not_to(run_cli, face_files, tmp_path):
    options = (
        "--aligned",
        "--model",
        "lbp",
        "--patch-sizes",
        "28",
        "--methods",
        "3",
        "--out",
        str(tmp_path),
        "--json",
    )
    run_cli("explain", *face_files, *options)
    second = json.loads(run_cli("explain", *face_files, *options)[1])
    uncached = json.loads(run_cli("explain", *face_files, *options, "--no-cache")[1])
    assert second["forward_passes"] == 0
    assert uncached["forward_passes"] == 2 * (1 + 256)
    assert second["distance"] == pytest.approx(uncached["distance"])


def test_explain_smoothing_and_prior_refit_method_4_from_the_cached_masks(run_cli, face_files, tmp_path):
    options = ("--aligned", "--model", "lbp", "--methods", "4", "--masks", "200", "--cell", "28", "--json")
    plain = json.loads(run_cli("explain", *face_files, *options, "--out", str(tmp_path / "plain"))[1])
    smooth = json.loads(
        run_cli("explain", *face_files, *options, "--smoothing", "50", "--out", str(tmp_path / "smooth"))[1]
    )
    flat = json.loads(
        run_cli("explain", *face_files, *options, "--prior", "0,0,1e6", "--out", str(tmp_path / "flat"))[1]
    )
    assert plain["method4"] == {"masks": 200, "cell": 28, "shifts": 2, "seed": 0, "prior": [10.0, 100.0, 300.0],
                                "smoothing": 0.0}
    assert smooth["method4"]["smoothing"] == 50.0 and flat["method4"]["prior"] == [0.0, 0.0, 1e6]
    assert plain["forward_passes"] >= 2 * 200 and smooth["forward_passes"] == flat["forward_passes"] == 0  # cached
    with (np.load(tmp_path / "plain" / "maps.npz") as a, np.load(tmp_path / "smooth" / "maps.npz") as b,
          np.load(tmp_path / "flat" / "maps.npz") as c):
        atoms = [m[::14, ::14] for m in (a["method4_image1"], b["method4_image1"], c["method4_image1"])]
    assert np.ptp(atoms[1]) < np.ptp(atoms[0])  # the smoothed atoms spread less
    assert not np.array_equal(atoms[2], atoms[0])  # another fit of the same masked faces


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--smoothing", "-1"), "smoothing must be a finite number >= 0, got -1.0"),
        (("--prior", "1,2"), "prior must be three finite numbers >= 0"),
        (("--shifts", "3"), "shifts must be a positive integer that divides the cell (14), got 3"),
        (("--methods", "5"), "methods must be a non-empty selection"),
        (("--patch-sizes", "200"), "patch_sizes must be distinct integers in [1, 111], got (200,)"),
        (("--stride", "0"), "stride must be a positive integer, got 0"),
        (("--batch-size", "0"), "batch_size must be a positive integer, got 0"),
    ],
)
def test_explain_errors_are_clean(run_cli, face_files, tmp_path, extra, message):
    code, _, stderr = run_cli(
        "explain", *face_files, "--aligned", "--model", "lbp", "--out", str(tmp_path), *extra
    )
    assert code == 2
    assert stderr.startswith("xfv explain: error:") and message in stderr


def test_explain_reports_missing_and_non_square_images(run_cli, face_files, tmp_path):
    code, _, stderr = run_cli(
        "explain", face_files[0], str(tmp_path / "missing.png"), "--aligned", "--model", "lbp"
    )
    assert code == 2 and "missing.png" in stderr
    wide = tmp_path / "wide.png"
    Image.fromarray(np.zeros((50, 80, 3), np.uint8)).save(wide)
    code, _, stderr = run_cli("explain", face_files[0], str(wide), "--aligned", "--model", "lbp")
    assert code == 2 and "square" in stderr


@pytest.mark.slow
def test_cut_paste_command_on_lfw(run_cli, shared_data, tmp_path):
    """Section 4.3 with dlib on the first three LFW imposter pairs: the left half of face 2 pasted into face 1
    is marked similar. Every method on every pair scores the pasted half above the rest of the face, and above
    what the same half scored before the paste (the original pair, explained here as the control): the paste,
    not the region, makes it similar. Measured (inside - outside, pasted vs original, methods 1-3): pair 300
    0.26/0.28/0.48 vs 0.02/0.03/-0.07; 301 0.49/0.45/0.30 vs 0.12/0.16/0.11; 302 0.41/0.40/0.32 vs 0.07/0.09/0.20.
    (With the eyes alone the control fails on two of these pairs, where the pasted eyes wear glasses.)"""
    from xfv.datasets import read_pairs
    from xfv.faces import FaceDetector, load_face
    from xfv.models import create_model
    from xfv.xmaps import OcclusionCache

    code, stdout, _ = run_cli(
        "experiment", "cut-paste", "--root", str(shared_data / "lfw"), "--pairs", "3", "--regions", "half",
        "--out", str(tmp_path), "--json",
    )
    assert code == 0
    summary = json.loads(stdout)
    assert summary["model"] == "dlib" and summary["pairs"] == 3 and set(summary["methods"]) == {"1", "2", "3", "4"}
    records = json.loads((tmp_path / "records.json").read_text())
    assert len(records) == 3 * 4
    assert all(r["inside"] > r["outside"] and r["auc"] > 0.5 for r in records), records
    assert_figure_png(tmp_path / "cut_paste.png")

    model = create_model("dlib")
    explainer = XMapExplainer(model, cache=OcclusionCache())  # face 2's occlusions are cached by the command
    pairs, detector = read_pairs("lfw", shared_data / "lfw"), FaceDetector(select="centre")
    mask = region_mask("half", model.config.alignment)
    for index in sorted({r["pair"] for r in records}):
        pair = pairs.pairs[index]
        assert pair.label == 0
        faces = [load_face(pairs.path(p), alignment="dlib", detector=detector) for p in (pair.image1, pair.image2)]
        original = explainer.explain(*faces)
        for record in (r for r in records if r["pair"] == index):
            values = original.map(record["method"], 1)
            assert record["inside"] - record["outside"] > values[mask].mean() - values[~mask].mean(), record


@pytest.mark.slow
def test_sensitivity_command_on_lfw(run_cli, shared_data, tmp_path):
    code, stdout, _ = run_cli(
        "experiment",
        "sensitivity",
        "--root",
        str(shared_data / "lfw"),
        "--pair",
        "300",
        "--model",
        "lbp",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert code == 0
    assert json.loads(stdout)["variants"]["edge"] == ["sharp", "soft 7", "soft 14", "soft 56"]
    assert_figure_png(tmp_path / "sensitivity.png")


@pytest.mark.slow
def test_real_model_maps_of_an_lfw_pair(shared_data):
    from xfv.datasets import read_pairs
    from xfv.faces import load_face
    from xfv.models import create_model

    model = create_model("dlib")
    pairs = read_pairs("lfw", shared_data / "lfw")
    pair = pairs.pairs[0]
    faces = [load_face(pairs.path(p), alignment=model.config.alignment) for p in (pair.image1, pair.image2)]
    explanation = XMapExplainer(model, occlusion=OcclusionConfig(patch_sizes=(28,))).explain(*faces)
    assert explanation.distance < 0.6  # a genuine pair under dlib's threshold
    # Occluding a matching face pushes it away from its partner, most where the face is (not the background):
    # methods 1 and 2 are mostly positive and larger on the central 56 x 56 than on the border (measured on
    # this pair: method 1 0.45 vs 0.16, method 2 0.33 vs 0.09). Method 3 occludes both faces at once and is
    # not held to it (-0.15 vs 0.06 here).
    centre = np.zeros((112, 112), dtype=bool)
    centre[28:84, 28:84] = True
    for method in (1, 2):
        values = explanation.map(method, 1)
        assert np.abs(values).max() == pytest.approx(1.0)
        assert (values > 0).mean() > 0.5, method
        assert values[centre].mean() > values[~centre].mean() + 0.1, method
