"""Bounded cost of a photo through ``xfv verify`` (issue 9): seconds and peak RSS of the whole CLI process.

Photos (written to a temporary folder by ``tests/photos.py``): a 1600 x 1200 and a 4000 x 3000 no-face landscape
JPEG, a 6300 x 6300 constant-colour PNG, a 12000 x 12000 constant-colour JPEG and a JPEG that only declares
12000 x 12000 (its header and a few bytes). Each is verified against an LFW face of the bundled sample with
``/usr/bin/time -v`` (wall seconds, maximum resident set size), for each ``--detector``; then, in this process,
the seconds that loading and detection alone take per photo.

    PYTHONPATH=src python benchmarks/bounded_detection.py [--detectors hog,hog+cnn]
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from photos import save_constant, save_landscape

from xfv.faces import FaceDetector, load_image

FACE = Path(__file__).resolve().parents[1] / "src" / "xfv" / "data" / "sample" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"


def photos(folder: Path) -> list[Path]:
    declared = folder / "declared-12000.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (12000, 12000), (120, 140, 160)).save(buffer, format="JPEG", quality=50)
    declared.write_bytes(buffer.getvalue()[:2000])  # the header and the first scan bytes only
    return [save_landscape(folder / "landscape-1600x1200.jpg", 1600, 1200),
            save_landscape(folder / "landscape-4000x3000.jpg", 4000, 3000),
            save_constant(folder / "constant-6300x6300.png", 6300, 6300),
            save_constant(folder / "constant-12000x12000.jpg", 12000, 12000), declared]


def cli_run(photo: Path, detector: str) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB and the last line the CLI wrote, of ``xfv verify PHOTO FACE``."""
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "xfv", "verify", str(photo), str(FACE),
               "--detector", detector]
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    seconds = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    wall = 3600 * float(seconds.group(1) or 0) + 60 * float(seconds.group(2)) + float(seconds.group(3))
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith(("xfv", "same", "diff"))]
    return wall, int(rss.group(1)) / 1024, lines[-1] if lines else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default="hog,hog+cnn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = photos(Path(folder))
        for detector in args.detectors.split(","):
            for path in paths:
                wall, rss, line = cli_run(path, detector)
                print(f"cli {detector:8s} {path.name:28s} {wall:6.2f} s {rss:7.0f} MB  {line}")
        for path in paths:
            start = time.perf_counter()
            try:
                image = load_image(path)
            except ValueError as error:
                print(f"load {path.name:28s} {time.perf_counter() - start:6.2f} s  {error}")
                continue
            loaded = time.perf_counter()
            for detector in args.detectors.split(","):
                start_detect = time.perf_counter()
                faces = FaceDetector(detector).detect(image)
                print(f"load {path.name:28s} {loaded - start:6.2f} s, {image.shape[1]} x {image.shape[0]}; detect "
                      f"{detector}: {time.perf_counter() - start_detect:.2f} s, {len(faces)} face(s)")


if __name__ == "__main__":
    main()
