"""Benchmark: SFace's shipped int8 graph against its dequantised float graph, and X-Maps with SFace against dlib.

    python benchmarks/bench_sface.py [--root ../shared/data/lfw] [--pair 0] [--repeats 3] [--xmap-repeats 1]

Prints, side by side from one run: images/s of ``sface`` with ``dequantize=False`` (the shipped block-quantised
int8 graph, run as it comes after removing its unused inputs and fixing its batch dimension) and with
``dequantize=True`` (the default) at batch 1 and batch 64, on real aligned LFW faces; then the seconds one pair's
X-Maps (the paper's defaults, methods 1-3, no cache) take with ``sface`` and with ``dlib``. Runs alternate so that
all variants see the same machine; the fastest of ``--repeats`` counts.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from xfv.datasets import read_pairs
from xfv.faces import FaceDetector, load_face, model_detector
from xfv.models import create_model
from xfv.xmaps import XMapExplainer

LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"


def aligned(model, paths: list[Path]) -> np.ndarray:
    detector = model_detector(FaceDetector(select="centre", fallback="centre"), model.config.detector)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.stack([load_face(p, alignment=model.config.alignment, detector=detector) for p in paths])


def images_per_second(model, faces: np.ndarray, batch: int, seconds: float = 3.0) -> float:
    """Embeds batches of ``batch`` faces for about ``seconds``; images per second."""
    model.batch_size = batch
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for start in range(0, len(faces), batch):
            model.embed(faces[start : start + batch])
            done += len(faces[start : start + batch])
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(LFW), help="LFW folder")
    parser.add_argument("--pair", type=int, default=0, help="LFW pair whose X-Maps are timed (default 0)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating throughput runs; the fastest counts")
    parser.add_argument("--xmap-repeats", type=int, default=1, help="alternating X-Map runs; the fastest counts")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    pairs = read_pairs("lfw", args.root)
    graphs = {"int8 (shipped)": create_model("sface", dequantize=False), "dequantised": create_model("sface")}
    paths = list(dict.fromkeys(pairs.path(p) for pair in pairs.pairs[:40] for p in (pair.image1, pair.image2)))[:64]
    faces = aligned(graphs["dequantised"], paths)
    for model in graphs.values():
        model.embed(faces)  # warm-up
    throughput: dict[str, dict[int, float]] = {name: {1: 0.0, 64: 0.0} for name in graphs}
    for _ in range(args.repeats):
        for batch in (1, 64):
            for name, model in graphs.items():
                sample = faces[:16] if batch == 1 else faces
                throughput[name][batch] = max(throughput[name][batch], images_per_second(model, sample, batch))

    pair = pairs.pairs[args.pair]
    explainers, pair_faces = {}, {}
    for name in ("sface", "dlib"):
        model = create_model(name)
        explainers[name] = XMapExplainer(model, cache=None)
        pair_faces[name] = aligned(model, [pairs.path(pair.image1), pairs.path(pair.image2)])
    xmap_seconds = {name: float("inf") for name in explainers}
    passes = {}
    for _ in range(args.xmap_repeats):
        for name, explainer in explainers.items():
            explanation = explainer.explain(*pair_faces[name])
            xmap_seconds[name] = min(xmap_seconds[name], explanation.timings["total"])
            passes[name] = explanation.forward_passes

    result = {"images_per_second": throughput, "xmap_seconds_per_pair": xmap_seconds, "forward_passes": passes,
              "pair": args.pair, "label": pair.label}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print("SFace throughput (images/s, real aligned LFW faces, fastest of", args.repeats, "alternating runs)")
    print(f"{'graph':18s} {'batch 1':>9s} {'batch 64':>9s}")
    for name, rates in throughput.items():
        print(f"{name:18s} {rates[1]:9.1f} {rates[64]:9.1f}")
    print(f"X-Maps of LFW pair {args.pair} ({'genuine' if pair.label else 'imposter'}), paper defaults, no cache")
    for name, seconds in xmap_seconds.items():
        print(f"{name:18s} {seconds:7.1f} s  ({passes[name]} forward passes)")


if __name__ == "__main__":
    main()
