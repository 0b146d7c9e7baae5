"""A seeded, reproducible degraded copy of a pair-list dataset: a cross-quality benchmark in the style of XQLFW.

XQLFW (Knoche, Hörmann, Rigoll, FG 2021) pairs LFW images of very different quality, partly degraded
synthetically; its files are not used here. ``xfv data degrade`` derives a variant of *any* pair-list dataset
the same way and says so in the copy's ``DEGRADED.md``: it is a derived variant, not XQLFW itself.

Each degraded image goes through, in this order (all drawn per image, uniformly in the given ranges):

1. down-sampling (area interpolation) so that its longer side is ``size`` pixels,
2. a Gaussian blur of ``blur`` pixels (sigma, at the low resolution; 0: none),
3. Gaussian noise of ``noise`` grey levels (standard deviation; 0: none),
4. JPEG compression at quality ``jpeg``,
5. up-sampling (bicubic) back to the original size, stored as JPEG at quality 95.

Which images, with ``mode``:

- ``image``: each image of the list is degraded with probability ``fraction``, everywhere it occurs. Paths stay
  as they are, so the copy keeps the source's pair list and format.
- ``pair``: in every pair exactly one side (drawn per pair) is degraded, XQLFW's large quality difference. An
  image may then be clean in one pair and degraded in another: degraded images live under ``degraded/`` and the
  pair list is written as ``pairs.csv`` (format ``csv``, folds kept).

Reproducible by construction: every draw comes from a generator seeded with ``seed`` and the image's relative
path (the side of a pair: ``seed`` and the pair's index), never from the order of the work. Clean images are
copied byte for byte, so caches keyed by content (embeddings) find them. ``degradations.csv`` lists every image
of the copy with its parameters.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from xfv import __version__
from xfv.datasets.pairs import DATASET_FORMATS, PairList, read_pairs
from xfv.errors import XfvError

MODES = ("image", "pair")
DEGRADED_FOLDER = "degraded"
MANIFEST = "degradations.csv"
README = "DEGRADED.md"
PAIRS_CSV = "pairs.csv"
STORE_QUALITY = 95  # the JPEG quality the up-sampled result is stored at (the degradation is step 4's)
MANIFEST_COLUMNS = ("path", "source", "degraded", "size", "blur", "noise", "jpeg")


def _range(name: str, value: tuple[float, float], low: float, high: float) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise XfvError(f"{name} must be a range (low, high), got {value!r}.") from None
    if not (np.isfinite(a) and np.isfinite(b) and low <= a <= b <= high):
        raise XfvError(f"{name} must be a range low <= high within [{low}, {high}], got ({a}, {b}).")
    return a, b


@dataclass(frozen=True)
class DegradationRanges:
    """The ranges each degraded image's parameters are drawn from (uniformly; sizes and qualities as integers)."""

    size: tuple[int, int] = (30, 75)  # longer side after down-sampling, pixels
    blur: tuple[float, float] = (0.0, 1.0)  # Gaussian sigma at the low resolution, pixels
    noise: tuple[float, float] = (0.0, 4.0)  # Gaussian noise, grey levels
    jpeg: tuple[int, int] = (20, 45)  # JPEG quality

    def __post_init__(self) -> None:
        size = _range("size", self.size, 8, 4096)
        jpeg = _range("jpeg", self.jpeg, 1, 100)
        if size != tuple(map(round, size)) or jpeg != tuple(map(round, jpeg)):
            raise XfvError(f"size and jpeg are integer ranges, got size {self.size!r} and jpeg {self.jpeg!r}.")
        _range("blur", self.blur, 0.0, 50.0)
        _range("noise", self.noise, 0.0, 128.0)


@dataclass(frozen=True)
class Degradation:
    """The parameters one image was degraded with."""

    size: int
    blur: float
    noise: float
    jpeg: int


