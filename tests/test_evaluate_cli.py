"""``xfv evaluate`` and ``xfv calibrate`` on a synthetic scores CSV (and, with a stand-in distance function, on
the bundled 60-pair LFW sample)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from reference import eq3_reference

from xfv.cli import main
from xfv.confidence import load_calibration
from xfv.errors import XfvError
from xfv.jobs.evaluate import Evaluation, read_scores_csv

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "xfv" / "data" / "sample"


def write_scores(path: Path, folds: int = 3, n: int = 100, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["distance", "label", "fold", "note"])
        for fold in range(folds):
            for label, (mean, std) in ((1, (0.3, 0.08)), (0, (0.75, 0.12))):
                for d in np.clip(rng.normal(mean, std, n), 0, 2):
                    writer.writerow([f"{d:.6f}", label, fold, "x"])
    return path


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture()
def scores_csv(tmp_path) -> Path:
    return write_scores(tmp_path / "scores.csv")


def test_evaluate_scores_json_and_pairs_csv(scores_csv, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["evaluate", "--scores", str(scores_csv), "--out", str(out), "--json", "--dataset", "syn"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert list(summary)[:9] == ["dataset", "model", "pairs", "accuracy_mean", "accuracy_std", "folds", "ece",
                                 "brier", "baselines"]
    assert summary["dataset"] == "syn" and summary["model"] is None and summary["pairs"] == 600
    assert set(summary["folds"][0]) == {"fold", "threshold", "accuracy", "cscore"}
    assert set(summary["folds"][0]["cscore"]) == {"L", "d0", "k", "b"}
    assert set(summary["baselines"]) == {"platt", "isotonic", "linear"}
    assert set(summary["baselines"]["platt"]) == {"ece", "brier"}
    rows = read_csv(out / "pairs.csv")
    assert list(rows[0]) == ["fold", "label", "distance", "threshold", "prediction", "correct", "confidence"]
    assert len(rows) == 600 and {r["prediction"] for r in rows} == {"same", "different"}
    for row in rows:  # Eq. 3 of the row's fold, written out in tests/reference.py (the CSV keeps 6 decimals)
        fold = summary["folds"][int(row["fold"])]
        expected = eq3_reference([float(row["distance"])], fold["threshold"], fold["cscore"])[0]
        assert float(row["confidence"]) == pytest.approx(expected, abs=2e-6)
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["cscore_fold0.png", "cscore_fold1.png", "cscore_fold2.png", "reliability.png"]
    assert json.loads((out / "evaluation.json").read_text()) == summary


def test_calibrate_then_evaluate_with_calibration(scores_csv, tmp_path, capsys):
    saved = tmp_path / "cal" / "toy.json"
    assert main(["calibrate", "--scores", str(scores_csv), "--model", "toy", "--dataset", "syn",
                 "--save", str(saved), "--bins", "200"]) == 0
    assert "saved" in capsys.readouterr().out
    calibration = json.loads(saved.read_text())
    assert (calibration["model"], calibration["dataset"], calibration["pairs"]) == ("toy", "syn", 600)
    assert calibration["options"]["n_bins"] == 200
    assert "fingerprints" not in calibration  # distances from a file: no model to vouch for
    out = tmp_path / "fixed"
    assert main(["evaluate", "--scores", str(scores_csv), "--calibration", str(saved), "--json",
                 "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "toy"
    assert {f["threshold"] for f in summary["folds"]} == {calibration["threshold"]}
    assert {float(r["threshold"]) for r in read_csv(out / "pairs.csv")} == {round(calibration["threshold"], 6)}
    # The authors' fit from the command line: its options are saved and come back with the file.
    authors = tmp_path / "cal" / "authors.json"
    assert main(["calibrate", "--scores", str(scores_csv), "--model", "toy", "--dataset", "syn", "--save",
                 str(authors), "--bins", "2000", "--density", "--fill-empty", "--start", "authors", "--no-bounds"]) == 0
    capsys.readouterr()
    options = json.loads(authors.read_text())["options"]
    assert {k: options[k] for k in ("n_bins", "density", "fill_empty", "start", "bounded")} == {
        "n_bins": 2000, "density": True, "fill_empty": True, "start": "authors", "bounded": False}
    assert load_calibration(authors).cscore.bounded is False
    # A calibration for another model is refused.
    assert main(["evaluate", "--scores", str(scores_csv), "--calibration", str(saved), "--model", "lbp"]) == 2
    assert "fitted for model 'toy', not 'lbp'" in capsys.readouterr().err


def test_text_summary(scores_csv, capsys):
    assert main(["evaluate", "--scores", str(scores_csv)]) == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "C-Score" in text and "isotonic" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["evaluate", "--scores", "{missing}"], "missing column(s) ['fold']"),
    (["evaluate", "--scores", "{tmp}/none.csv"], "not found"),
    (["evaluate"], "Give --dataset and --root"),
    (["calibrate", "--scores", "{good}", "--save", "{tmp}/c.json"], "--model NAME --dataset NAME"),
    (["evaluate", "--scores", "{good}", "--calibration", "{tmp}/bad.json"], "unknown calibration format version 9"),
    (["evaluate", "--scores", "{good}", "--root", "{tmp}"], "either --scores or --root"),
    (["evaluate", "--scores", "{nan}"], "NaN"),
])
def test_error_paths(argv, message, scores_csv, tmp_path, capsys):
    missing = tmp_path / "missing.csv"
    missing.write_text("distance,label\n0.1,1\n")
    (tmp_path / "bad.json").write_text(json.dumps({"format": "xfv-calibration", "version": 9}))
    nan = tmp_path / "nan.csv"
    nan.write_text("distance,label,fold\nnan,1,0\n0.5,0,1\n")
    names = {"missing": missing, "tmp": tmp_path, "good": scores_csv, "nan": nan}
    code = main([a.format(**names) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"xfv {argv[0]}: error:") and message in err


def test_evaluate_images_with_stand_in_distances(tmp_path, monkeypatch, capsys):
    """The image path: pair list from --root, distances from ``pair_distances`` (replaced by a stand-in)."""
    import xfv.cli.evaluate as command
    from xfv.jobs import embeddings

    calls = {}

    def fake_pair_distances(pair_list, model, *, aligned, use_cache, progress):
        calls.update(model=model, aligned=aligned, use_cache=use_cache, progress=progress)
        rng = np.random.default_rng(1)
        return np.array([rng.normal(0.3, 0.1) if p.label else rng.normal(0.7, 0.1) for p in pair_list.pairs])

    monkeypatch.setattr(embeddings, "pair_distances", fake_pair_distances)
    stand_in = SimpleNamespace(name="dlib", fingerprint="stand-in", engine="stand-in engine")
    monkeypatch.setattr(command, "model_from_args", lambda args: stand_in if args.model == "dlib" else None)
    monkeypatch.setattr(Evaluation, "save_figures", lambda self, out: [])  # figures: tested above, 10 folds is slow
    out = tmp_path / "out"
    assert main(["evaluate", "--dataset", "lfw", "--root", str(SAMPLE), "--json", "--out", str(out),
                 "--no-cache"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["dataset"], summary["model"], summary["pairs"]) == ("lfw", "dlib", 60)
    assert summary["engine"] == "stand-in engine"  # the report names what computed the embeddings
    assert calls == {"model": stand_in, "aligned": False, "use_cache": False, "progress": False}
    rows = read_csv(out / "pairs.csv")
    assert list(rows[0]) == ["fold", "label", "image1", "image2", "distance", "threshold", "prediction",
                             "correct", "confidence"]
    assert rows[0]["image1"].endswith(".jpg")
    saved = tmp_path / "cal.json"
    assert main(["calibrate", "--dataset", "lfw", "--root", str(SAMPLE), "--save", str(saved), "--bins", "50",
                 "--no-cache"]) == 0
    assert json.loads(saved.read_text())["fingerprints"] == ["stand-in"]  # the model that made the distances


def test_scores_with_bom_and_spaced_header(scores_csv, tmp_path):
    text = scores_csv.read_text().replace("distance,label,fold,note", " Distance , label,fold ,note", 1)
    spaced = tmp_path / "spaced.csv"
    spaced.write_bytes(b"\xef\xbb\xbf" + text.encode())
    distances, labels, folds = read_scores_csv(spaced)
    np.testing.assert_array_equal(distances, read_scores_csv(scores_csv)[0])
    assert set(labels) == {0, 1} and set(folds) == {0, 1, 2}


@pytest.mark.parametrize(("data", "message"), [
    (b"distance,label,fold\n0.1,1,0\n0.9,0,-3\n", r"s.csv:3: fold must be an integer from 0 to 9, got '-3'"),
    (b"distance,label,fold\n0.1,1,0\n\n0.9,0,10\n", r"s.csv:4: fold must be .* got '10'"),
    (b"distance,label,fold\n0.1,2,0\n", r"s.csv:2: label must be 1 \(genuine\) or 0 \(imposter\), got '2'"),
    (b"distance,label,fold\nabc,1,0\n", r"s.csv:2: distance must be a cosine distance in \[0, 2\] .* got 'abc'"),
    (b"distance,label,fold\n0.1,1,0\nnan,1,0\n", r"s.csv:3: distance must be .* got 'nan'"),
    (b"distance,label,fold\n2.5,1,0\n", r"s.csv:2: distance must be .* got '2.5'"),
    (b"distance,label,fold\n0.1,1\n", r"s.csv:2: 2 column\(s\), but the header has 3"),
    (b"distance,label,fold\n0.1,1,0\n0.\xe9,1,0\n", r"s.csv:3: not UTF-8 text \(byte 0xe9\)"),
    (b"distance,label\n0.1,1\n", r"s.csv:1: missing column\(s\) \['fold'\]"),
    (b"distance,label,fold\n", r"s.csv:2: no pairs below the header"),
])
def test_scores_errors_name_the_file_and_line(tmp_path, data, message):
    (tmp_path / "s.csv").write_bytes(data)
    with pytest.raises(XfvError, match=message):
        read_scores_csv(tmp_path / "s.csv")


@pytest.mark.parametrize(("rows", "message"), [
    ("0.9,0,0\n0.1,1,1\n0.2,1,2\n", "Fold 0: its confidences are fitted on the other folds, whose 2 pairs are all genuine"),
    ("0.1,1,0\n0.9,0,1\n0.2,1,1\n", (r"Fold 0: the confidences are fitted on the other folds' 2 pairs \(1 genuine, "
                                      r"1 imposter\), and the fit failed: Eq. 2 has 4 parameters")),
])
def test_a_tiny_scores_file_with_both_labels_says_which_folds_fail(tmp_path, capsys, rows, message):
    (tmp_path / "s.csv").write_text("distance,label,fold\n" + rows)
    assert main(["evaluate", "--scores", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert "labels are all" not in err and re.search(message, err)


def test_evaluate_keeps_images_under_root(tmp_path, capsys):
    (tmp_path / "pairs.csv").write_text("a.jpg,../b.jpg,1\n")
    assert main(["evaluate", "--dataset", "csv", "--root", str(tmp_path), "--model", "lbp"]) == 2
    assert "pairs.csv:1: image path '../b.jpg' leaves the dataset root" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "csv", "--root", str(tmp_path), "--model", "lbp",
                 "--allow-outside-root"]) == 2
    assert "a.jpg' not found" in capsys.readouterr().err  # the list is accepted; its images are looked for


def write_rated_scores(path: Path, n: int = 3000, seed: int = 0) -> Path:
    """10 folds of pairs with both images' qualities: a pair with a poor image (quality 0.3) has a flatter genuine
    share around the same crossing (d = 0.5) than a clean one (0.8); labels drawn from that known curve."""
    rng = np.random.default_rng(seed)
    poor = rng.random(n) < 0.5
    q1 = np.where(poor, 0.3, 0.8) + rng.normal(0, 0.03, n)
    q2 = 0.8 + rng.normal(0, 0.03, n)
    d = rng.uniform(0.1, 0.9, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(np.where(poor, 6.0, 40.0) * (d - 0.5)))).astype(int)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["distance", "label", "fold", "quality1", "quality2"])
        writer.writerows(zip(np.round(d, 6), labels, np.arange(n) % 10, np.round(q1, 6), np.round(q2, 6)))
    return path


def test_evaluate_with_qualities_reports_the_variants_per_quality_band(tmp_path, capsys):
    scores = write_rated_scores(tmp_path / "rated.csv")
    assert main(["evaluate", "--scores", str(scores), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["variants"]) == {"C-Score (continuous)", "C-Score (quality-aware)"}
    assert summary["variants"]["C-Score (quality-aware)"]["brier"] < 0.95 * summary["brier"]
    bands = summary["bands"]
    assert set(bands) == {"low quality", "medium quality", "high quality"}
    assert sum(b["pairs"] for b in bands.values()) == 3000
    low = bands["low quality"]["methods"]
    # the paper's is over-confident (0.11); the quality-aware one's probability that the decision is right, whose
    # bins continue below 0.5, is near the sampling floor of 1,000 such pairs (about 0.03)
    assert low["C-Score (quality-aware)"]["ece"] < 0.04 and low["C-Score"]["ece"] > 0.08
    assert main(["evaluate", "--scores", str(scores)]) == 0
    printed = capsys.readouterr().out
    assert "C-Score (quality-aware)" in printed and "low quality: " in printed
    bad = tmp_path / "bad.csv"
    bad.write_text("distance,label,fold,quality1,quality2\n0.1,1,0,0.5,\n")
    assert main(["evaluate", "--scores", str(bad)]) == 2
    assert "bad.csv:2: quality1 and quality2 must be finite numbers, got ''" in capsys.readouterr().err


def test_calibrate_with_variants_on_images_and_evaluate_with_it(tmp_path, monkeypatch, capsys):
    """``--continuous --quality --quality-root --quality-folds`` on the sample and a degraded copy of it, with a
    stand-in for the model's distances and qualities; evaluate --calibration then applies the quality-aware curve."""
    import xfv.cli.evaluate as command
    from xfv.datasets.degrade import degrade_dataset, read_manifest
    from xfv.jobs import embeddings

    copy = tmp_path / "degraded"
    degrade_dataset("lfw", SAMPLE, copy, seed=3, fraction=0.5)
    degraded = {p for p, bad in read_manifest(copy).items() if bad}
    seen = []

    def fake(pair_list, model, *, aligned, use_cache, progress, perturbations=None, detector=None, measures=()):
        seen.append((pair_list.root, perturbations, measures))
        rng = np.random.default_rng(len(seen))
        q1 = np.array([0.3 if pair_list.root == copy and p.image1 in degraded else 0.9 for p in pair_list.pairs])
        q2 = np.array([0.3 if pair_list.root == copy and p.image2 in degraded else 0.9 for p in pair_list.pairs])
        spread = np.where(np.minimum(q1, q2) < 0.5, 0.2, 0.08)
        d = np.array([rng.normal(0.3, s) if p.label else rng.normal(0.7, s) for p, s in zip(pair_list.pairs, spread)])
        sharp = {0.3: 2.0, 0.9: 5.0}  # a second measure: the sharpness of the same images
        both = [np.stack([q, [sharp[v] for v in q]], axis=1)[:, :len(measures)] for q in (q1, q2)]
        return np.clip(d, 0, 2), *both

    def fake_distances(pair_list, model, **options):
        return fake(pair_list, model, **options)[0]

    monkeypatch.setattr(embeddings, "pair_distances_and_qualities", fake)
    monkeypatch.setattr(embeddings, "pair_distances", fake_distances)
    stand_in = SimpleNamespace(name="dlib", fingerprint="stand-in", engine="stand-in engine")
    monkeypatch.setattr(command, "model_from_args", lambda args: stand_in)
    monkeypatch.setattr(Evaluation, "save_figures", lambda self, out: [])
    saved = tmp_path / "cal.json"
    assert main(["calibrate", "--dataset", "lfw", "--root", str(SAMPLE), "--save", str(saved), "--continuous",
                 "--quality", "--quality-root", str(copy), "--quality-folds", "0-4", "--bins", "50"]) == 0
    printed = capsys.readouterr().out
    assert "variants: paper, continuous, quality-aware; default quality-aware" in printed
    calibration = load_calibration(saved)
    assert calibration.quality_pairs == 60  # folds 0-4 of both: 30 + 30 pairs
    assert calibration.quality.measures == ("stability", "sharpness")
    assert calibration.quality.seen == ((0.3, 0.9), (2.0, 5.0))
    assert calibration.quality_dataset == "lfw + copy degraded, folds 0-4"
    assert {root for root, _, _ in seen} == {SAMPLE, copy}
    assert main(["evaluate", "--dataset", "lfw", "--root", str(copy), "--calibration", str(saved), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cscore"] == "quality-aware" and "paper" in summary
    assert set(summary["bands"]) <= {"both clean", "one degraded", "both degraded"} and len(summary["bands"]) >= 2
    assert main(["calibrate", "--scores", str(write_rated_scores(tmp_path / "r.csv")), "--model", "x",
                 "--dataset", "y", "--save", str(tmp_path / "x.json"), "--quality"]) == 2
    assert "--quality rates images" in capsys.readouterr().err
    assert main(["calibrate", "--dataset", "lfw", "--root", str(SAMPLE), "--save", str(tmp_path / "x.json"),
                 "--quality-folds", "0-4"]) == 2
    assert "belong to --quality" in capsys.readouterr().err
