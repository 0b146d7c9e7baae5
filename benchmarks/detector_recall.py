"""Recall of face detectors on LFW: the share of the images of LFW view 2's pairs where a detector finds a face
near the centre (box centre within 20% of the image size, as the dataset detector requires), and its time.

    PYTHONPATH=src python benchmarks/detector_recall.py --root ../shared/data/lfw [--detectors hog+cnn,yunet]
        [--every 1]

Every ``--every``-th image (sorted by path) is used. Per detector: images with a face near the centre, seconds
per image; then, per pair of detectors, the images only one of them finds.
"""

from __future__ import annotations

import argparse
import time
from itertools import combinations
from pathlib import Path

from xfv.datasets import read_pairs
from xfv.faces import FaceDetector, load_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data/lfw")
    parser.add_argument("--detectors", default="hog+cnn")
    parser.add_argument("--every", type=int, default=1)
    args = parser.parse_args()
    pair_list = read_pairs("lfw", args.root)
    paths = sorted({p for pair in pair_list.pairs for p in (pair.image1, pair.image2)})[:: args.every]
    found: dict[str, set[str]] = {}
    for method in args.detectors.split(","):
        detector = FaceDetector(method, select="centre", max_offset=0.2)
        found[method], start = set(), time.perf_counter()
        for path in paths:
            if detector.detect(load_image(Path(args.root) / path)):
                found[method].add(path)
        seconds = time.perf_counter() - start
        print(f"{method:10s} {len(found[method])}/{len(paths)} images with a face near the centre "
              f"({100 * len(found[method]) / len(paths):.2f}%), {1000 * seconds / len(paths):.1f} ms per image")
    for a, b in combinations(found, 2):
        print(f"only {a}: {len(found[a] - found[b])}; only {b}: {len(found[b] - found[a])}")


if __name__ == "__main__":
    main()