def _generator(seed: int, *key: str | int) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``key`` (never on the order of the work)."""
    digest = hashlib.sha256("\0".join(map(str, key)).encode()).digest()
    return np.random.default_rng([int(seed), *np.frombuffer(digest[:16], dtype=np.uint32).tolist()])


def draw_degradation(ranges: DegradationRanges, seed: int, path: str) -> Degradation:
    """The parameters of image ``path`` under ``seed`` (uniform in ``ranges``)."""
    rng = _generator(seed, "degradation", path)
    return Degradation(int(rng.integers(ranges.size[0], ranges.size[1] + 1)), float(rng.uniform(*ranges.blur)),
                       float(rng.uniform(*ranges.noise)), int(rng.integers(ranges.jpeg[0], ranges.jpeg[1] + 1)))


def degrade_image(image: np.ndarray, degradation: Degradation, seed: int = 0) -> np.ndarray:
    """Steps 1-5 of the module docstring on an RGB ``uint8 (H, W, 3)`` image; the result has the same shape.
    ``seed`` seeds the noise."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise XfvError(f"degrade_image expects an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}.")
    h, w = image.shape[:2]
    scale = min(1.0, degradation.size / max(h, w))
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    low = small.astype(np.float64)
    if degradation.blur > 0:
        low = cv2.GaussianBlur(low, (0, 0), degradation.blur)
    if degradation.noise > 0:
        low = low + np.random.default_rng(seed).normal(0.0, degradation.noise, low.shape)
    low = np.clip(np.round(low), 0, 255).astype(np.uint8)
    low = np.asarray(Image.open(io.BytesIO(_jpeg(low, degradation.jpeg))).convert("RGB"))
    return cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


@dataclass(frozen=True)
class DegradeReport:
    out: Path
    images: int
    degraded: int
    pairs: int
    dataset_format: str  # how to read the copy: the source's format (mode image) or csv (mode pair)
    pairs_file: Path
    both_clean: int
    one_degraded: int
    both_degraded: int


