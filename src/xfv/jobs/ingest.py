"""Ingest a dataset into the platform's database: its images (hash, size, quality score) and its pairs.

Idempotent and resumable: images and pairs already in the database are skipped, and each chunk of images is
committed in one transaction, so an interrupted run leaves only whole chunks behind.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from xfv.datasets import DATASET_FORMATS, read_pairs
from xfv.faces import FaceDetector, detect_and_align, load_image
from xfv.quality.heuristic import ImageQuality, quality_score
from xfv.store.db import transaction
from xfv.store.models import Dataset, Image, Pair

CHUNK = 64
QUALITY_ALIGNMENT = "dlib"
QUALITY_SIZE = 112


@dataclass(frozen=True)
class ImageFacts:
    path: str
    sha256: str
    width: int
    height: int
    quality: ImageQuality
    aligned: bool


def inspect_image(root: str, relative: str) -> ImageFacts:
    """Hash, size and quality of one dataset image (quality on the dlib-aligned crop; the centre of the photo
    when no face is found, with ``aligned`` False)."""
    path = Path(root) / relative
    data = path.read_bytes()
    image = load_image(data, name=str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # several faces: the largest is the subject, as in the embedding jobs
        face = detect_and_align(image, alignment=QUALITY_ALIGNMENT, size=QUALITY_SIZE,
                                detector=FaceDetector("hog", fallback="centre"), name=str(path))
    return ImageFacts(relative, hashlib.sha256(data).hexdigest(), image.shape[1], image.shape[0],
                      quality_score(face.crop), face.detector != "centre")


@dataclass(frozen=True)
class IngestReport:
    dataset: str
    images_added: int
    images_skipped: int
    pairs_added: int
    pairs_skipped: int


def ingest_dataset(
    factory: sessionmaker[Session], dataset_format: str, root: str | Path, pairs_file: str | Path | None = None,
    name: str | None = None, *, workers: int | None = None, progress: bool = False, allow_outside_root: bool = False,
) -> IngestReport:
    """Register the dataset, its images and its pairs; a second run adds only what is missing.

    ``allow_outside_root``: accept image paths of the pair list that leave ``root`` (see :func:`read_pairs`).
    """
    pair_list = read_pairs(dataset_format, root, pairs_file, name, allow_outside_root=allow_outside_root)
    root = Path(root).resolve()
    pairs_path = Path(pairs_file).resolve() if pairs_file else root / DATASET_FORMATS[dataset_format][1]
    with transaction(factory) as session:
        dataset = session.scalar(select(Dataset).where(Dataset.name == pair_list.name))
        if dataset is None:
            dataset = Dataset(name=pair_list.name, format=dataset_format, root=str(root), pairs_file=str(pairs_path))
            session.add(dataset)
        elif Path(dataset.root) != root or dataset.format != dataset_format:
            raise ValueError(f"Dataset {pair_list.name!r} is already in the database with format {dataset.format!r} "
                             f"and root {dataset.root!r}; choose another --name.")
        session.flush()
        dataset_id = dataset.id

    identities, lines = {}, {}
    for pair in pair_list.pairs:
        for image, identity in ((pair.image1, pair.identity1), (pair.image2, pair.identity2)):
            identities.setdefault(image, identity)
            lines.setdefault(image, pair.line)
    with factory() as session:
        known = set(session.scalars(select(Image.path).where(Image.dataset_id == dataset_id)))
    todo = [path for path in identities if path not in known]
    for path in todo:
        if not (root / path).is_file():
            raise FileNotFoundError(f"{pairs_path}:{lines[path]}: image {path!r} is missing under {str(root)!r}.")
    _add_images(factory, dataset_id, str(root), todo, identities, workers, progress)

    with transaction(factory) as session:
        ids = dict(session.execute(select(Image.path, Image.id).where(Image.dataset_id == dataset_id)).all())
        existing = set(session.scalars(select(Pair.position).where(Pair.dataset_id == dataset_id)))
        new_pairs = [p for p in pair_list.pairs if p.index not in existing]
        session.add_all(Pair(dataset_id=dataset_id, position=p.index, fold=p.fold, label=p.label,
                             image1_id=ids[p.image1], image2_id=ids[p.image2]) for p in new_pairs)
    return IngestReport(pair_list.name, len(todo), len(known), len(new_pairs), len(pair_list) - len(new_pairs))


def _add_images(factory: sessionmaker[Session], dataset_id: int, root: str, paths: Sequence[str],
                identities: dict[str, str], workers: int | None, progress: bool) -> None:
    if not paths:
        return
    workers = workers or min(8, os.cpu_count() or 1)
    bar = tqdm(total=len(paths), desc="ingesting images", unit="img", disable=not progress)
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    # forkserver: forking a process that already runs threads (a server, onnxruntime) can deadlock the child
    executor = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))
                if workers > 1 and len(paths) > CHUNK else None)
    try:
        for chunk in chunks:
            if executor is not None:
                facts = list(executor.map(inspect_image, [root] * len(chunk), chunk))
            else:
                facts = [inspect_image(root, path) for path in chunk]
            with transaction(factory) as session:
                session.add_all(Image(
                    dataset_id=dataset_id, path=f.path, identity=identities[f.path], sha256=f.sha256, width=f.width,
                    height=f.height, quality=f.quality.quality, sharpness=f.quality.sharpness,
                    brightness=f.quality.brightness, contrast=f.quality.contrast, aligned=f.aligned,
                ) for f in facts)
            bar.update(len(chunk))
    finally:
        if executor is not None:
            executor.shutdown()
        bar.close()
