"""The cross-quality benchmark: image quality scores by their error-versus-discard curves, and the C-Score variants
by their calibration per quality band, on clean LFW and on degraded copies (``xfv data degrade``).

Needs the per-image features of ``benchmarks/quality_features.py`` for each model and copy (the embeddings come
from there; distances are Eq. 1 of those embeddings, exactly what ``xfv evaluate`` computes):

    python benchmarks/quality_benchmark.py --features DIR --clean ../shared/data/lfw \
        --degraded fit=DEGRADED_SEED1 --test seed2=DEGRADED_SEED2_FOLDS_5_9 \
        --shipped fit:5-9 --shipped seed2:5-9 [--brisque brisque.csv] [--out report.json]

Prints the EDC table (area under FNMR at FMR 1e-3 and 1e-2 up to 30 % discarded, per quality score, model and
copy), the calibration tables (ECE and Brier of each C-Score variant out of fold, overall and per band: both
clean, one degraded, both degraded), the shipped-calibration test refitted here (t on all of clean LFW, curves on
folds 0-4 of clean LFW and the ``fit`` copy, applied to folds 5-9 of the ``fit`` copy and of every ``--test`` copy),
and with ``--shipped`` the calibration file xfv ships, applied to the given folds of a copy. The quality-aware
C-Score is shown as shipped (the probability that the decision at t is right, in [0, 1]), clipped at 0.5 as Eq. 3
clips, and next to the per-pair threshold alternative (decide where its curve crosses 0.5: a comparison, not
shipped), each with its accuracy, false-match and false non-match rates.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np

from xfv.confidence import CScore, brier_score, default_calibration, expected_calibration_error
from xfv.confidence.quality_aware import QualityAwareCScore
from xfv.datasets import read_pairs
from xfv.datasets.degrade import read_manifest
from xfv.quality.edc import error_versus_discard, pair_quality
from xfv.quality.stability import PERTURBATIONS, perturbation_distances, stability_from_distances
from xfv.store.cache import content_hash
from xfv.verification import best_threshold, cosine_distance, kfold_verification

GEOMETRIC = tuple(n for n in PERTURBATIONS if not n.startswith("occlude"))
OCCLUSION = tuple(n for n in PERTURBATIONS if n.startswith("occlude"))
BANDS = ("both clean", "one degraded", "both degraded")
ECE_BINS_ISSUE = 15  # the issue's table: 15 equal-width bins over [0.5, 1]


class Copy:
    """One dataset copy seen by one model: per pair distance, label, fold, band; per image its features."""

    def __init__(self, name: str, root: str, store: dict[str, np.ndarray], index: dict[str, int],
                 partial: bool = False) -> None:
        pair_list = read_pairs("lfw" if (Path(root) / "pairs.txt").is_file() else "csv", root)
        degraded = read_manifest(root) if (Path(root) / "degradations.csv").is_file() else {}
        paths = sorted({p for pair in pair_list.pairs for p in (pair.image1, pair.image2)})
        sha = {p: content_hash((Path(root) / p).read_bytes()) for p in paths}
        missing = [p for p in paths if sha[p] not in index]
        if missing and not partial:
            raise SystemExit(f"{name}: {len(missing)} images have no features (first {missing[0]}); run "
                             "benchmarks/quality_features.py on this copy first.")
        if missing:  # --partial: only the pairs whose images both have features (an early look, biased)
            pair_list.pairs[:] = [p for p in pair_list.pairs if sha[p.image1] in index and sha[p.image2] in index]
            print(f"{name}: partial, {len(pair_list.pairs)} pairs")
        self.name = name
        self.rows1 = np.array([index[sha[p.image1]] for p in pair_list.pairs])
        self.rows2 = np.array([index[sha[p.image2]] for p in pair_list.pairs])
        self.labels = np.array([p.label for p in pair_list.pairs])
        self.folds = np.array([p.fold for p in pair_list.pairs])
        self.band = np.array([degraded.get(p.image1, False) + degraded.get(p.image2, False) for p in pair_list.pairs])
        embeddings = store["embedding"]
        self.distances = cosine_distance(embeddings[self.rows1], embeddings[self.rows2])
        self.sha1 = [sha[p.image1] for p in pair_list.pairs]
        self.sha2 = [sha[p.image2] for p in pair_list.pairs]


def image_scores(store: dict[str, np.ndarray], brisque: dict[str, float]) -> dict[str, np.ndarray]:
    """Every candidate quality per image of the store (higher is better)."""
    n = len(store["sha"])
    names = tuple(store["names"].tolist()) if "names" in store else tuple(PERTURBATIONS)
    distances = perturbation_distances(store["embedding"], store["perturbed"])
    columns = {name: i for i, name in enumerate(names)}
    scores = {
        "random": np.random.default_rng(0).random(n),
        "heuristic": store["heuristic"],
        "detector": detector_confidence(store["detector"], store["score"]),
        "embedding norm": np.linalg.norm(store["embedding"], axis=1),
    }
    for label, subset in (("all 9", tuple(PERTURBATIONS)), ("geometric 5", GEOMETRIC), ("occlusion 4", OCCLUSION),
                          ("flip", ("flip",))):
        if all(name in columns for name in subset):
            scores[f"stability ({label})"] = stability_from_distances(distances[:, [columns[c] for c in subset]])
    if "crop_sharpness" in store:  # of the crop the model embeds (xfv.quality.rating)
        scores["sharpness"] = store["crop_sharpness"]
    if brisque:
        scores["BRISQUE"] = -np.array([brisque.get(s, np.nan) for s in store["sha"].tolist()])
    return scores


def combined(scores: dict[str, np.ndarray], reference: np.ndarray) -> np.ndarray:
    """Stability (geometric 5) and sharpness in one number: the sum of ``-log(1 - stability)`` and the sharpness
    measure, each standardised by its mean and standard deviation over the ``reference`` images (clean LFW)."""
    parts = [-np.log(np.clip(1 - scores["stability (geometric 5)"], 1e-9, None)), scores["sharpness"]]
    return sum((p - p[reference].mean()) / p[reference].std() for p in parts)


def quality_features(scores: dict[str, np.ndarray], spec: str) -> np.ndarray:
    """``A+B``: the scores A and B as columns (the quality-aware C-Score's measures), ``A``: one."""
    return np.stack([scores[name] for name in spec.split("+")], axis=1)


def detector_confidence(source: np.ndarray, score: np.ndarray) -> np.ndarray:
    """An order by the detector's confidence: the centred fallback lowest, then the CNN, then HOG or YuNet, each
    by its own score (ranked within the detector, so that the scales of different detectors do not mix)."""
    rank = {"centre": 0, "cnn": 1, "hog": 2, "yunet": 2}
    out = np.zeros(len(source))
    for name, level in rank.items():
        mask = source == name
        if np.any(mask):
            within = np.argsort(np.argsort(np.nan_to_num(score[mask], nan=-np.inf))) / max(1, mask.sum())
            out[mask] = level + within
    return out


def edc_table(copies: dict[str, Copy], scores: dict[str, np.ndarray]) -> dict:
    table = {}
    for copy_name, copy in copies.items():
        for score_name, values in scores.items():
            if np.any(~np.isfinite(values[copy.rows1])) or np.any(~np.isfinite(values[copy.rows2])):
                continue
            q = pair_quality(values[copy.rows1], values[copy.rows2])
            row = {}
            for fmr in (1e-3, 1e-2):
                edc = error_versus_discard(copy.distances, copy.labels, q, fmr=fmr)
                row[f"fmr={fmr:g}"] = {"area30": edc.area(0.3), "area20": edc.area(0.2), "fnmr0": float(edc.fnmr[0]),
                                       "fnmr_at_30": float(edc.fnmr[np.argmin(np.abs(edc.fractions - 0.3))])}
            table[(copy_name, score_name)] = row
    return table


def decided(same: np.ndarray, labels: np.ndarray, confidence: np.ndarray) -> dict[str, np.ndarray]:
    """One way of deciding and scoring the pairs: the decisions (``same``), whether each is right, its confidence."""
    return {"same": same, "correct": same == (labels == 1), "confidence": confidence}


def at_t(d: np.ndarray, y: np.ndarray, t: float | np.ndarray, confidence: np.ndarray) -> dict[str, np.ndarray]:
    """The paper's decisions ``d <= t`` with a confidence."""
    return decided(d <= t, y, confidence)


def per_pair_threshold(d: np.ndarray, y: np.ndarray, curve: np.ndarray) -> dict[str, np.ndarray]:
    """The alternative measured for comparison only (not shipped): decide ``same`` where the quality-aware curve says
    genuine is more likely than not (``c(d, z) >= 0.5``, a threshold per pair), with confidence ``max(c, 1 - c)``.
    It changes verdicts and the false-match rate, which is an operator's policy, not a confidence's business."""
    return decided(curve >= 0.5, y, np.maximum(curve, 1.0 - curve))


def quality_aware_rows(d: np.ndarray, y: np.ndarray, t: float | np.ndarray, score: QualityAwareCScore,
                       q1: np.ndarray, q2: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """The quality-aware C-Score as shipped (the probability that the decision at t is right, in [0, 1]), the same
    clipped to [0.5, 1] as Eq. 3 clips (what it gave before), and the per-pair threshold alternative."""
    honest = score.confidence(d, q1, q2)
    return {"quality-aware": at_t(d, y, t, honest),
            "quality-aware, clipped at 0.5": at_t(d, y, t, np.maximum(honest, 0.5)),
            "per-pair threshold (comparison)": per_pair_threshold(d, y, score.curve(d, q1, q2))}


def out_of_fold(copy: Copy, quality: np.ndarray | None) -> dict[str, dict[str, np.ndarray]]:
    """Each variant's decisions and confidences out of fold (fold k fitted on the others at t_k)."""
    d, y, folds = copy.distances, copy.labels, copy.folds
    t = kfold_verification(d, y, folds).thresholds
    names = ["paper", "continuous"]
    if quality is not None:
        names += ["quality-aware", "quality-aware, clipped at 0.5", "per-pair threshold (comparison)"]
    parts: dict[str, dict[str, list]] = {name: {"same": [], "correct": [], "confidence": [], "index": []}
                                         for name in names}
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        tk = float(t[test][0])
        rows = {"paper": at_t(d[test], y[test], tk, CScore().fit(d[train], y[train], tk).confidence(d[test])),
                "continuous": at_t(d[test], y[test], tk,
                                   CScore(continuous=True).fit(d[train], y[train], tk).confidence(d[test]))}
        if quality is not None:
            q1, q2 = quality[copy.rows1], quality[copy.rows2]
            qa = QualityAwareCScore().fit(d[train], y[train], q1[train], q2[train], tk)
            rows.update(quality_aware_rows(d[test], y[test], tk, qa, q1[test], q2[test]))
        for name, row in rows.items():
            for key, values in row.items():
                parts[name][key].append(values)
            parts[name]["index"].append(np.flatnonzero(test))
    out = {}
    for name, lists in parts.items():
        order = np.argsort(np.concatenate(lists.pop("index")))
        out[name] = {key: np.concatenate(values)[order] for key, values in lists.items()}
    return out


def calibration_rows(bands: np.ndarray, labels: np.ndarray, variants: dict[str, dict[str, np.ndarray]]) -> dict:
    rows = {}
    for name, v in variants.items():
        row = {"all": metrics(v, labels)}
        for band, label in enumerate(BANDS):
            mask = bands == band
            if mask.any() and bands.max() > 0:
                row[label] = metrics({key: values[mask] for key, values in v.items()}, labels[mask])
        rows[name] = row
    return rows


def metrics(v: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    """Accuracy, the error rates of the decisions, and the calibration of the confidences: ECE in bins 0.05 wide over
    [0.5, 1], continued below 0.5 (20 over [0, 1]), and in the issue's bins (15 over [0.5, 1], 30 over [0, 1])."""
    correct, confidence, same = v["correct"], v["confidence"], v["same"]
    genuine = labels == 1
    return {"n": len(correct), "accuracy": float(correct.mean()), "mean_confidence": float(confidence.mean()),
            "below_half": float(np.mean(confidence < 0.5)),
            "fmr": float(same[~genuine].mean()) if (~genuine).any() else float("nan"),
            "fnmr": float((~same[genuine]).mean()) if genuine.any() else float("nan"),
            "ece": expected_calibration_error(correct, confidence),
            "ece15": expected_calibration_error(correct, confidence, n_bins=ECE_BINS_ISSUE),
            "brier": brier_score(correct, confidence), "ece_floor": ece_floor(confidence)}


def ece_floor(confidence: np.ndarray, draws: int = 200) -> float:
    """The ECE (10 bins) that a *perfectly* calibrated score with these confidences shows on this many pairs: the
    mean over ``draws`` of the ECE when each decision is right with probability equal to its confidence. An ECE
    target below it cannot be met by any score on a sample of this size (sampling noise, not miscalibration)."""
    rng = np.random.default_rng(0)
    return float(np.mean([expected_calibration_error(rng.random(len(confidence)) < confidence, confidence)
                          for _ in range(draws)]))


def jump_at_t(copy: Copy) -> dict:
    """|c(t) - (1 - c(t))| of the fold fits, paper and continuous (the jump of Eq. 3 at t)."""
    d, y, folds = copy.distances, copy.labels, copy.folds
    t = kfold_verification(d, y, folds).thresholds
    jumps = {"paper": [], "continuous": []}
    for k in np.unique(folds):
        tk = float(t[folds == k][0])
        for name, score in (("paper", CScore()), ("continuous", CScore(continuous=True))):
            c = float(score.fit(d[folds != k], y[folds != k], tk).curve(np.array([tk]))[0])
            jumps[name].append(abs(2 * c - 1))
    return {name: float(np.median(v)) for name, v in jumps.items()}


def shipped_test(clean: Copy, fit: Copy, test: Copy, quality: np.ndarray, fit_folds: np.ndarray) -> dict:
    """Fit t (on clean LFW, all its pairs, as the shipped file), the paper's curve and the quality-aware curve on
    ``fit_folds`` of clean + the fit copy; apply to the other folds of the test copy."""
    t = best_threshold(clean.distances, clean.labels)
    use_clean, use_fit = np.isin(clean.folds, fit_folds), np.isin(fit.folds, fit_folds)
    d = np.concatenate([clean.distances[use_clean], fit.distances[use_fit]])
    y = np.concatenate([clean.labels[use_clean], fit.labels[use_fit]])
    q1 = np.concatenate([quality[clean.rows1][use_clean], quality[fit.rows1][use_fit]])
    q2 = np.concatenate([quality[clean.rows2][use_clean], quality[fit.rows2][use_fit]])
    quality_aware = QualityAwareCScore().fit(d, y, q1, q2, t)
    held = ~np.isin(test.folds, fit_folds)
    dt, yt = test.distances[held], test.labels[held]
    variants = {"paper (clean LFW, all pairs: today's shipped)": at_t(dt, yt, t, CScore().fit(
                    clean.distances, clean.labels, t).confidence(dt)),
                "paper (clean + degraded)": at_t(dt, yt, t, CScore().fit(d, y, t).confidence(dt)),
                **quality_aware_rows(dt, yt, t, quality_aware, quality[test.rows1][held], quality[test.rows2][held])}
    return {"threshold": t, "pairs": int(held.sum()), "rows": calibration_rows(test.band[held], yt, variants)}


def shipped_file_test(model: str, copy: Copy, quality: np.ndarray, folds: tuple[int, int]) -> dict:
    """The calibration file xfv ships for ``model`` (its threshold, curves and default variant), applied to the pairs
    of ``folds`` of a copy, as ``xfv evaluate --calibration`` applies it; with the per-pair threshold alternative."""
    calibration = default_calibration(model)
    keep = (copy.folds >= folds[0]) & (copy.folds <= folds[1])
    d, y = copy.distances[keep], copy.labels[keep]
    t = calibration.threshold
    variants = {"paper (shipped)": at_t(d, y, t, calibration.score(d, variant="paper").confidence)}
    if calibration.continuous is not None:
        variants["continuous (shipped)"] = at_t(d, y, t, calibration.score(d, variant="continuous").confidence)
    if calibration.quality_aware is not None:
        q1, q2 = quality[copy.rows1][keep], quality[copy.rows2][keep]
        variants.update(quality_aware_rows(d, y, t, calibration.quality_aware, q1, q2))
    return {"threshold": t, "pairs": int(keep.sum()), "variants": list(calibration.variants),
            "rows": calibration_rows(copy.band[keep], y, variants)}


def read_brisque(path: str | None) -> dict[str, float]:
    if not path:
        return {}
    with open(path, newline="") as handle:
        return {row["sha"]: float(row["brisque"]) for row in csv.DictReader(handle)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True, help="folder with <model>.npz from quality_features.py")
    parser.add_argument("--clean", required=True, help="the clean dataset (LFW) root")
    parser.add_argument("--degraded", action="append", default=[], metavar="NAME=ROOT",
                        help="a degraded copy for the EDC and the out-of-fold tables; 'fit' also trains the shipped test")
    parser.add_argument("--test", action="append", default=[], metavar="NAME=ROOT",
                        help="a degraded copy (or part of one) for the shipped-calibration tests only")
    parser.add_argument("--shipped", action="append", default=[], metavar="COPY:LOW-HIGH",
                        help="apply xfv's shipped calibration file to these folds of a copy (e.g. test:5-9)")
    parser.add_argument("--models", default="dlib,sface")
    parser.add_argument("--quality", default="stability (geometric 5)+sharpness",
                        help="the measures the quality-aware C-Score reads, joined by + (default: as shipped)")
    parser.add_argument("--brisque", help="CSV sha,brisque (BRISQUE on the heuristic's crops, a side run)")
    parser.add_argument("--out", help="JSON report")
    parser.add_argument("--partial", action="store_true", help="degraded copies: use the pairs with features only")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"load at start: {os.getloadavg()}")
    brisque = read_brisque(args.brisque)
    report: dict = {"load_start": os.getloadavg()}
    heuristic: dict[str, float] = {}  # model-free: from the run that computed it (dlib's, --heuristic)
    for model in args.models.split(","):
        data = np.load(Path(args.features) / f"{model}.npz", allow_pickle=False)
        store = {name: data[name] for name in data.files}
        if "heuristic" in store:
            heuristic.update(zip(store["sha"].tolist(), store["heuristic"].tolist()))
        store["heuristic"] = np.array([heuristic.get(s, np.nan) for s in store["sha"].tolist()])
        index = {s: i for i, s in enumerate(store["sha"].tolist())}
        copies = {"clean": Copy("clean", args.clean, store, index)}
        for item in args.degraded:
            name, _, root = item.partition("=")
            copies[name] = Copy(name, root, store, index, args.partial)
        tests = {}
        for item in args.test:
            name, _, root = item.partition("=")
            tests[name] = Copy(name, root, store, index, args.partial)
        scores = image_scores(store, brisque)
        reference = np.zeros(len(store["sha"]), bool)
        reference[np.concatenate([copies["clean"].rows1, copies["clean"].rows2])] = True
        scores["stability + sharpness"] = combined(scores, reference)
        print(f"\n## {model}: EDC area (mean FNMR over 0-30 % discarded; lower is better)")
        table = edc_table(copies, scores)
        for fmr in ("fmr=0.001", "fmr=0.01"):
            print(f"\n{fmr}: " + " | ".join(f"{c} (FNMR at 0 %)" for c in copies))
            for score_name in scores:
                cells = [table.get((c, score_name), {}).get(fmr) for c in copies]
                print(f"{score_name:26s} " + " | ".join(
                    "-" if cell is None else f"{cell['area30']:.4f} ({cell['fnmr0']:.4f})" for cell in cells))
        quality = quality_features(scores, args.quality)
        print(f"\n## {model}: calibration out of fold (ECE: bins 0.05 wide, 10 over [0.5, 1], 20 over [0, 1]; the "
              f"issue's 15 over [0.5, 1] in brackets), quality: {args.quality}")
        model_report = {"edc": {f"{c}|{s}": v for (c, s), v in table.items()}, "calibration": {}, "jump": {}}
        for copy_name, copy in copies.items():
            rows = calibration_rows(copy.band, copy.labels, out_of_fold(copy, quality))
            model_report["calibration"][copy_name] = rows
            model_report["jump"][copy_name] = jump_at_t(copy)
            print_rows(f"{copy_name} (jump at t, median over folds: {model_report['jump'][copy_name]})", rows)
        if "fit" in copies:
            for test in [copies["fit"], *tests.values()]:
                result = shipped_test(copies["clean"], copies["fit"], test, quality, np.arange(5))
                model_report[f"refit test: folds 0-4 -> {test.name}"] = result
                print_rows(f"shipped test (refit here): folds 0-4 of clean + fit copy -> folds 5-9 of {test.name} "
                           f"({result['pairs']} pairs, t = {result['threshold']:.4f})", result["rows"])
        for item in args.shipped:
            name, _, folds = item.partition(":")
            low, high = (int(v) for v in folds.split("-"))
            result = shipped_file_test(model, {**copies, **tests}[name], quality, (low, high))
            model_report[f"shipped file: {item}"] = result
            print_rows(f"the shipped calibration file ({', '.join(result['variants'])}) -> folds {folds} of {name} "
                       f"({result['pairs']} pairs, t = {result['threshold']:.4f})", result["rows"])
        report[model] = model_report
    report["seconds"] = time.perf_counter() - started
    report["load_end"] = os.getloadavg()
    print(f"\n{report['seconds']:.0f} s; load at end: {report['load_end']}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1, default=float))


def print_rows(title: str, rows: dict) -> None:
    print(f"\n{title}")
    print(f"{'variant':34s} {'band':14s} {'n':>5s} {'acc':>6s} {'FMR':>6s} {'FNMR':>6s} {'mean C':>7s} {'C<.5':>5s} "
          f"{'ECE':>15s} {'Brier':>7s} {'floor':>6s}")
    for name, row in rows.items():
        for band, m in row.items():
            print(f"{name:34s} {band:14s} {m['n']:5d} {m['accuracy']:6.3f} {m['fmr']:6.4f} {m['fnmr']:6.3f} "
                  f"{m['mean_confidence']:7.3f} {m['below_half']:5.3f} {m['ece']:6.4f} ({m['ece15']:.4f}) "
                  f"{m['brier']:7.4f} {m['ece_floor']:6.4f}")


if __name__ == "__main__":
    main()
