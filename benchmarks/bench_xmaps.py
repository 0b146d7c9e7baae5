"""Benchmark: X-Maps of one pair (methods 1-3, default occlusion) against pure inference of as many images.

    python benchmarks/bench_xmaps.py [--model dlib] [--backend onnx|dlib] [--patch-sizes 7,14,28]
                                     [--repeats 2]

Reports the explain time, the time ``model.embed`` alone needs for the same number of images (one batch of
occluded faces embedded over and over, so no rendering is counted), their ratio (goal <= 1.15), the peak
resident memory of the process (goal <= 1.5 GB) and the peak of Python/numpy allocations during one explain
(tracemalloc; onnxruntime's own buffers are not seen by it). Runs alternate so that both see the same machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np

from xfv.datasets import read_pairs
from xfv.faces import load_face
from xfv.models import create_model
from xfv.xmaps import OcclusionConfig, XMapExplainer

LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def pure_inference(model, faces: np.ndarray, count: int, batch_size: int) -> float:
    """Seconds for ``model.embed`` on ``count`` images, in batches of ``batch_size`` taken from ``faces``."""
    started = time.perf_counter()
    for start in range(0, count, batch_size):
        model.embed(faces[: min(batch_size, count - start)])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="dlib")
    parser.add_argument("--backend", choices=["onnx", "dlib"], help="dlib model only")
    parser.add_argument("--root", default=str(LFW), help="LFW folder (pair --pair is explained)")
    parser.add_argument("--pair", type=int, default=0, help="LFW pair index (default 0, a genuine pair)")
    parser.add_argument("--patch-sizes", default="7,14,28", help="comma-separated (default 7,14,28)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each; the fastest counts")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    model = create_model(args.model, **({"backend": args.backend} if args.backend else {}))
    pairs = read_pairs("lfw", args.root)
    pair = pairs.pairs[args.pair]
    faces = [load_face(pairs.path(p), alignment=model.config.alignment) for p in (pair.image1, pair.image2)]
    occlusion = OcclusionConfig(patch_sizes=tuple(int(p) for p in args.patch_sizes.split(",")))
    explainer = XMapExplainer(model, occlusion=occlusion, batch_size=args.batch_size, cache=None)
    grid = occlusion.grids()[0]
    batch = grid.render(faces[0], occlusion.fill(), 0, args.batch_size)
    batch = np.concatenate([batch] * (args.batch_size // len(batch) + 1))[: args.batch_size]
    model.embed(batch)  # warm-up: sessions, thread pools, first-call allocations
    rss_before = peak_rss_mb()

    explanations, inference_seconds = [], []
    for _ in range(args.repeats):
        explanations.append(explainer.explain(*faces))
        inference_seconds.append(
            pure_inference(model, batch, explanations[-1].forward_passes, args.batch_size)
        )
    rss_after = peak_rss_mb()
    explain_seconds = [e.timings["total"] for e in explanations]
    explanation = explanations[int(np.argmin(explain_seconds))]

    tracemalloc.start()
    explainer.explain(*faces)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    best_explain, best_inference = min(explain_seconds), min(inference_seconds)
    figures = {
        "model": repr(model),
        "pair": args.pair,
        "distance": explanation.distance,
        "images": explanation.forward_passes,
        "explain_seconds": round(best_explain, 3),
        "embed_seconds_inside_explain": round(explanation.timings["embed"], 3),
        "maps_seconds": round(explanation.timings["maps"], 3),
        "inference_seconds": round(best_inference, 3),
        "overhead_ratio": round(best_explain / best_inference, 3),
        "peak_rss_mb_after_warmup": round(rss_before, 1),
        "peak_rss_mb": round(rss_after, 1),
        "traced_peak_mb_during_explain": round(traced_peak / 2**20, 1),
        "all_explain_seconds": [round(s, 3) for s in explain_seconds],
        "all_inference_seconds": [round(s, 3) for s in inference_seconds],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"model {figures['model']}, pair {args.pair}, distance {explanation.distance:.4f}")
    print(
        f"explain (methods 1-3, {explanation.forward_passes} images): {best_explain:.2f} s "
        f"(embedding {explanation.timings['embed']:.2f} s, maps {explanation.timings['maps']:.3f} s)"
    )
    print(f"pure inference of {explanation.forward_passes} images:      {best_inference:.2f} s")
    print(
        f"all runs: explain {figures['all_explain_seconds']} s, "
        f"inference {figures['all_inference_seconds']} s"
    )
    print(f"overhead ratio: {best_explain / best_inference:.3f} (goal <= 1.15)")
    print(
        f"peak RSS: {rss_after:.0f} MB (after model warm-up {rss_before:.0f} MB; goal <= 1536 MB); "
        f"traced peak during one explain: {traced_peak / 2**20:.1f} MB"
    )


if __name__ == "__main__":
    main()
