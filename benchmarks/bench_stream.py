"""Benchmark: how soon X-Maps arrive with ``XMapExplainer.stream``, against today's ``explain``, in one run.

    python benchmarks/bench_stream.py [--root ../shared/data/lfw] [--model dlib] [--precisions fp32,int8]
        [--rounds 3] [--main ../main] [--until all|method4|first] [--json results.json]

One real LFW pair (the first genuine pair, aligned by the model's own pipeline), no cache. Per round, taking turns:

- ``verdict``: the two originals embedded (what the web does before it starts the X-Map task);
- the stream from the start of its computation: the first map (method 4 on its first 32 masks per face), method 4's
  final map, every map (methods 1-4, final, bit-identical to ``explain``);
- ``explain`` of this checkout (the stream's last item, without the partial fits): its total;
- with ``--main DIR`` (a checkout of today's main with its own ``.venv``, run as a subprocess): today's
  ``explain`` total on the same pair, and the largest difference between its maps and the stream's final maps.

Round 1 of each is cold (one-time costs of the process: the masks' pixels, the fits' operators, the engine's first
runs); the table shows round 1 and the best of the later rounds. Machine load is printed before and after each
round: on a shared machine absolute figures move with it, the side-by-side ratios much less.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engines import LFW, MAIN_WORKER, build, lfw_pairs, load

from xfv.xmaps import XMapExplainer
from xfv.xmaps.explainer import FINAL

METHODS = (1, 2, 3, 4)


def stream_times(explainer: XMapExplainer, face1: np.ndarray, face2: np.ndarray, until: str,
                 finals: dict) -> dict[str, float]:
    """Seconds from the start of the stream's computation to its first map, method 4's final map and every map
    (the final maps go to ``finals``)."""
    times: dict[str, float] = {}
    started = time.perf_counter()
    stream = explainer.stream(face1, face2, methods=METHODS)
    for explanation in stream:
        now = time.perf_counter() - started
        if explanation.maps and "first map" not in times:
            times["first map"] = now
            times["first map passes"] = explanation.forward_passes
        if explanation.stages.get(4) == FINAL and "method 4 final" not in times:
            times["method 4 final"] = now
        if not explanation.partial:
            times["all maps"] = now
            finals.update({f"{m}-{i}": explanation.map(m, i) for m in METHODS for i in (1, 2)})
        if until == "first" and "first map" in times or until == "method4" and "method 4 final" in times:
            stream.close()
            break
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(LFW))
    parser.add_argument("--model", default="dlib")
    parser.add_argument("--precisions", default="fp32", help="comma-separated: fp32, int8, bf16 (default fp32)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--main", help="checkout of today's main with its .venv, for 'today vs new'")
    parser.add_argument("--until", choices=("all", "method4", "first"), default="all",
                        help="stop the stream after this (SFace: 'first'); 'all' also times explain()")
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args()

    models = {precision: build(args.model, "auto", precision) for precision in args.precisions.split(",")}
    models = {precision: model for precision, model in models.items() if model is not None}
    reference = next(iter(models.values()))
    _, face1, face2 = lfw_pairs(args.root, 1, reference)[0]
    print(f"{args.model}: first genuine LFW pair; engines: "
          + "; ".join(f"{p}: {getattr(m, 'engine', '?')}" for p, m in models.items()), flush=True)
    worker = None
    if args.main:
        folder = tempfile.mkdtemp(prefix="bench-stream-")
        np.savez(f"{folder}/faces.npz", face1=face1[None], face2=face2[None])  # pair 0 of bench_engines' worker
        worker = subprocess.Popen(
            [str(Path(args.main) / ".venv" / "bin" / "python"), "-c", MAIN_WORKER, args.model, f"{folder}/faces.npz",
             f"{folder}/main_maps.npz"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(Path(args.main) / "src")})
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    explainers = {p: XMapExplainer(m, cache=None) for p, m in models.items()}
    finals: dict[str, dict] = {p: {} for p in models}
    rounds: list[dict] = []
    for number in range(1, args.rounds + 1):
        figures: dict[str, object] = {"load before": load()}
        if worker is not None:
            worker.stdin.write("0\n")
            worker.stdin.flush()
            figures["today's explain"] = float(worker.stdout.readline())
        for precision, explainer in explainers.items():
            started = time.perf_counter()
            explainer.model.embed(np.stack([face1, face2]))
            figures[f"{precision} verdict"] = time.perf_counter() - started
            figures[f"{precision} stream"] = stream_times(explainer, face1, face2, args.until, finals[precision])
            if args.until == "all":
                started = time.perf_counter()
                explainer.explain(face1, face2, methods=METHODS)
                figures[f"{precision} explain"] = time.perf_counter() - started
        figures["load after"] = load()
        rounds.append(figures)
        print(f"round {number}: {json.dumps(figures, default=lambda v: round(v, 3))}", flush=True)
    if worker is not None:
        worker.stdin.close()
        worker.wait()

    def best(key: str, inner: str | None = None) -> tuple[float | None, float | None]:
        values = [r[key][inner] if inner else r[key] for r in rounds if key in r and (inner is None or inner in r[key])]
        return (values[0] if values else None), (min(values[1:]) if len(values) > 1 else None)

    def cell(pair: tuple[float | None, float | None]) -> str:
        return " / ".join("-" if v is None else f"{v:.2f}" for v in pair)

    print(f"\nseconds, round 1 (cold) / best of rounds 2-{args.rounds} (warm); load {rounds[0]['load before']} .. "
          f"{rounds[-1]['load after']}")
    today = best("today's explain")
    if args.main:
        print(f"  today's main explain (methods 1-4): {cell(today)}")
    for precision in explainers:
        print(f"  {precision}: verdict {cell(best(f'{precision} verdict'))}; from the start of the X-Map computation: "
              f"first map {cell(best(f'{precision} stream', 'first map'))}, method 4 final "
              f"{cell(best(f'{precision} stream', 'method 4 final'))}, all maps "
              f"{cell(best(f'{precision} stream', 'all maps'))}; explain {cell(best(f'{precision} explain'))}")
        stream_all = best(f"{precision} stream", "all maps")
        if args.main and stream_all[0] is not None and today[0] is not None:
            ratios = [t / s for t, s in zip(today, stream_all) if t is not None and s is not None]
            print(f"    today's explain / stream's all maps: {' / '.join(f'{r:.2f}x' for r in ratios)}")
    if worker is not None and args.until == "all":
        with np.load(f"{folder}/main_maps.npz") as today_maps:
            for precision, maps in finals.items():
                difference = max(float(np.abs(maps[key] - today_maps[key]).max()) for key in today_maps.files)
                print(f"  {precision} stream's final maps vs today's explain: largest |difference| {difference:.3g}"
                      + (" (bit-identical)" if difference == 0 else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(rounds, indent=2))


if __name__ == "__main__":
    main()
