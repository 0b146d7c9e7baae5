"""``xfv evaluate`` (the 10-fold protocol with out-of-fold C-Score confidences and their calibration) and
``xfv calibrate`` (a field calibration file), from images or from a ``distance,label,fold`` CSV."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from xfv.cli.common import (
    add_model_arguments,
    add_outside_root_argument,
    model_from_args,
    print_json,
    show_progress,
)
from xfv.confidence import Calibration, CScore, load_calibration
from xfv.confidence.cscore import STARTS
from xfv.models import EmbeddingModel

DEFAULT_MODEL = "dlib"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    evaluate = subparsers.add_parser(
        "evaluate", help="10-fold accuracy, out-of-fold C-Score confidence and its calibration (ECE, Brier)")
    _add_input_arguments(evaluate)
    evaluate.add_argument("--out", help="folder for pairs.csv, evaluation.json and the figures (Fig. 2 per fold, "
                                        "reliability diagram)")
    evaluate.add_argument("--calibration", help="calibration JSON: its fixed threshold and curve score every pair "
                                                "instead of fold-wise fits (its default C-Score variant: "
                                                "quality-aware where it has one)")
    evaluate.add_argument("--quality", action="store_true",
                          help="also rate every image by the model-based quality (docs/quality.md) and fit the "
                               "quality-aware C-Score fold-wise (implied by a calibration that has one)")
    evaluate.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_cscore_arguments(evaluate)
    evaluate.set_defaults(handler=run_evaluate)

    calibrate = subparsers.add_parser("calibrate", help="fit a field calibration (threshold and C-Score curve) "
                                                        "on a whole dataset and save it as JSON")
    _add_input_arguments(calibrate)
    calibrate.add_argument("--save", required=True, help="calibration JSON file to write")
    calibrate.add_argument("--json", action="store_true", help="print the calibration as JSON")
    variants = calibrate.add_argument_group("C-Score variants (docs/quality.md; the paper's curve is always fitted)")
    variants.add_argument("--continuous", action="store_true",
                          help="add the continuous C-Score (Eq. 2 through c(t) = 0.5), fitted on the same pairs")
    variants.add_argument("--quality", action="store_true",
                          help="add the quality-aware C-Score (images rated by the model's embedding stability) "
                               "and make it the default; it is fitted on --root's pairs and those of each "
                               "--quality-root, at the same t")
    variants.add_argument("--quality-root", action="append", default=[], metavar="DIR",
                          help="another copy of the dataset (e.g. from 'xfv data degrade', same pair list format) "
                               "whose pairs the quality-aware curve is fitted on too; repeatable")
    variants.add_argument("--quality-folds", type=_folds, metavar="LOW-HIGH",
                          help="fit the quality-aware curve on these folds only (e.g. 0-4: the others stay unseen)")
    _add_cscore_arguments(calibrate)
    calibrate.set_defaults(handler=run_calibrate)


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("input (images or a scores CSV)")
    source.add_argument("--dataset", help="with --root: pair-list format (lfw, calfw, ...); with --scores: the "
                                          "dataset's name to record")
    source.add_argument("--root", help="dataset folder holding the images (and by default the pair list)")
    source.add_argument("--pairs", help="pair list file (default: the format's usual file inside --root)")
    source.add_argument("--scores", help="CSV with distance,label,fold columns: no model, no images")
    add_outside_root_argument(source)
    add_model_arguments(parser)
    parser.set_defaults(model=None)  # None: dlib for images; with --scores the name is only recorded


def _add_cscore_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("C-Score options (defaults: the paper)")
    group.add_argument("--bins", type=int, default=400, help="histogram bins over [0, 2] (paper 400, authors' "
                                                             "code 2000)")
    group.add_argument("--density", action="store_true", help="density-normalised histograms (authors' code)")
    group.add_argument("--fill-empty", action="store_true", help="empty bins count as 1 left of t, 0 right of it "
                                                                 "(authors' code)")
    group.add_argument("--weighted", action="store_true", help="weigh each bin by its number of pairs (not in the "
                                                               "paper; off by default)")
    group.add_argument("--start", choices=STARTS, default="auto",
                       help="start of the fit: auto (slopes -19 and -5, best kept) or authors ([max r, t, -20, min r])")
    group.add_argument("--no-bounds", dest="bounded", action="store_false",
                       help="fit without the parameter bounds and the separated-bins limit (authors' code); with "
                            "--bins 2000 --density --fill-empty --start authors: the authors' fit")


def _folds(text: str) -> tuple[int, ...]:
    low, sep, high = text.partition("-")
    if not (low.isdigit() and (not sep or high.isdigit())) or int(high or low) < int(low):
        raise argparse.ArgumentTypeError(f"expected folds LOW-HIGH such as 0-4, got {text!r}")
    return tuple(range(int(low), int(high or low) + 1))


def _cscore_options(args: argparse.Namespace) -> dict:
    return {"n_bins": args.bins, "density": args.density, "fill_empty": args.fill_empty, "start": args.start,
            "weighted": args.weighted, "bounded": args.bounded}


def _load_scores(
    args: argparse.Namespace, perturbations: tuple[str, ...] | None = None, measures: tuple[str, ...] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, list] | None, EmbeddingModel | None, tuple | None,
           np.ndarray | None]:
    """Distances, labels, folds, (from images only) the image columns of pairs.csv, the model (None for distances
    from a file), both images' qualities (with ``perturbations``, or columns of the file) and the pairs' bands (a
    degraded copy's, else quality tertiles)."""
    from xfv.jobs.evaluate import (  # scikit-learn and matplotlib load only when used
        quality_bands,
        read_scores_csv,
    )

    if args.scores is not None:
        if args.root is not None or args.pairs is not None:
            raise ValueError("Give either --scores or --root/--pairs, not both.")
        distances, labels, folds, qualities = read_scores_csv(Path(args.scores), qualities=True)
        bands = None if qualities is None else quality_bands(*qualities)
        return distances, labels, folds, None, None, qualities, bands
    if args.root is None or args.dataset is None:
        raise ValueError("Give --dataset and --root (images), or --scores FILE.csv (distances).")
    from xfv.datasets import read_pairs
    from xfv.datasets.degrade import degradation_bands
    from xfv.jobs.embeddings import pair_distances, pair_distances_and_qualities

    pair_list = read_pairs(args.dataset, args.root, args.pairs, allow_outside_root=args.allow_outside_root)
    if args.model is None:
        args.model = DEFAULT_MODEL
    model = model_from_args(args)
    options = {"aligned": args.aligned, "use_cache": not args.no_cache, "progress": show_progress(args)}
    qualities = None
    if perturbations:
        distances, *both = pair_distances_and_qualities(pair_list, model, perturbations=perturbations,
                                                        measures=measures, **options)
        qualities = tuple(both)
    else:
        distances = pair_distances(pair_list, model, **options)
    labels = np.array([p.label for p in pair_list.pairs])
    folds = np.array([p.fold for p in pair_list.pairs])
    images = {"image1": [p.image1 for p in pair_list.pairs], "image2": [p.image2 for p in pair_list.pairs]}
    bands = degradation_bands(pair_list)
    if bands is None and qualities is not None:
        bands = quality_bands(*qualities)
    return distances, labels, folds, images, model, qualities, bands


def run_evaluate(args: argparse.Namespace) -> int:
    from xfv.jobs.evaluate import evaluate_scores

    calibration = None if args.calibration is None else load_calibration(args.calibration)
    if calibration is not None:
        if args.model is None:
            args.model = calibration.model
        elif args.model != calibration.model:
            raise ValueError(f"Calibration {args.calibration!r} was fitted for model {calibration.model!r}, "
                             f"not {args.model!r}.")
    from xfv.quality import QUALITY_MEASURES
    from xfv.quality.stability import DEFAULT_PERTURBATIONS

    perturbations, measures = None, QUALITY_MEASURES
    if calibration is not None and calibration.quality is not None:
        perturbations, measures = calibration.quality.perturbations, calibration.quality.measures
    elif args.quality:
        perturbations = DEFAULT_PERTURBATIONS
    distances, labels, folds, images, model, qualities, bands = _load_scores(args, perturbations, measures)
    quality = {"bands": bands} | ({} if qualities is None else {"quality1": qualities[0], "quality2": qualities[1]})
    if calibration is not None:
        evaluation = evaluate_scores(distances, labels, folds, dataset=args.dataset, model=args.model,
                                     calibration=calibration, **quality)
    else:
        evaluation = evaluate_scores(distances, labels, folds, dataset=args.dataset, model=args.model,
                                     **quality, **_cscore_options(args))
    if model is not None:
        evaluation.summary["engine"] = model.engine
    if args.out is not None:
        out = Path(args.out)
        evaluation.write_csv(out / "pairs.csv", images)
        (out / "evaluation.json").write_text(json.dumps(evaluation.summary, indent=2) + "\n", encoding="utf-8")
        evaluation.save_figures(out)
    if args.json:
        print_json(evaluation.summary)
    else:
        _print_summary(evaluation.summary)
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    if args.scores is not None and (args.model is None or args.dataset is None):
        raise ValueError("With --scores, name the model and dataset that made the distances: "
                         "--model NAME --dataset NAME (they are recorded in the calibration).")
    if (args.quality_root or args.quality_folds) and not args.quality:
        raise ValueError("--quality-root and --quality-folds belong to --quality.")
    if args.quality and args.scores is not None:
        raise ValueError("--quality rates images: give --dataset and --root, not --scores.")
    distances, labels, _, _, model, _, _ = _load_scores(args)
    calibration = Calibration.fit(distances, labels, model=args.model, dataset=args.dataset,
                                  fingerprint=model.fingerprint if model else "", **_cscore_options(args))
    if args.continuous:
        calibration = calibration.with_variants(continuous=CScore(**{**_cscore_options(args), "continuous": True}).fit(
            distances, labels, calibration.threshold))
    if args.quality:
        calibration = _add_quality_aware(args, calibration)
    path = calibration.save(args.save)
    if args.json:
        print_json(calibration.to_dict())
    else:
        p = calibration.cscore.parameters
        print(f"{calibration.model} on {calibration.dataset}: {calibration.pairs} pairs, threshold "
              f"{calibration.threshold:.6f}, accuracy {calibration.accuracy:.4f}")
        print(f"C-Score (Eq. 2): L={p['L']:.6f} d0={p['d0']:.6f} k={p['k']:.3f} b={p['b']:.6f}")
        if len(calibration.variants) > 1:
            print(f"variants: {', '.join(calibration.variants)}; default {calibration.default_variant}"
                  + (f"; quality-aware fitted on {calibration.quality_dataset} ({calibration.quality_pairs} pairs), "
                     "image qualities seen " + ", ".join(
                         f"{m} {lo:.4f}-{hi:.4f}" for m, (lo, hi) in zip(calibration.quality.measures,
                                                                         calibration.quality.seen))
                     if calibration.quality else ""))
        print(f"saved {path}")
    return 0


def _add_quality_aware(args: argparse.Namespace, calibration: Calibration) -> Calibration:
    """The quality-aware C-Score at the calibration's t, fitted on --root and every --quality-root (their
    --quality-folds), with the range of image qualities it saw."""
    from xfv.confidence.calibration_file import QUALITY_AWARE, QualityMeasure
    from xfv.confidence.quality_aware import QualityAwareCScore
    from xfv.datasets import read_pairs
    from xfv.jobs.embeddings import pair_distances_and_qualities
    from xfv.quality import QUALITY_MEASURES
    from xfv.quality.stability import DEFAULT_PERTURBATIONS

    model = model_from_args(args)
    parts = []
    for root in [args.root, *args.quality_root]:
        pair_list = read_pairs(args.dataset, root, args.pairs if root == args.root else None,
                               allow_outside_root=args.allow_outside_root)
        keep = np.array([args.quality_folds is None or p.fold in args.quality_folds for p in pair_list.pairs])
        d, q1, q2 = pair_distances_and_qualities(pair_list, model, aligned=args.aligned, use_cache=not args.no_cache,
                                                 progress=show_progress(args), perturbations=DEFAULT_PERTURBATIONS,
                                                 measures=QUALITY_MEASURES)
        labels = np.array([p.label for p in pair_list.pairs])
        parts.append((d[keep], labels[keep], q1[keep], q2[keep]))
    d, y, q1, q2 = (np.concatenate(column) for column in zip(*parts))
    if len(d) == 0:
        raise ValueError(f"--quality-folds {args.quality_folds} select no pairs.")
    folds = "" if args.quality_folds is None else f", folds {args.quality_folds[0]}-{args.quality_folds[-1]}"
    source = " + ".join([str(args.dataset), *(f"copy {Path(r).name}" for r in args.quality_root)]) + folds
    return calibration.with_variants(
        quality_aware=QualityAwareCScore().fit(d, y, q1, q2, calibration.threshold),
        quality=QualityMeasure.of(QUALITY_MEASURES, DEFAULT_PERTURBATIONS, q1, q2),
        quality_dataset=source, quality_pairs=len(d), default=QUALITY_AWARE)


def _print_summary(summary: dict) -> None:
    name = " on ".join(str(summary[k]) for k in ("model", "dataset") if summary.get(k))
    print(f"{name + ': ' if name else ''}{summary['pairs']} pairs, accuracy "
          f"{summary['accuracy_mean']:.4f} +- {summary['accuracy_std']:.4f}")
    if summary.get("engine"):
        print(f"engine: {summary['engine']}")
    print(f"{'fold':>4} {'threshold':>10} {'accuracy':>9} {'L':>8} {'d0':>8} {'k':>9} {'b':>8}")
    for fold in summary["folds"]:
        c = fold["cscore"]
        print(f"{fold['fold']:>4} {fold['threshold']:>10.6f} {fold['accuracy']:>9.4f} {c['L']:>8.4f} "
              f"{c['d0']:>8.4f} {c['k']:>9.2f} {c['b']:>8.4f}")
    cscore = f"C-Score ({summary['cscore']})" if summary.get("cscore") else "C-Score"
    print(f"{'method':<24} {'ECE':>8} {'Brier':>8}")
    print(f"{cscore:<24} {summary['ece']:>8.4f} {summary['brier']:>8.4f}")
    for name, metrics in {**summary.get("variants", {}), **summary["baselines"]}.items():
        print(f"{name:<24} {metrics['ece']:>8.4f} {metrics['brier']:>8.4f}")
    for band, row in summary.get("bands", {}).items():
        methods = "; ".join(f"{name} {m['mean']:.3f} / {m['ece']:.4f} / {m['brier']:.4f}"
                            for name, m in row["methods"].items() if name.startswith("C-Score"))
        print(f"{band}: {row['pairs']} pairs, accuracy {row['accuracy']:.4f}; mean C / ECE / Brier: {methods}")
