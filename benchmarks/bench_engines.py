"""Benchmark: every engine (provider x precision) available here, for dlib and SFace, side by side in one run.

    python benchmarks/bench_engines.py [--root ../shared/data/lfw] [--models dlib,sface] [--pairs 12]
        [--distance-pairs 200] [--main ../main] [--json results.json]

For each model and engine (fp32 on cpu, openvino, cuda, tensorrt; int8 on cpu and openvino; bf16 on openvino;
whichever run here) it prints:

- embeddings/s: batches of 64 real aligned LFW faces, best of 4 rounds, the engines taking turns in each round;
- seconds per pair: X-Maps of methods 1-4 (paper defaults, no cache: ``xfv explain --methods 1,2,3,4
  --no-cache`` without detection), the median over ``--pairs`` LFW pairs, the engines taking turns on each pair;
  with ``--main DIR`` (a checkout of today's main with its own ``.venv``), the same X-Maps by that checkout on the
  first ``--main-pairs`` of them, in the same turns ("today vs new");
- the largest change of a pair's cosine distance against fp32 on the cpu provider, over ``--distance-pairs`` LFW
  pairs (genuine and imposter alternating), and how many verdicts change at the shipped threshold;
- the Pearson correlation of each method's maps with fp32 cpu's maps (mean and minimum over the ``--pairs`` pairs and
  both images).

``auto`` names what the default picks here. Machine load is printed before and after: on a shared machine the
absolute figures move with it, the ratios within one run much less.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from xfv.confidence import default_calibration
from xfv.datasets import read_pairs
from xfv.faces import FaceDetector, load_face, model_detector
from xfv.models import create_model
from xfv.models.base import resize_faces
from xfv.models.engines import EngineError, available_providers
from xfv.verification import cosine_distance
from xfv.xmaps import XMapExplainer

LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"
ENGINES = [("cpu", "fp32"), ("openvino", "fp32"), ("cuda", "fp32"), ("tensorrt", "fp32"), ("cpu", "int8"),
           ("openvino", "int8"), ("openvino", "bf16")]
METHODS = (1, 2, 3, 4)

MAIN_WORKER = """
import sys, time, numpy as np
from xfv.models import create_model
from xfv.models.base import resize_faces
from xfv.xmaps import XMapExplainer
faces = np.load(sys.argv[2])
explainer = XMapExplainer(create_model(sys.argv[1]), cache=None)
print("ready", flush=True)
for line in sys.stdin:
    i = int(line)
    started = time.perf_counter()
    explanation = explainer.explain(faces["face1"][i], faces["face2"][i], methods=(1, 2, 3, 4))
    print(time.perf_counter() - started, flush=True)
    if len(sys.argv) > 3:  # the maps, for a comparison (bench_stream.py)
        np.savez(sys.argv[3], **{f"{m}-{k}": explanation.map(m, k) for m in (1, 2, 3, 4) for k in (1, 2)})
