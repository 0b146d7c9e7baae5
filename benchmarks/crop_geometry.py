"""How far the canonical 112 x 112 crop (the X-Map input) is from each model's native input.

For dlib and lbp (both use dlib's template), each image of the first ``--images / 2`` LFW pairs is aligned
twice in dlib's template: at the model's native input size, and at 112 px (then resized by the model to its
native size). The table gives the cosine distance between the two embeddings (median, 95th percentile, max)
next to the scale of the model's distances: the median distance of the genuine ones among those pairs
(native crops).

    python benchmarks/crop_geometry.py [--images 100]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from xfv.datasets import read_pairs
from xfv.faces import FaceDetector, detect_and_align, load_image
from xfv.models import create_model
from xfv.verification import cosine_distance


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"))
    parser.add_argument("--images", type=int, default=100)
    args = parser.parse_args()
    pairs = read_pairs("lfw", args.root).pairs[: args.images // 2]
    root = Path(args.root)
    detector = FaceDetector("hog+cnn", fallback="centre")
    print(f"{'model':8s} {'native':>6s} {'median d':>9s} {'p95 d':>8s} {'max d':>8s} {'median genuine d':>17s}")
    for name in ("dlib", "lbp"):
        model = create_model(name)
        native, canonical = [], []
        for pair in pairs:
            for relative in (pair.image1, pair.image2):
                image = load_image(root / relative)
                native.append(detect_and_align(image, alignment="dlib", size=model.config.input_size, detector=detector).crop)
                canonical.append(detect_and_align(image, alignment="dlib", size=112, detector=detector).crop)
        a, b = model.embed(np.stack(native)), model.embed(np.stack(canonical))
        drift = cosine_distance(a, b)
        genuine = [cosine_distance(a[2 * i], a[2 * i + 1]) for i, p in enumerate(pairs) if p.label == 1]
        print(f"{name:8s} {model.config.input_size:6d} {np.median(drift):9.4f} {np.percentile(drift, 95):8.4f} "
              f"{drift.max():8.4f} {np.median(genuine):17.4f}")


if __name__ == "__main__":
    main()