def degrade_dataset(
    dataset_format: str, root: str | Path, out: str | Path, *, pairs_file: str | Path | None = None,
    seed: int = 0, mode: str = "image", fraction: float = 0.5, ranges: DegradationRanges | None = None,
    allow_outside_root: bool = False,
) -> DegradeReport:
    """Write the degraded copy of a dataset into the new (or empty) folder ``out``; see the module docstring."""
    if mode not in MODES:
        raise XfvError(f"mode must be one of {list(MODES)}, got {mode!r}.")
    if not isinstance(fraction, (int, float)) or not 0.0 <= float(fraction) <= 1.0:
        raise XfvError(f"fraction must be a number in [0, 1], got {fraction!r}.")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise XfvError(f"seed must be a non-negative integer, got {seed!r}.")
    ranges = ranges or DegradationRanges()
    pair_list = read_pairs(dataset_format, root, pairs_file, allow_outside_root=allow_outside_root)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise XfvError(f"--out {str(out)!r} exists and is not an empty folder; choose a new one.")
    if out.resolve() == Path(root).resolve():
        raise XfvError("--out must not be the dataset's own folder.")
    plan = _plan(pair_list, seed, mode, float(fraction))
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for target, (source, degraded) in plan.files.items():
        destination = out / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        if degraded:
            degradation = draw_degradation(ranges, seed, source)
            noise_seed = int(_generator(seed, "noise", source).integers(2**63))
            image = np.asarray(Image.open(pair_list.path(source)).convert("RGB"))
            destination.write_bytes(_jpeg(degrade_image(image, degradation, noise_seed), STORE_QUALITY))
            manifest.append((target, source, 1, *asdict(degradation).values()))
        else:
            shutil.copyfile(pair_list.path(source), destination)
            manifest.append((target, source, 0, "", "", "", ""))
    with open(out / MANIFEST, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(MANIFEST_COLUMNS)
        writer.writerows(manifest)
    if mode == "image":
        source_pairs = Path(pairs_file) if pairs_file else Path(root) / DATASET_FORMATS[dataset_format][1]
        written_format, written_pairs = dataset_format, out / DATASET_FORMATS[dataset_format][1]
        shutil.copyfile(source_pairs, written_pairs)
    else:
        written_format, written_pairs = "csv", out / PAIRS_CSV
        with open(written_pairs, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path1", "path2", "label", "fold"])
            writer.writerows((a, b, p.label, p.fold) for p, (a, b) in zip(pair_list.pairs, plan.pairs))
    degraded_files = {t for t, (_, d) in plan.files.items() if d}
    counts = np.bincount([(a in degraded_files) + (b in degraded_files) for a, b in plan.pairs], minlength=3)
    report = DegradeReport(out, len(plan.files), len(degraded_files), len(pair_list), written_format, written_pairs,
                           *(int(c) for c in counts))
    (out / README).write_text(_readme(pair_list, dataset_format, seed, mode, float(fraction), ranges, report),
                              encoding="utf-8")
    return report


@dataclass
class _Plan:
    files: dict[str, tuple[str, bool]]  # path in the copy -> (source path, degraded)
    pairs: list[tuple[str, str]]  # per pair, the paths of its two images in the copy


def _plan(pair_list: PairList, seed: int, mode: str, fraction: float) -> _Plan:
    files: dict[str, tuple[str, bool]] = {}
    pairs = []
    for pair in pair_list.pairs:
        if mode == "image":
            sides = tuple(_generator(seed, "selected", p).random() < fraction for p in (pair.image1, pair.image2))
        else:
            first = bool(_generator(seed, "side", pair.index).random() < 0.5)
            sides = (first, not first)
        targets = []
        for path, degraded in zip((pair.image1, pair.image2), sides):
            target = f"{DEGRADED_FOLDER}/{path}" if degraded and mode == "pair" else path
            files.setdefault(target, (path, degraded))
            targets.append(target)
        pairs.append(tuple(targets))
    return _Plan(files, pairs)


def read_manifest(root: str | Path) -> dict[str, bool]:
    """``path -> degraded`` from a degraded copy's ``degradations.csv``."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} not found: {str(root)!r} is not a copy written by 'xfv data degrade'.")
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["path"]: row["degraded"] == "1" for row in csv.DictReader(handle)}


BANDS = ("both clean", "one degraded", "both degraded")


def degradation_bands(pair_list: PairList) -> np.ndarray | None:
    """Per pair of a degraded copy its band (:data:`BANDS`: how many of its images are degraded), from the copy's
    ``degradations.csv``; None for a dataset that is no such copy."""
    if not (pair_list.root / MANIFEST).is_file():
        return None
    degraded = read_manifest(pair_list.root)
    return np.array([BANDS[degraded.get(p.image1, False) + degraded.get(p.image2, False)] for p in pair_list.pairs])


def _readme(pair_list: PairList, dataset_format: str, seed: int, mode: str, fraction: float,
            ranges: DegradationRanges, report: DegradeReport) -> str:
    choice = (f"each image degraded with probability {fraction}" if mode == "image"
              else "one side of every pair degraded (degraded images under degraded/)")
    return f"""# A degraded copy of {pair_list.name} (derived variant, not XQLFW)

Written by xfv {__version__} (`xfv data degrade`) from the {dataset_format} pair list of `{pair_list.name}`.
XQLFW-style cross-quality benchmark: {choice}, seed {seed}. This is a synthetic variant derived by xfv; it is
not the XQLFW dataset of Knoche, Hörmann and Rigoll (FG 2021) and its figures are not XQLFW figures.

Each degraded image: down-sampled to a longer side of {ranges.size[0]}-{ranges.size[1]} px (area), Gaussian blur
sigma {ranges.blur[0]}-{ranges.blur[1]} px, Gaussian noise {ranges.noise[0]}-{ranges.noise[1]} grey levels, JPEG
quality {ranges.jpeg[0]}-{ranges.jpeg[1]}, up-sampled (bicubic) to its original size and stored as JPEG {STORE_QUALITY}.
Clean images are byte-for-byte copies. `{MANIFEST}` lists every image with its parameters.

- images: {report.images} ({report.degraded} degraded)
- pairs: {report.pairs}: {report.both_clean} both clean, {report.one_degraded} one degraded, {report.both_degraded} both degraded
- read it as: `--dataset {report.dataset_format} --root <this folder>` (pair list `{report.pairs_file.name}`)
"""
