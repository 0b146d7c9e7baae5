"""BRISQUE (Mittal et al. 2012), the generic no-reference image quality score, on the face crops of the quality
benchmark: a side run in its own virtual environment, because PyPI ``brisque`` 0.2.0 fails on numpy >= 2.3
(``TypeError: only 0-dimensional arrays can be converted to Python scalars`` in ``scale_features``) and xfv does not
pin numpy below that. It needs no download at run time (its SVM ships in the wheel).

    python3 -m venv /tmp/brisque-venv
    /tmp/brisque-venv/bin/pip install "brisque[opencv-python-headless]==0.2.0" "numpy<2.3"
    /tmp/brisque-venv/bin/python benchmarks/quality_brisque.py CROPS_DIR brisque.csv

``CROPS_DIR``: the ``--crops`` folder of ``benchmarks/quality_features.py`` (the heuristic's 112 x 112 dlib crops,
named by the image's SHA-256). Writes ``sha,brisque`` (lower is better); resumes where a previous run stopped.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

import numpy as np
from brisque import BRISQUE
from PIL import Image


def main() -> None:
    crops, out = Path(sys.argv[1]), Path(sys.argv[2])
    done = set()
    if out.is_file():
        with open(out, newline="") as handle:
            done = {row["sha"] for row in csv.DictReader(handle)}
    todo = sorted(p for p in crops.glob("*.png") if p.stem not in done)
    scorer = BRISQUE(url=False)
    started = time.perf_counter()
    print(f"{len(todo)} crops to score ({len(done)} done); load {os.getloadavg()}", flush=True)
    new = not out.is_file()
    with open(out, "a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["sha", "brisque"])
        for i, path in enumerate(todo, 1):
            image = np.asarray(Image.open(path).convert("RGB"))
            try:
                value = float(scorer.score(image))
            except Exception as error:  # noqa: BLE001 - a flat crop has no statistics: recorded as missing
                print(f"{path.name}: {error}", flush=True)
                value = float("nan")
            writer.writerow([path.stem, value])
            if i % 500 == 0:
                print(f"{i}/{len(todo)} in {time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f}",
                      flush=True)
    print(f"done in {time.perf_counter() - started:.0f} s; load {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
