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
from xfv.confidence import Calibration, load_calibration
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
                                                "instead of fold-wise fits")
    evaluate.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_cscore_arguments(evaluate)
    evaluate.set_defaults(handler=run_evaluate)

    calibrate = subparsers.add_parser("calibrate", help="fit a field calibration (threshold and C-Score curve) "
                                                        "on a whole dataset and save it as JSON")
    _add_input_arguments(calibrate)
    calibrate.add_argument("--save", required=True, help="calibration JSON file to write")
    calibrate.add_argument("--json", action="store_true", help="print the calibration as JSON")
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


def _cscore_options(args: argparse.Namespace) -> dict:
    return {"n_bins": args.bins, "density": args.density, "fill_empty": args.fill_empty, "start": args.start,
            "weighted": args.weighted, "bounded": args.bounded}


def _load_scores(
    args: argparse.Namespace,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, list] | None, EmbeddingModel | None]:
    """Distances, labels, folds and (from images only) the image columns of pairs.csv and the model (None for
    distances from a file)."""
    from xfv.jobs.evaluate import read_scores_csv  # scikit-learn and matplotlib load only when used

    if args.scores is not None:
        if args.root is not None or args.pairs is not None:
            raise ValueError("Give either --scores or --root/--pairs, not both.")
        distances, labels, folds = read_scores_csv(Path(args.scores))
        return distances, labels, folds, None, None
    if args.root is None or args.dataset is None:
        raise ValueError("Give --dataset and --root (images), or --scores FILE.csv (distances).")
    from xfv.datasets import read_pairs
    from xfv.jobs.embeddings import pair_distances

    pair_list = read_pairs(args.dataset, args.root, args.pairs, allow_outside_root=args.allow_outside_root)
    if args.model is None:
        args.model = DEFAULT_MODEL
    model = model_from_args(args)
    distances = pair_distances(pair_list, model, aligned=args.aligned, use_cache=not args.no_cache,
                               progress=show_progress(args))
    labels = np.array([p.label for p in pair_list.pairs])
    folds = np.array([p.fold for p in pair_list.pairs])
    images = {"image1": [p.image1 for p in pair_list.pairs], "image2": [p.image2 for p in pair_list.pairs]}
    return distances, labels, folds, images, model


def run_evaluate(args: argparse.Namespace) -> int:
    from xfv.jobs.evaluate import evaluate_scores

    calibration = None if args.calibration is None else load_calibration(args.calibration)
    if calibration is not None:
        if args.model is None:
            args.model = calibration.model
        elif args.model != calibration.model:
            raise ValueError(f"Calibration {args.calibration!r} was fitted for model {calibration.model!r}, "
                             f"not {args.model!r}.")
    distances, labels, folds, images, model = _load_scores(args)
    if calibration is not None:
        evaluation = evaluate_scores(distances, labels, folds, dataset=args.dataset, model=args.model,
                                     calibration=calibration)
    else:
        evaluation = evaluate_scores(distances, labels, folds, dataset=args.dataset, model=args.model,
                                     **_cscore_options(args))
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
    distances, labels, _, _, model = _load_scores(args)
    calibration = Calibration.fit(distances, labels, model=args.model, dataset=args.dataset,
                                  fingerprint=model.fingerprint if model else "", **_cscore_options(args))
    path = calibration.save(args.save)
    if args.json:
        print_json(calibration.to_dict())
    else:
        p = calibration.cscore.parameters
        print(f"{calibration.model} on {calibration.dataset}: {calibration.pairs} pairs, threshold "
              f"{calibration.threshold:.6f}, accuracy {calibration.accuracy:.4f}")
        print(f"C-Score (Eq. 2): L={p['L']:.6f} d0={p['d0']:.6f} k={p['k']:.3f} b={p['b']:.6f}")
        print(f"saved {path}")
    return 0


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
    print(f"{'method':<10} {'ECE':>8} {'Brier':>8}")
    print(f"{'C-Score':<10} {summary['ece']:>8.4f} {summary['brier']:>8.4f}")
    for name, metrics in summary["baselines"].items():
        print(f"{name:<10} {metrics['ece']:>8.4f} {metrics['brier']:>8.4f}")
