"""Ingest a dataset into the platform's database: its images (hash, size, quality score) and its pairs; remove one.

All or nothing: the pair list, the images' presence under the root (links resolved) and every image are checked
and measured first, then the dataset, its images and its pairs are written in one transaction, so a failed or
interrupted run leaves nothing behind and a corrected one starts afresh. Idempotent: images and pairs already in
the database are skipped.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from xfv.datasets import DATASET_FORMATS, read_pairs
from xfv.errors import NotFoundError, XfvError
from xfv.faces import FaceDetector, detect_and_align, load_image
from xfv.quality.heuristic import ImageQuality, quality_score
from xfv.store.db import transaction
from xfv.store.models import CalibrationRecord, Dataset, Image, Pair, Result, XMapRecord

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
    # several faces: the largest is the subject, as in the embedding jobs
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
    """Register the dataset, its images and its pairs in one transaction; a second run adds only what is missing.

    ``allow_outside_root``: accept image paths of the pair list that leave ``root``, by their text (see
    :func:`read_pairs`) or through a symbolic link; otherwise such a path is an error naming its line.
    """
    pair_list = read_pairs(dataset_format, root, pairs_file, name, allow_outside_root=allow_outside_root)
    root = Path(root).resolve()
    pairs_path = Path(pairs_file).resolve() if pairs_file else root / DATASET_FORMATS[dataset_format][1]
    with factory() as session:
        dataset = session.scalar(select(Dataset).where(Dataset.name == pair_list.name))
        if dataset is not None and (Path(dataset.root) != root or dataset.format != dataset_format):
            raise XfvError(f"Dataset {pair_list.name!r} is already in the database with format {dataset.format!r} "
                           f"and root {dataset.root!r}; choose another --name, or remove it first "
                           f"('xfv datasets remove {pair_list.name}').")
        dataset_id = None if dataset is None else dataset.id
        known = set() if dataset is None else set(session.scalars(select(Image.path).where(Image.dataset_id == dataset_id)))
        existing = set() if dataset is None else set(session.scalars(select(Pair.position).where(Pair.dataset_id == dataset_id)))

    identities, lines = {}, {}
    for pair in pair_list.pairs:
        for image, identity in ((pair.image1, pair.identity1), (pair.image2, pair.identity2)):
            identities.setdefault(image, identity)
            lines.setdefault(image, pair.line)
    todo = [path for path in identities if path not in known]
    for path in todo:
        _check_file(root, path, f"{pairs_path}:{lines[path]}", allow_outside_root)
    facts = _inspect_images(str(root), todo, workers, progress)

    new_pairs = [p for p in pair_list.pairs if p.index not in existing]
    with transaction(factory) as session:
        if dataset_id is None:
            dataset = Dataset(name=pair_list.name, format=dataset_format, root=str(root), pairs_file=str(pairs_path))
            session.add(dataset)
            session.flush()
            dataset_id = dataset.id
        session.add_all(Image(
            dataset_id=dataset_id, path=f.path, identity=identities[f.path], sha256=f.sha256, width=f.width,
            height=f.height, quality=f.quality.quality, sharpness=f.quality.sharpness,
            brightness=f.quality.brightness, contrast=f.quality.contrast, aligned=f.aligned,
        ) for f in facts)
        session.flush()
        ids = dict(session.execute(select(Image.path, Image.id).where(Image.dataset_id == dataset_id)).all())
        session.add_all(Pair(dataset_id=dataset_id, position=p.index, fold=p.fold, label=p.label,
                             image1_id=ids[p.image1], image2_id=ids[p.image2]) for p in new_pairs)
    return IngestReport(pair_list.name, len(todo), len(known), len(new_pairs), len(pair_list) - len(new_pairs))


def _check_file(root: Path, relative: str, where: str, allow_outside_root: bool) -> None:
    """The image must be a file, and (unless allowed) stay under ``root`` once symbolic links are resolved."""
    path = root / relative
    if not path.is_file():
        raise FileNotFoundError(f"{where}: image {relative!r} is missing under {str(root)!r}.")
    if not allow_outside_root and not path.resolve().is_relative_to(root):
        raise XfvError(f"{where}: image {relative!r} leads out of the dataset root {str(root)!r} (to "
                       f"{str(path.resolve())!r}, through a symbolic link); pass --allow-outside-root to allow it.")


def _inspect_images(root: str, paths: Sequence[str], workers: int | None, progress: bool) -> list[ImageFacts]:
    """:func:`inspect_image` of every path, in ``workers`` processes when there are many."""
    if not paths:
        return []
    workers = workers or min(8, os.cpu_count() or 1)
    bar = tqdm(total=len(paths), desc="ingesting images", unit="img", disable=not progress)
    # forkserver: forking a process that already runs threads (a server, onnxruntime) can deadlock the child
    executor = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))
                if workers > 1 and len(paths) > CHUNK else None)
    facts: list[ImageFacts] = []
    try:
        for start in range(0, len(paths), CHUNK):
            chunk = paths[start : start + CHUNK]
            mapped = executor.map(inspect_image, [root] * len(chunk), chunk) if executor else map(
                inspect_image, [root] * len(chunk), chunk)
            facts.extend(mapped)
            bar.update(len(chunk))
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
        bar.close()
    return facts


@dataclass(frozen=True)
class RemovalReport:
    dataset: str
    pairs: int
    images: int
    results: int
    xmaps: int
    calibrations: int


def remove_dataset(factory: sessionmaker[Session], name: str) -> RemovalReport:
    """Delete a dataset with its images, pairs, results, X-Maps and calibrations (one transaction); the files
    under its root are not touched. NotFoundError if there is none of that name."""
    with transaction(factory) as session:
        dataset = session.scalar(select(Dataset).where(Dataset.name == name))
        if dataset is None:
            known = sorted(session.scalars(select(Dataset.name)))
            raise NotFoundError(f"No dataset named {name!r}; datasets: {known}.")
        pairs = select(Pair.id).where(Pair.dataset_id == dataset.id)

        def count(column, condition) -> int:
            return session.scalar(select(func.count(column)).where(condition)) or 0

        report = RemovalReport(
            name, count(Pair.id, Pair.dataset_id == dataset.id), count(Image.id, Image.dataset_id == dataset.id),
            count(Result.id, Result.pair_id.in_(pairs)), count(XMapRecord.id, XMapRecord.pair_id.in_(pairs)),
            count(CalibrationRecord.id, CalibrationRecord.dataset_id == dataset.id))
        # children first: the schema cascades too, but SQLite only with its foreign keys switched on
        session.execute(delete(XMapRecord).where(XMapRecord.pair_id.in_(pairs)))
        session.execute(delete(Result).where(Result.pair_id.in_(pairs)))
        session.execute(delete(CalibrationRecord).where(CalibrationRecord.dataset_id == dataset.id))
        session.execute(delete(Pair).where(Pair.dataset_id == dataset.id))
        session.execute(delete(Image).where(Image.dataset_id == dataset.id))
        session.execute(delete(Dataset).where(Dataset.id == dataset.id))
    return report
