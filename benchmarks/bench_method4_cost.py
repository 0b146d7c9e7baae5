"""Cost of method 4 against methods 1-3 for the same pair (issue 10: within 1.1x), side by side in one process,
taking turns at going first, without the occlusion cache: each call embeds both faces' images and assembles the maps.

    python benchmarks/bench_method4_cost.py [--root ../shared/data/lfw] [--pair 5000] [--repeats 3] [--model dlib]
"""

from __future__ import annotations

import argparse
import time

from xfv.datasets import read_pairs
from xfv.faces import load_face
from xfv.models import create_model
from xfv.xmaps import XMapExplainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data/lfw")
    parser.add_argument("--pair", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="dlib")
    args = parser.parse_args()
    model = create_model(args.model)
    pairs = read_pairs("lfw", args.root)
    pair = pairs.pairs[args.pair]
    faces = [load_face(pairs.path(p), alignment=model.config.alignment) for p in (pair.image1, pair.image2)]
    explainer = XMapExplainer(model)  # no cache: every call pays its forward passes
    explainer.explain(*faces, methods=(2,))  # warm-up (sessions, allocations)
    times: dict[str, list[float]] = {"methods 1-3": [], "method 4": []}
    runs = (("methods 1-3", (1, 2, 3)), ("method 4", (4,)))
    for repeat in range(args.repeats):
        for name, methods in runs[:: 1 if repeat % 2 == 0 else -1]:  # alternate which goes first
            started = time.perf_counter()
            explanation = explainer.explain(*faces, methods=methods)
            times[name].append(time.perf_counter() - started)
            print(f"{name}: {explanation.forward_passes} passes in {times[name][-1]:.2f} s", flush=True)
    best = {name: min(values) for name, values in times.items()}
    print(f"best of {args.repeats}: methods 1-3 {best['methods 1-3']:.2f} s, method 4 {best['method 4']:.2f} s, "
          f"ratio {best['method 4'] / best['methods 1-3']:.2f}x")


if __name__ == "__main__":
    main()
