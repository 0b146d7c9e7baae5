"""X-Map commands: ``explain`` (one pair), ``experiment cut-paste``, ``experiment sensitivity`` and
``experiment faithfulness``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from xfv.cli import common
from xfv.cli.common import add_model_arguments, model_from_args, print_json, show_progress
from xfv.datasets import DATASET_FORMATS, PairList, read_pairs
from xfv.faces import FaceDetector, NoFaceError, load_face, model_detector
from xfv.faces.detection import DETECTORS
from xfv.jobs.embeddings import dataset_detector
from xfv.jobs.verify import PHOTO_DETECTOR
from xfv.models import EmbeddingModel
from xfv.xmaps import (
    PATCH_METHODS,
    CoalitionDesign,
    Explanation,
    OcclusionCache,
    OcclusionConfig,
    XMapExplainer,
)
from xfv.xmaps.blend import COLORMAPS
from xfv.xmaps.experiments import REGIONS, RESPONSIVE, cut_paste_experiment, sensitivity_experiment
from xfv.xmaps.faithfulness import FaithfulnessResult, faithfulness_experiment
from xfv.xmaps.figures import cut_paste_figure, faithfulness_figure, overview_figure, sensitivity_figure
from xfv.xmaps.methods import METHODS
from xfv.xmaps.peers import PEERS, make_peers


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    explain = subparsers.add_parser("explain", help="X-Maps of a pair (methods 1-4): maps.npz and PNGs")
    explain.add_argument("image1")
    explain.add_argument("image2")
    add_model_arguments(explain)
    explain.add_argument(
        "--detector", choices=list(DETECTORS), help=f"face detector (default {PHOTO_DETECTOR}, as xfv verify)"
    )
    common.add_calibration_argument(explain)
    explain.add_argument(
        "--methods", type=_int_list, default=METHODS, help="comma-separated, default 1,2,3,4"
    )
    _add_occlusion_arguments(explain)
    _add_batch_argument(explain)
    explain.add_argument("--out", default="xmaps", help="output folder (default ./xmaps)")
    explain.add_argument("--json", action="store_true", help="print a JSON summary")
    explain.add_argument(
        "--stream", action="store_true",
        help="write each map as soon as a partial version exists and print a line per stage (method 4 on growing "
             "numbers of masks, then methods 1-3 by patch size; with --json one JSON line per stage)",
    )
    explain.set_defaults(handler=run_explain)

    experiment = subparsers.add_parser("experiment", help="the paper's X-Map experiments")
    experiments = experiment.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    cut_paste = experiments.add_parser("cut-paste", help="paste a region of face 2 into face 1 (Section 4.3)")
    cut_paste.add_argument("--root", default="../shared/data/lfw", help="LFW folder with pairs.txt")
    cut_paste.add_argument("--pairs", type=int, default=20, help="imposter pairs to use (default 20)")
    cut_paste.add_argument(
        "--regions", type=_region_list, default=REGIONS, help=f"comma-separated subset of {','.join(REGIONS)}"
    )
    _add_experiment_arguments(cut_paste, "xmaps-cut-paste")
    cut_paste.set_defaults(handler=run_cut_paste)

    sensitivity = experiments.add_parser(
        "sensitivity", help="Fig. 6: patch size, edge, colour and shape for one pair"
    )
    sensitivity.add_argument("--root", default="../shared/data/lfw", help="LFW folder with pairs.txt")
    sensitivity.add_argument("--pair", type=int, default=0, help="index of the LFW pair (default 0)")
    sensitivity.add_argument(
        "--images", nargs=2, metavar=("IMAGE1", "IMAGE2"), help="use these photos instead"
    )
    sensitivity.add_argument(
        "--method", type=int, default=3, choices=METHODS, help="method to show (default 3)"
    )
    add_model_arguments(sensitivity)
    _add_batch_argument(sensitivity)
    sensitivity.add_argument(
        "--out", default="xmaps-sensitivity", help="output folder (default ./xmaps-sensitivity)"
    )
    sensitivity.add_argument("--json", action="store_true", help="print a JSON summary")
    sensitivity.set_defaults(handler=run_sensitivity)

    faithfulness = experiments.add_parser(
        "faithfulness",
        help="deletion / insertion curves of the maps against random, centre and edge orders; cut-and-paste",
    )
    faithfulness.add_argument("--dataset", default="lfw", choices=sorted(DATASET_FORMATS), help="default lfw")
    faithfulness.add_argument("--root", default="../shared/data/lfw", help="dataset folder (default LFW)")
    faithfulness.add_argument("--pairs-file", help="pair list (default: the dataset's own, e.g. pairs.txt)")
    faithfulness.add_argument(
        "--pairs", type=int, default=300, help="genuine and as many imposter pairs, first in the list (300)"
    )
    faithfulness.add_argument(
        "--methods", type=_int_list, default=METHODS, help="comma-separated, default 1,2,3,4"
    )
    faithfulness.add_argument("--seeds", type=int, default=3, help="random orders per pair (default 3)")
    faithfulness.add_argument("--steps", type=int, default=20, help="steps per curve (default 20)")
    faithfulness.add_argument("--block", type=int, default=8, help="block size in pixels (default 8)")
    faithfulness.add_argument(
        "--cut-paste",
        type=int,
        default=100,
        metavar="N",
        help="imposter pairs for cut-and-paste (100; 0: none)",
    )
    _add_experiment_arguments(faithfulness, "xmaps-faithfulness")
    faithfulness.set_defaults(handler=run_faithfulness)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _peer_list(text: str) -> tuple[str, ...]:
    names = tuple(PEERS) if text == "all" else tuple(n.strip().lower() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown peer(s) {unknown}; expected a subset of {list(PEERS)} or 'all'")
    return names


def _peers(args: argparse.Namespace, explainer: XMapExplainer) -> dict:
    """The peers asked for, at ``--peer-masks`` forward passes per face (default: method 4's masks)."""
    masks = explainer.coalitions.masks if args.peer_masks is None else args.peer_masks
    return make_peers(args.peers, masks, cell=args.peer_cell)


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _region_list(text: str) -> tuple[str, ...]:
    regions = tuple(text.split(","))
    unknown = [r for r in regions if r not in REGIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown region(s) {unknown}; expected a subset of {list(REGIONS)}")
    return regions


def _add_experiment_arguments(parser: argparse.ArgumentParser, out: str) -> None:
    """Model, occlusion, benchmark and batch options, ``--out`` and ``--json`` of an experiment over pairs."""
    add_model_arguments(parser)
    _add_occlusion_arguments(parser)
    benchmark = parser.add_argument_group("explainers measured beside methods 1-4 (docs/faithfulness.md)")
    benchmark.add_argument(
        "--peers", type=_peer_list, default=(), metavar="NAMES",
        help=f"comma-separated peer explainers, from {','.join(PEERS)} or 'all' (default none; "
             "kernelshap and lime need xfv[peers])",
    )
    benchmark.add_argument(
        "--peer-masks", type=int, metavar="N", help="forward passes per face of each peer (default: --masks)"
    )
    benchmark.add_argument(
        "--peer-cell", type=int, default=14, help="cell size of KernelSHAP and LIME in pixels (default 14)"
    )
    benchmark.add_argument(
        "--budgets", type=_int_list, default=(), metavar="COUNTS",
        help="also fit method 4 on the first COUNTS of its masks, comma-separated (e.g. 128,256,512)",
    )
    _add_batch_argument(parser)
    parser.add_argument("--out", default=out, help=f"output folder (default ./{out})")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _add_batch_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch-size", type=int, help="occluded images per model call (default: the engine's, measured on this machine)"
    )


def _add_occlusion_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("occlusion (Algorithm 1)")
    group.add_argument(
        "--patch-sizes", type=_int_list, default=(7, 14, 28), help="comma-separated, default 7,14,28"
    )
    group.add_argument("--stride", type=int, default=5, help="default 5")
    group.add_argument(
        "--color", default="black", choices=["black", "gray", "white", "noise"], help="default black"
    )
    group.add_argument(
        "--soft-edge", type=int, metavar="K", help="Gaussian soft edge (kernel and sigma K, e.g. 7, 14, 56)"
    )
    group.add_argument("--shape", default="square", choices=["square", "round"], help="default square")
    group.add_argument(
        "--convention",
        default="paper",
        choices=["paper", "code"],
        help="positions: paper floor((112-p)/s)^2 (default) or the authors' code",
    )
    group.add_argument(
        "--colormap", default="red-green", choices=list(COLORMAPS), help="blend colours (default red-green)"
    )
    defaults = CoalitionDesign()
    coalitions = parser.add_argument_group("method 4 (random coalitions of cells on shifted grids, filled with --color)")
    coalitions.add_argument(
        "--cell", type=int, default=defaults.cell, help=f"cell size in pixels, divides 112 (default {defaults.cell})"
    )
    coalitions.add_argument(
        "--shifts", type=int, default=defaults.shifts,
        help=f"grids per axis, shifted by cell/shifts px: the map's resolution (default {defaults.shifts})",
    )
    coalitions.add_argument(
        "--masks", type=int, default=defaults.masks,
        help=f"masks per face, even (default {defaults.masks}, as many as methods 1-3; fewer are cheaper and "
             "coarser, docs/faithfulness.md, 'Mask budget')",
    )
    coalitions.add_argument(
        "--prior", type=_float_list, default=defaults.prior, metavar="COARSE,CELL,ATOM",
        help="penalties of the fit's 28 px, cell and atom components (default "
             + ",".join(f"{p:g}" for p in defaults.prior) + ")",
    )
    coalitions.add_argument(
        "--smoothing",
        type=float,
        default=0.0,
        help="penalty on neighbouring atoms' differences: region-shaped maps, weaker deletion order (default 0)",
    )


def _explainer(
    args: argparse.Namespace, model: EmbeddingModel, occlusion: OcclusionConfig | None = None
) -> XMapExplainer:
    cache = None if args.no_cache else OcclusionCache()
    coalitions = (  # else the defaults
        CoalitionDesign(masks=args.masks, cell=args.cell, shifts=args.shifts, prior=args.prior,
                        smoothing=args.smoothing)
        if "cell" in args else None
    )
    return XMapExplainer(model, occlusion=occlusion, coalitions=coalitions, batch_size=args.batch_size, cache=cache)


def _progress_bar(args: argparse.Namespace, description: str):
    """A ``progress(done, total)`` callback drawing a tqdm bar, or None off a terminal."""
    if not show_progress(args):
        return None
    from tqdm import tqdm

    bar = tqdm(desc=description, unit="img", leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()
        if done == total:
            bar.close()

    return update


def _occlusion(args: argparse.Namespace) -> OcclusionConfig:
    return OcclusionConfig(
        patch_sizes=args.patch_sizes,
        stride=args.stride,
        color=args.color,
        soft_edge=args.soft_edge,
        shape=args.shape,
        convention=args.convention,
    )


def run_explain(args: argparse.Namespace) -> int:
    model = model_from_args(args)
    occlusion = _occlusion(args)
    faces, verdict = common.verify_photos(args, model)
    explainer = _explainer(args, model, occlusion)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    crops = faces[0].crop, faces[1].crop
    if args.stream:
        if not args.json:
            print(common.verdict_line(verdict), flush=True)
        explanation = _write_stream(explainer.stream(*crops, methods=args.methods), out, args)
    else:
        explanation = explainer.explain(*crops, methods=args.methods, progress=_progress_bar(args, "explain"))
        _write_maps(explanation, out, args.colormap)
    keys = [(m, i) for m in explanation.maps for i in (1, 2)]
    overview_figure(explanation, args.colormap).savefig(out / "overview.png", dpi=150)
    summary = {
        **verdict.to_dict(),
        "xmap_distance": explanation.distance,
        "methods": sorted(explanation.maps),
        "occluded_images": 2 * occlusion.count() if set(explanation.maps) & set(PATCH_METHODS) else 0,
        "masked_images": 2 * explainer.coalitions.masks if set(explanation.maps) - set(PATCH_METHODS) else 0,
        "method4": asdict(explainer.coalitions),
        "forward_passes": explanation.forward_passes,
        "seconds": round(explanation.timings["total"], 3),
        "timings": {k: round(v, 3) for k, v in explanation.timings.items()},
        "out": str(out),
    }
    if args.json:
        if args.stream:
            print(json.dumps(summary), flush=True)  # the last of the JSON lines
        else:
            print_json(summary)
    else:
        if not args.stream:
            print(common.verdict_line(verdict))
        print(
            f"{explanation.forward_passes} forward passes in {explanation.timings['total']:.1f} s; "
            f"wrote maps.npz, {len(keys)} X-Maps and overview.png to {out}"
        )
    return 0


def _write_maps(explanation: Explanation, out: Path, colormap: str, methods: Iterable[int] | None = None) -> None:
    """maps.npz with every map so far, and the PNGs of ``methods`` (default: all)."""
    keys = [(m, i) for m in explanation.maps for i in (1, 2)]
    np.savez(out / "maps.npz", **{f"method{m}_image{i}": explanation.map(m, i) for m, i in keys})
    for m, i in keys:
        if methods is None or m in methods:
            Image.fromarray(explanation.blend(m, i, colormap)).save(out / f"method{m}_image{i}.png")


def _write_stream(stream: Iterator[Explanation], out: Path, args: argparse.Namespace) -> Explanation:
    """Write each explanation of the stream as it arrives (the PNGs of the maps it changed) and say its stage and
    the seconds since the X-Map computation started; returns the final explanation."""
    written: dict[int, str] = {}
    for explanation in stream:
        changed = [m for m, stage in explanation.stages.items() if written.get(m) != stage]
        _write_maps(explanation, out, args.colormap, changed)
        written.update(explanation.stages)
        seconds = explanation.timings["elapsed" if explanation.partial else "total"]
        stages = {m: explanation.stages[m] for m in sorted(explanation.stages)}
        if args.json:
            line = {"stage": explanation.stage, "seconds": round(seconds, 3), "forward_passes":
                    explanation.forward_passes, "total_passes": explanation.total_passes, "maps": stages}
            print(json.dumps(line), flush=True)
        else:
            maps = "; ".join(f"method {m}: {stage}" for m, stage in stages.items()) or "no map yet"
            print(f"{seconds:7.2f} s  {explanation.stage} ({explanation.forward_passes} of "
                  f"{explanation.total_passes} passes): {maps}", flush=True)
    return explanation


def _pair_faces(
    pair_list: PairList, count: int, labels: tuple[int, ...], model: EmbeddingModel
) -> Iterator[tuple[int, np.ndarray, np.ndarray, bool]]:
    """The first ``count`` pairs of each label, labels taking turns, whose faces are found, as aligned crops
    (the dataset detector: the centred face)."""
    detector = model_detector(dataset_detector(), model.config.detector)
    queues = [[p for p in pair_list.pairs if p.label == label] for label in labels]
    taken = [0] * len(labels)
    for turn in range(max(len(q) for q in queues)):
        for k, queue in enumerate(queues):
            if turn >= len(queue) or taken[k] == count:
                continue
            pair = queue[turn]
            try:
                faces = [
                    load_face(pair_list.path(p), alignment=model.config.alignment, detector=detector)
                    for p in (pair.image1, pair.image2)
                ]
            except NoFaceError as error:
                print(f"skipping pair {pair.index}: {error}", file=sys.stderr)
                continue
            taken[k] += 1
            yield pair.index, faces[0], faces[1], pair.label == 1
        if taken == [count] * len(labels):
            return


def _imposter_faces(root: str, count: int, model: EmbeddingModel) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """The first ``count`` LFW imposter pairs whose faces are found."""
    for index, face1, face2, _ in _pair_faces(read_pairs("lfw", root), count, (0,), model):
        yield index, face1, face2


def run_cut_paste(args: argparse.Namespace) -> int:
    if args.pairs < 1:
        raise ValueError(f"--pairs must be at least 1, got {args.pairs}.")
    model = model_from_args(args)
    quiet = not show_progress(args)
    explainer = _explainer(args, model, _occlusion(args))
    peers = _peers(args, explainer)
    result = cut_paste_experiment(
        explainer,
        _imposter_faces(args.root, args.pairs, model),
        model.config.alignment,
        regions=args.regions,
        peers=peers,
        budgets=args.budgets,
        progress=None if quiet else lambda index, region: print(f"pair {index}: {region}", file=sys.stderr),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "model": model.name,
        "engine": model.engine,
        "occlusion": asdict(explainer.occlusion),
        "method4": asdict(explainer.coalitions),
        "peers": [peer.describe() for peer in peers.values()],
        **result.summary(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "records.json").write_text(json.dumps(result.rows(), indent=1))
    cut_paste_figure(result, args.colormap).savefig(out / "cut_paste.png", dpi=150)
    if args.json:
        print_json(summary)
    else:
        for line in _cut_paste_lines(summary):
            print(line)
        print(f"wrote summary.json, records.json and cut_paste.png to {out}")
    return 0


def _label(name: str) -> str:
    """``"4"`` -> ``"method 4"``; other explainers' names as they are."""
    return f"method {name}" if name.isdigit() else name


def _cut_paste_lines(summary: dict) -> list[str]:
    """How the model took the pastes; the headline, per explainer, over the cases the model responded to (per
    region), then over all cases and over those whose paste lowered the distance at all."""
    response = summary["paste_lowers_distance"]
    lines = [
        f"the paste lowered the distance in {response['share']:.0%} of {response['cases']} cases ("
        + ", ".join(f"{region} {row['share']:.0%}" for region, row in response["regions"].items())
        + f"; mean distance {response['distance_before_mean']:.3f} -> {response['distance_after_mean']:.3f})"
    ]
    for method, row in summary["methods"].items():
        responsive = row["responsive"]
        if responsive is None:
            headline = f"no case lowered the distance by more than {RESPONSIVE}"
        else:
            headline = f"mean pixel AUC {responsive['auc_mean']:.3f} on {responsive['cases']} responsive cases (" + (
                ", ".join(f"{region} {entry['responsive']['auc_mean']:.3f} ({entry['responsive']['cases']})"
                          for region, entry in row["regions"].items() if entry["responsive"]) + ")")
        helped = row["where_paste_helps"]
        lines.append(
            f"{_label(method)}: {headline}; all cases: inside {row['inside_mean']:+.3f} vs outside "
            f"{row['outside_mean']:+.3f}, inside > outside in {row['inside_above_outside']:.0%} of {row['cases']}, "
            f"mean pixel AUC {row['auc_mean']:.3f}"
            + (
                f"; where the paste lowered the distance: {helped['inside_above_outside']:.0%} / "
                f"AUC {helped['auc_mean']:.3f}"
                if helped
                else ""
            )
        )
    return lines


def run_sensitivity(args: argparse.Namespace) -> int:
    model = model_from_args(args)
    detector = None
    if args.images:
        paths = args.images
    else:
        detector = FaceDetector(select="centre")
        pair_list = read_pairs("lfw", args.root)
        if not 0 <= args.pair < len(pair_list):
            raise ValueError(f"--pair must be in [0, {len(pair_list) - 1}], got {args.pair}.")
        pair = pair_list.pairs[args.pair]
        paths = [pair_list.path(pair.image1), pair_list.path(pair.image2)]
    detector = model_detector(detector, model.config.detector)
    faces = [
        load_face(p, alignment=model.config.alignment, aligned=args.aligned, detector=detector) for p in paths
    ]
    quiet = not show_progress(args)
    results = sensitivity_experiment(
        _explainer(args, model),
        *faces,
        method=args.method,
        progress=None if quiet else lambda group, name: print(f"{group}: {name}", file=sys.stderr),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sensitivity_figure(results, args.method).savefig(out / "sensitivity.png", dpi=150)
    summary = {
        "model": model.name,
        "engine": model.engine,
        "images": [str(p) for p in paths],
        "distance": next(iter(next(iter(results.values())).values())).distance,
        "variants": {group: list(variants) for group, variants in results.items()},
        "out": str(out / "sensitivity.png"),
    }
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {out / 'sensitivity.png'}")
    return 0


def run_faithfulness(args: argparse.Namespace) -> int:
    for name in ("pairs", "seeds", "steps", "block"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}.")
    if args.cut_paste < 0:
        raise ValueError(f"--cut-paste must be 0 or more, got {args.cut_paste}.")
    model = model_from_args(args)
    alignment = model.config.alignment
    pair_list = read_pairs(args.dataset, args.root, args.pairs_file)
    explainer = _explainer(args, model, _occlusion(args))
    peers = _peers(args, explainer)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "model": model.name,
        "engine": model.engine,
        "dataset": pair_list.name,
        "methods": list(args.methods),
        "occlusion": asdict(explainer.occlusion),
        "method4": asdict(explainer.coalitions),
        "budgets": list(args.budgets),
        "peers": [peer.describe() for peer in peers.values()],
    }
    started = time.perf_counter()

    def write(result: FaithfulnessResult) -> None:
        summary = result.summary()
        report["faithfulness"] = summary
        report["pairs"] = result.records
        report["seconds"] = round(time.perf_counter() - started, 1)
        (out / "faithfulness.json").write_text(json.dumps(report, indent=1))
        faithfulness_figure(summary).savefig(out / "curves.png", dpi=120)

    def progress(result: FaithfulnessResult) -> None:
        record = result.records[-1]
        print(
            f"{time.perf_counter() - started:7.0f} s  pair {record['pair']} "
            f"({'genuine' if record['genuine'] else 'imposter'}), {len(result.records)} done",
            file=sys.stderr,
            flush=True,
        )
        if len(result.records) % 10 == 0:
            write(result)

    result = faithfulness_experiment(
        explainer,
        _pair_faces(pair_list, args.pairs, (1, 0), model),
        methods=args.methods,
        peers=peers,
        budgets=args.budgets,
        seeds=args.seeds,
        steps=args.steps,
        block=args.block,
        batch_size=args.batch_size or 64,
        progress=progress,
    )
    write(result)
    if args.cut_paste:
        cut_paste = cut_paste_experiment(
            explainer,
            ((i, f1, f2) for i, f1, f2, _ in _pair_faces(pair_list, args.cut_paste, (0,), model)),
            alignment,
            methods=args.methods,
            peers=peers,
            budgets=args.budgets,
            progress=lambda index, region: print(f"cut-and-paste: pair {index}, {region}", file=sys.stderr),
        )
        report["cut_paste"] = cut_paste.summary()
        report["cut_paste_records"] = cut_paste.rows()
        cut_paste_figure(cut_paste, args.colormap).savefig(out / "cut_paste.png", dpi=150)
        write(result)
    if args.json:
        print_json({k: v for k, v in report.items() if k not in ("pairs", "cut_paste_records")})
    else:
        for label, entry in report["faithfulness"]["classes"].items():
            print(f"{label} pairs: {entry['pairs']}")
            for name, row in entry["orders"].items():
                wins = (
                    ""
                    if name == "random"
                    else (
                        f"; beats random: deletion {row['deletion_start_beats_random']:.0%} / "
                        f"{row['deletion_full_beats_random']:.0%}, insertion {row['insertion_start_beats_random']:.0%}"
                        f" / {row['insertion_full_beats_random']:.0%} (first 20 % / whole)"
                    )
                )
                print(
                    f"  {name:22s} deletion AUC {row['deletion_start_auc']:.4f} / {row['deletion_full_auc']:.4f}, "
                    f"insertion AUC {row['insertion_start_auc']:.4f} / {row['insertion_full_auc']:.4f}{wins}"
                )
                if name == "method 4" and row["deletion_full_beats"]:
                    print("    method 4 beats, pair by pair (deletion / insertion, whole curve): " + ", ".join(
                        f"{other} {row['deletion_full_beats'][other]:.0%} / {row['insertion_full_beats'][other]:.0%}"
                        for other in row["deletion_full_beats"]))
        if "cut_paste" in report:
            for line in _cut_paste_lines(report["cut_paste"]):
                print(f"cut-and-paste: {line}")
        print(f"wrote faithfulness.json and curves.png to {out}")
    return 0
