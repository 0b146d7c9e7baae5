"""Core commands: models, align, embed, verify, data download."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from xfv.cli.common import (
    add_calibration_argument,
    add_model_arguments,
    add_outside_root_argument,
    model_from_args,
    print_json,
    show_progress,
    verdict_line,
    verify_photos,
)
from xfv.datasets import DATASET_FORMATS
from xfv.datasets.degrade import MODES, DegradationRanges, degrade_dataset
from xfv.datasets.download import REMOTE_DATASETS, download_dataset
from xfv.faces import FaceDetector, load_face
from xfv.faces.detection import DETECTORS
from xfv.faces.pipeline import CANONICAL_SIZE
from xfv.jobs.embeddings import embed_paths
from xfv.jobs.verify import PHOTO_DETECTOR
from xfv.models import model_cards


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="list the registered models")
    models.set_defaults(handler=run_models)

    align = subparsers.add_parser("align", help="write the canonical 112 x 112 aligned crop of each photo")
    align.add_argument("images", nargs="+", metavar="IMAGE")
    align.add_argument("--out", required=True, help="output folder; writes <stem>.png per input")
    align.add_argument("--template", default="dlib", choices=["dlib", "arcface"], help="alignment template (default dlib)")
    align.add_argument("--size", type=int, default=CANONICAL_SIZE, help="crop size in pixels (default 112)")
    _add_detector_argument(align)
    align.set_defaults(handler=run_align)

    embed = subparsers.add_parser("embed", help="embed photos (or aligned crops) into an .npy file")
    embed.add_argument("images", nargs="+", metavar="IMAGE")
    embed.add_argument("--out", required=True, help="output .npy file, one row per image in argument order")
    add_model_arguments(embed)
    _add_detector_argument(embed)
    embed.add_argument("--json", action="store_true", help="print a JSON summary")
    embed.set_defaults(handler=run_embed)

    verify = subparsers.add_parser("verify", help="same person or not, with distance and confidence")
    verify.add_argument("image1")
    verify.add_argument("image2")
    add_model_arguments(verify)
    _add_detector_argument(verify, default=None)
    add_calibration_argument(verify)
    verify.add_argument("--threshold", type=float, help="decision threshold on the cosine distance (overrides the calibration's)")
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.set_defaults(handler=run_verify)

    data = subparsers.add_parser("data", help="benchmark data")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    download = data_commands.add_parser("download", help="download a dataset with checksum verification")
    download.add_argument("dataset", choices=sorted(REMOTE_DATASETS))
    download.add_argument("--dest", default="data", help="destination folder (default ./data)")
    download.add_argument("--base-url", help="a mirror holding the same files (default: the official site)")
    download.set_defaults(handler=run_download)

    degrade = data_commands.add_parser(
        "degrade", help="write a seeded degraded copy of a pair-list dataset (XQLFW-style cross-quality benchmark; "
                        "a derived variant, not XQLFW)")
    degrade.add_argument("--dataset", required=True, choices=sorted(DATASET_FORMATS), help="pair-list format")
    degrade.add_argument("--root", required=True, help="folder the image paths are relative to")
    degrade.add_argument("--pairs", help="pair list (default: the format's usual file inside --root)")
    degrade.add_argument("--out", required=True, help="new (or empty) folder for the copy")
    degrade.add_argument("--seed", type=int, default=0, help="seed of every draw (default 0)")
    degrade.add_argument("--mode", choices=MODES, default="image",
                         help="image: each image degraded with probability --fraction (default); pair: one side of "
                              "every pair")
    degrade.add_argument("--fraction", type=float, default=0.5, help="mode image: share of images degraded (0.5)")
    defaults = DegradationRanges()
    for name, kind, help_text in (("size", int, "longer side after down-sampling, px"),
                                  ("blur", float, "Gaussian blur sigma at that size, px"),
                                  ("noise", float, "Gaussian noise, grey levels"), ("jpeg", int, "JPEG quality")):
        low, high = getattr(defaults, name)
        degrade.add_argument(f"--{name}", type=_range_of(kind), default=(low, high), metavar="LOW:HIGH",
                             help=f"{help_text} (default {low}:{high})")
    add_outside_root_argument(degrade)
    degrade.set_defaults(handler=run_degrade)


def _add_detector_argument(parser: argparse.ArgumentParser, default: str | None = "hog") -> None:
    parser.add_argument("--detector", default=default, choices=list(DETECTORS),
                        help=f"face detector (default {default or PHOTO_DETECTOR + ', as on the web'}; a model with its "
                             "own, such as sface, uses that one)")


def run_models(args: argparse.Namespace) -> int:
    from xfv.models.engines import ENGINE_MODELS, engines_here

    for name, card in model_cards().items():
        print(f"{name:10s} {card.description}")
        facts = {"source": card.source, "licence": card.licence, "input": card.input, "template": card.template,
                 "LFW": card.lfw, "engine": "--provider / --precision (see engines below)" if name in ENGINE_MODELS
                 else "python, in-process"}
        for label, value in facts.items():
            if value:
                print(f"{'':10s} {label + ':':10s}{value}")
    print("engines here (ONNX models):")
    for line in engines_here():
        print(f"{'':10s} {line}")
    return 0


def run_align(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    detector = FaceDetector(args.detector)
    stems = [Path(p).stem for p in args.images]
    duplicates = {s for s in stems if stems.count(s) > 1}
    if duplicates:
        raise ValueError(f"Several inputs share the file stem(s) {sorted(duplicates)}; their crops would overwrite each other.")
    for path, stem in zip(args.images, stems):
        crop = load_face(path, alignment=args.template, size=args.size, detector=detector)
        Image.fromarray(crop).save(out / f"{stem}.png")
    print(f"wrote {len(args.images)} aligned crop(s) to {out}")
    return 0


def run_embed(args: argparse.Namespace) -> int:
    model = model_from_args(args)
    embeddings = embed_paths(args.images, model, aligned=args.aligned, use_cache=not args.no_cache,
                             progress=show_progress(args), detector=FaceDetector(args.detector), warn=True)
    out = Path(args.out)
    if out.suffix != ".npy":
        raise ValueError(f"--out must name an .npy file, got {str(out)!r}.")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, embeddings)
    if args.json:
        print_json({"model": model.name, "engine": model.engine, "images": len(args.images),
                    "dimension": int(embeddings.shape[1]), "out": str(out)})
    else:
        print(f"wrote {embeddings.shape[0]} x {embeddings.shape[1]} embeddings to {out}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    _, verdict = verify_photos(args, model_from_args(args))
    if args.json:
        print_json(verdict.to_dict())
    else:
        print(verdict_line(verdict))
    return 0


def _range_of(kind: type):
    def parse(text: str) -> tuple:
        low, sep, high = text.partition(":")
        try:
            return (kind(low), kind(high)) if sep else (kind(low), kind(low))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected LOW:HIGH ({kind.__name__}s), got {text!r}") from None
    return parse


def run_degrade(args: argparse.Namespace) -> int:
    ranges = DegradationRanges(size=args.size, blur=args.blur, noise=args.noise, jpeg=args.jpeg)
    report = degrade_dataset(args.dataset, args.root, args.out, pairs_file=args.pairs, seed=args.seed,
                             mode=args.mode, fraction=args.fraction, ranges=ranges,
                             allow_outside_root=args.allow_outside_root)
    print(f"wrote {report.images} images ({report.degraded} degraded) and {report.pairs} pairs to {report.out}: "
          f"{report.both_clean} both clean, {report.one_degraded} one degraded, {report.both_degraded} both degraded")
    print(f"read it with --dataset {report.dataset_format} --root {report.out} (a derived variant, not XQLFW; see "
          f"{report.out}/DEGRADED.md)")
    return 0


def run_download(args: argparse.Namespace) -> int:
    root = download_dataset(args.dataset, args.dest, base_url=args.base_url, progress=sys.stderr.isatty())
    print(f"{args.dataset} is ready: use --root {root}")
    return 0
