"""Where the time of a forward pass goes: ONNX Runtime's per-operator profile of dlib's and SFace's graphs, and
images/s of SFace's graph as it is, with its PRelu rewritten (the ``cpu`` engine), and on OpenVINO, side by side.

    python benchmarks/profile_graphs.py [--batch 64] [--rounds 5]

Prints for each graph the share of kernel time per operator type (``enable_profiling``; ONNX Runtime's own
optimisations applied, so ``ReorderInput`` / ``ReorderOutput`` are the layout changes around operators its blocked
NCHWc kernels do not cover), then images/s at ``--batch``, best of ``--rounds`` rounds, the variants taking turns
in each round. Inputs are random images: the cost of these graphs does not depend on the pixels.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time

import numpy as np
import onnxruntime as ort

from xfv.models import create_model
from xfv.models.dlib_onnx import ensure_converted
from xfv.models.engines import available_providers, make_runner, usable_cores
from xfv.models.onnx_graph import load_graph, prelu_as_convs


def session(data, threads: int, profile: bool = False) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tempfile.mkdtemp(prefix="xfv-profile-"), "ort")
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def operator_shares(data, x: np.ndarray, threads: int) -> dict[str, float]:
    profiled = session(data, threads, profile=True)
    name = profiled.get_inputs()[0].name
    for _ in range(3):
        profiled.run(None, {name: x})
    with open(profiled.end_profiling()) as handle:
        events = json.load(handle)
    times = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            times[event["args"]["op_name"]] += event["dur"]
    total = sum(times.values())
    return {op: round(100 * t / total, 1) for op, t in times.most_common()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    threads = usable_cores()
    print(f"{threads} cores; load {os.getloadavg()}")
    rng = np.random.default_rng(0)
    sface = create_model("sface", provider="cpu")
    graphs = {"dlib": (str(ensure_converted()), rng.uniform(0, 255, (args.batch, 150, 150, 3)).astype(np.float32)),
              "sface": (str(sface.prepared_path), rng.uniform(0, 255, (args.batch, 3, 112, 112)).astype(np.float32))}
    rewritten = load_graph(sface.prepared_path)
    count = prelu_as_convs(rewritten)
    graphs["sface, PRelu rewritten"] = (rewritten.SerializeToString(), graphs["sface"][1])
    for name, (data, x) in graphs.items():
        print(f"{name}: share of kernel time per operator (%): {operator_shares(data, x, threads)}")
    print(f"({count} PRelu rewritten)")
    sessions = {name: (session(data, threads), x) for name, (data, x) in graphs.items()}
    runs = {name: (lambda s=s, x=x: s.run(None, {s.get_inputs()[0].name: x})) for name, (s, x) in sessions.items()}
    if "openvino" in available_providers():
        for name in ("dlib", "sface"):
            runner = make_runner(graphs[name][0], "openvino", "fp32", threads, sface.prepared_path.parent)
            runs[f"{name}, openvino fp32"] = lambda r=runner, x=graphs[name][1]: r.run(x)
    best = dict.fromkeys(runs, float("inf"))
    for run in runs.values():
        run()
    for _ in range(args.rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    for name, seconds in best.items():
        print(f"{name:28s} {args.batch / seconds:8.1f} images/s")
    print(f"load {os.getloadavg()}")


if __name__ == "__main__":
    main()