"""


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def lfw_pairs(root: str, count: int, model) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The first ``count`` LFW pairs, genuine and imposter alternating, as aligned 112 px crops of the model."""
    pair_list = read_pairs("lfw", root)
    queues = [[p for p in pair_list.pairs if p.label == label] for label in (1, 0)]
    chosen = [queue[i] for i in range((count + 1) // 2) for queue in queues][:count]
    detector = model_detector(FaceDetector(select="centre", fallback="centre"), model.config.detector)
    crops = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for pair in chosen:
            faces = [load_face(pair_list.path(p), alignment=model.config.alignment, detector=detector)
                     for p in (pair.image1, pair.image2)]
            crops.append((pair.label, faces[0], faces[1]))
    return crops


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def build(name: str, provider: str, precision: str):
    try:
        return create_model(name, provider=provider, precision=precision)
    except (EngineError, RuntimeError) as error:
        print(f"  {provider} {precision}: not here ({str(error).splitlines()[0]})", flush=True)
        return None


def bench_model(name: str, args: argparse.Namespace) -> dict:
    print(f"\n== {name} (load {load()})", flush=True)
    auto = create_model(name)
    print(f"  auto picks: {auto.engine}", flush=True)
    models = {f"{p} {q}": m for p, q in ENGINES if (p in available_providers() or p in ("cuda", "tensorrt"))
              and (m := build(name, p, q)) is not None}
    reference = models["cpu fp32"]
    started = time.perf_counter()
    pairs = lfw_pairs(args.root, max(args.distance_pairs, args.pairs), reference)
    print(f"  aligned {len(pairs)} LFW pairs in {time.perf_counter() - started:.0f} s", flush=True)
    size = reference.config.input_size
    faces = resize_faces(np.stack([f for _, f1, f2 in pairs[:32] for f in (f1, f2)]), size)
    speeds = _embed_speeds(models, faces)
    for model in models.values():
        model.batch_for(2 * 1058)  # each engine's batch size, measured now (once per machine) rather than in a timing
    calibration = default_calibration(name)
    distances = {}
    for key, model in models.items():
        e1 = model.embed(resize_faces(np.stack([f1 for _, f1, _ in pairs]), size))
        e2 = model.embed(resize_faces(np.stack([f2 for _, _, f2 in pairs]), size))
        distances[key] = cosine_distance(e1, e2)
    worker = None
    if args.main:
        folder = tempfile.mkdtemp(prefix="xfv-bench-")
        np.savez(Path(folder) / "faces.npz", face1=np.stack([p[1] for p in pairs[:args.pairs]]),
                 face2=np.stack([p[2] for p in pairs[:args.pairs]]))
        worker = subprocess.Popen(
            [str(Path(args.main) / ".venv" / "bin" / "python"), "-c", MAIN_WORKER, name, f"{folder}/faces.npz"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(Path(args.main) / "src")})
        assert worker.stdout.readline().strip() == "ready"
    seconds: dict[str, list[float]] = {key: [] for key in [*models, "today's main"]}
    correlations: dict[str, dict[int, list[float]]] = {key: {m: [] for m in METHODS} for key in models}
    for index, (_, face1, face2) in enumerate(pairs[:args.pairs]):
        maps = {}
        for key, model in models.items():
            begun = time.perf_counter()
            maps[key] = XMapExplainer(model, cache=None).explain(face1, face2, methods=METHODS)
            seconds[key].append(time.perf_counter() - begun)
        if worker is not None and index < args.main_pairs:
            worker.stdin.write(f"{index}\n")
            worker.stdin.flush()
            seconds["today's main"].append(float(worker.stdout.readline()))
        for key in models:
            for method in METHODS:
                correlations[key][method] += [correlation(maps[key].map(method, i), maps["cpu fp32"].map(method, i))
                                              for i in (1, 2)]
        print(f"  pair {index}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in seconds.items() if v)
              + f" (load {load()})", flush=True)
    if worker is not None:
        worker.stdin.close()
        worker.wait()
    rows = {}
    for key, model in models.items():
        change = np.abs(distances[key] - distances["cpu fp32"])
        flips = int(((distances[key] <= calibration.threshold) != (distances["cpu fp32"] <= calibration.threshold))
                    .sum()) if calibration else None
        rows[key] = {
            "engine": model.engine, "fingerprint": model.fingerprint, "embeddings_per_s": round(speeds[key], 1),
            "seconds_per_pair": round(float(np.median(seconds[key])), 2),
            "max_distance_change": float(change.max()), "verdicts_changed": flips, "pairs": len(change),
            "map_correlation": {m: {"mean": round(float(np.mean(c)), 4), "min": round(float(np.min(c)), 4)}
                                for m, c in correlations[key].items()},
        }
    if seconds["today's main"]:
        rows["today's main"] = {"seconds_per_pair": round(float(np.median(seconds["today's main"])), 2)}
    print(f"  {'engine':15s} {'emb/s':>8s} {'s/pair':>7s} {'x main':>7s} {'max |dd|':>9s} {'flips':>5s}  "
          + "  ".join(f"r(m{m}) mean/min" for m in METHODS))
    today = rows.get("today's main", {}).get("seconds_per_pair")
    for key, row in rows.items():
        if key == "today's main":
            print(f"  {key:15s} {'':>8s} {row['seconds_per_pair']:7.1f}")
            continue
        ratio = f"{today / row['seconds_per_pair']:6.2f}x" if today else ""
        cells = "  ".join(f"{c['mean']:.4f}/{c['min']:.4f}" for c in row["map_correlation"].values())
        print(f"  {key:15s} {row['embeddings_per_s']:8.1f} {row['seconds_per_pair']:7.1f} {ratio:>7s} "
              f"{row['max_distance_change']:9.5f} {row['verdicts_changed']!s:>5s}  {cells}")
    print(f"  (threshold {calibration.threshold:.4f}; load {load()})" if calibration else "", flush=True)
    return {"auto": auto.engine, "load_after": load(), "rows": rows}


def _embed_speeds(models: dict, faces: np.ndarray) -> dict[str, float]:
    """Embeddings per second of each model at batch 64, best of 4 rounds, the models taking turns."""
    batch = np.resize(faces, (64, *faces.shape[1:]))
    for model in models.values():
        model.batch_size = 64
        model.embed(batch)
    best = dict.fromkeys(models, float("inf"))
    for _ in range(4):
        for key, model in models.items():
            started = time.perf_counter()
            model.embed(batch)
            best[key] = min(best[key], time.perf_counter() - started)
    for model in models.values():
        model.batch_size = None
    return {key: 64 / value for key, value in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(LFW), help="LFW folder with pairs.txt")
    parser.add_argument("--models", default="dlib,sface", help="comma-separated (default dlib,sface)")
    parser.add_argument("--pairs", type=int, default=12, help="pairs whose X-Maps are timed and correlated (12)")
    parser.add_argument("--distance-pairs", type=int, default=200, help="pairs for the distance change (200)")
    parser.add_argument("--main", help="checkout of today's main with its .venv, for 'today vs new'")
    parser.add_argument("--main-pairs", type=int, default=2, help="pairs today's main explains (2)")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    print(f"xfv engines benchmark; providers here: {', '.join(available_providers())}; load {load()}", flush=True)
    results = {name: bench_model(name, args) for name in args.models.split(",")}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
