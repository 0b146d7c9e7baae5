"""Embedding images and pairs of a dataset, streaming in chunks, with the per-image embedding cache."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from xfv.datasets import PairList
from xfv.faces import FaceDetector, detect_and_align, load_image
from xfv.faces.images import check_image_file
from xfv.faces.pipeline import load_face, model_detector
from xfv.models import EmbeddingModel
from xfv.quality.rating import QUALITY_MEASURES, qualities, rate_crops
from xfv.quality.stability import DEFAULT_PERTURBATIONS
from xfv.store.cache import EmbeddingCache, content_hash
from xfv.verification import cosine_distance

CHUNK = 64
PARALLEL_MIN = 16  # fewer new images than this are aligned in-process


def _align(path: str, alignment: str, size: int, aligned: bool,
           detector: FaceDetector) -> tuple[np.ndarray, str, list[str]]:
    """Load and align one image: ``(crop, detector that found the face, what to tell of the choice)`` (several
    faces: warned by the caller if asked)."""
    if aligned:
        return load_face(path, alignment=alignment, size=size, aligned=True), "aligned", []
    face = detect_and_align(load_image(path), alignment=alignment, size=size, detector=detector, name=path)
    message = detector.chosen_message(path, face.found)
    return face.crop, face.detector, [] if message is None else [message]


def cache_namespace(model: EmbeddingModel, aligned: bool, detector: FaceDetector) -> str:
    """Model fingerprint plus everything that decides the crop the model sees."""
    preprocessing = {"aligned": aligned, "size": model.config.input_size, **({} if aligned else detector.options)}
    suffix = hashlib.sha256(json.dumps(preprocessing, sort_keys=True).encode()).hexdigest()[:8]
    return f"{model.name}-{model.fingerprint}-{suffix}"


def embed_paths(
    paths: Sequence[str | Path], model: EmbeddingModel, *, aligned: bool = False, use_cache: bool = True,
    progress: bool = False, detector: FaceDetector | None = None, stats: Counter | None = None,
    workers: int | None = None, warn: bool = False, detectors: dict[str, str] | None = None,
) -> np.ndarray:
    """Embeddings ``(len(paths), D)`` in the order of ``paths``; each distinct image is embedded once.

    Faces are aligned at the model's native input size in its template (``aligned=True``: inputs are crops
    already and are only resized), found by ``detector`` or, for a model with its own, by that one
    (:func:`xfv.faces.pipeline.model_detector`). ``stats`` (optional) counts which detector found each newly
    aligned face.
    Images are read, hashed and looked up in the cache first; the misses are aligned by ``workers`` processes
    (default: one per core) and embedded chunk by chunk, so memory stays bounded. ``warn``: pass on the detector's
    warnings (several faces in a photo) for the images aligned now: for photos a user names, not for datasets.
    ``detectors`` (optional): filled with each path's detector that found its face (``centre``: none did), cached
    with the embedding; an embedding cached without it is computed again when it is asked for.
    """
    return _embed(paths, model, (), aligned=aligned, use_cache=use_cache, progress=progress, detector=detector,
                  stats=stats, workers=workers, warn=warn, detectors=detectors)[0]


def embed_with_quality(
    paths: Sequence[str | Path], model: EmbeddingModel, *, perturbations: tuple[str, ...] = DEFAULT_PERTURBATIONS,
    aligned: bool = False, use_cache: bool = True, progress: bool = False, detector: FaceDetector | None = None,
    workers: int | None = None, detectors: dict[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(N, D)`` as :func:`embed_paths` (``detectors`` too), and each image's qualities ``(N, 2)`` by
    :data:`~xfv.quality.rating.QUALITY_MEASURES` (the stability under ``perturbations`` and the sharpness), both
    from the crop the model embeds, batched with it and cached per image beside the embedding."""
    embeddings, ratings = _embed(paths, model, tuple(perturbations), aligned=aligned, use_cache=use_cache,
                                 progress=progress, detector=detector, workers=workers, detectors=detectors)
    return embeddings, qualities(ratings)


def quality_namespace(namespace: str, perturbations: tuple[str, ...]) -> str:
    """The cache namespace of the faces' ratings (:func:`xfv.quality.rating.rate_crops`: perturbation distances and
    sharpness): the embeddings' plus the perturbations' names."""
    return f"{namespace}-rated-{hashlib.sha256(','.join(perturbations).encode()).hexdigest()[:8]}"


def _embed(
    paths: Sequence[str | Path], model: EmbeddingModel, perturbations: tuple[str, ...], *, aligned: bool,
    use_cache: bool, progress: bool, detector: FaceDetector | None, stats: Counter | None = None,
    workers: int | None = None, warn: bool = False, detectors: dict[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Embeddings of ``paths`` and, with ``perturbations``, each image's ``(P + 1,)`` rating (:mod:`xfv.quality.rating`)."""
    detector = model_detector(detector, model.config.detector)
    namespace = cache_namespace(model, aligned, detector)
    cache = EmbeddingCache(namespace, dim=model.config.embedding_dim) if use_cache else None
    rated = (EmbeddingCache(quality_namespace(namespace, perturbations), dim=len(perturbations) + 1)
             if use_cache and perturbations else None)
    unique = list(dict.fromkeys(str(p) for p in paths))
    for path in unique:
        check_image_file(path)
    embeddings: dict[str, np.ndarray] = {}
    distances: dict[str, np.ndarray] = {}
    keys = {path: content_hash(Path(path).read_bytes()) for path in unique}
    missing = []
    for path in unique:
        cached = cache.get(keys[path]) if cache else None
        found_by = cache.get_detector(keys[path]) if cache and detectors is not None and cached is not None else None
        known = rated.get(keys[path]) if rated else None
        if cached is None or (perturbations and known is None) or (detectors is not None and found_by is None):
            missing.append(path)
        else:
            embeddings[path] = cached
            if known is not None:
                distances[path] = known
            if detectors is not None:
                detectors[path] = found_by
    workers = min(workers or os.cpu_count() or 1, max(1, len(missing) // PARALLEL_MIN))
    align = partial(_align, alignment=model.config.alignment, size=model.config.input_size, aligned=aligned,
                    detector=detector)
    bar = tqdm(total=len(unique), initial=len(unique) - len(missing), desc=f"embedding ({model.name})", unit="img",
               disable=not progress)
    # forkserver, not fork: forking a process that runs threads (onnxruntime, a web server) can deadlock.
    forkserver = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(workers, mp_context=forkserver) if workers > 1 else nullcontext() as pool:
        mapper = partial(pool.map, chunksize=4) if pool else map
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            results = list(mapper(align, chunk))
            crops = np.stack([r[0] for r in results])
            new, moved = rate_crops(model, crops, perturbations) if perturbations else (model.embed(crops),
                                                                                        [None] * len(chunk))
            for path, (_, source, messages), embedding, row in zip(chunk, results, new, moved):
                embeddings[path] = embedding
                for message in messages if warn else ():
                    warnings.warn(message, stacklevel=3)
                if cache:
                    cache.put(keys[path], embedding)
                    cache.put_detector(keys[path], source)
                if detectors is not None:
                    detectors[path] = source
                if row is not None:
                    distances[path] = row
                    if rated:
                        rated.put(keys[path], row)
                if stats is not None:
                    stats[source] += 1
            bar.update(len(chunk))
    bar.close()
    if not len(paths):
        return np.zeros((0, 0), np.float32), (np.zeros((0, len(perturbations) + 1)) if perturbations else None)
    out = np.stack([embeddings[str(p)] for p in paths])
    return out, (np.stack([distances[str(p)] for p in paths]) if perturbations else None)


def dataset_detector() -> FaceDetector:
    """For benchmark datasets, whose images are centred on their subject (LFW and its derivatives): HOG, dlib's
    CNN where HOG finds no face near the centre, a centred box where both fail (so that no pair leaves the
    protocol), and among several faces the one nearest the centre (see docs/models.md for what each step gains)."""
    return FaceDetector("hog+cnn", fallback="centre", select="centre", max_offset=0.2)


def pair_distances(
    pair_list: PairList, model: EmbeddingModel, *, aligned: bool = False, use_cache: bool = True,
    progress: bool = False, detector: FaceDetector | None = None, stats: Counter | None = None,
    detectors: dict[str, str] | None = None,
) -> np.ndarray:
    """Cosine distance (Eq. 1) of every pair, one per pair, in pair order (default detector:
    :func:`dataset_detector`); ``detectors``: see :func:`embed_paths`."""
    detector = detector or dataset_detector()
    paths = [pair_list.path(p) for pair in pair_list.pairs for p in (pair.image1, pair.image2)]
    embeddings = embed_paths(paths, model, aligned=aligned, use_cache=use_cache, progress=progress,
                             detector=detector, stats=stats, detectors=detectors)
    return cosine_distance(embeddings[0::2], embeddings[1::2])


def pair_distances_and_qualities(
    pair_list: PairList, model: EmbeddingModel, *, aligned: bool = False, use_cache: bool = True,
    progress: bool = False, detector: FaceDetector | None = None,
    perturbations: tuple[str, ...] = DEFAULT_PERTURBATIONS, measures: tuple[str, ...] = QUALITY_MEASURES,
    detectors: dict[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`pair_distances` (``detectors`` too) and both images' qualities ``(N, M)`` by ``measures`` (of
    :data:`~xfv.quality.rating.QUALITY_MEASURES`), from the crop each image's embedding came from (one alignment and
    one batched model call per image)."""
    unknown = set(measures) - set(QUALITY_MEASURES)
    if unknown:
        raise ValueError(f"Unknown quality measure(s) {sorted(unknown)}; expected some of {list(QUALITY_MEASURES)}.")
    paths = [pair_list.path(p) for pair in pair_list.pairs for p in (pair.image1, pair.image2)]
    embeddings, quality = embed_with_quality(paths, model, perturbations=perturbations, aligned=aligned,
                                             use_cache=use_cache, progress=progress,
                                             detector=detector or dataset_detector(), detectors=detectors)
    quality = quality[:, [QUALITY_MEASURES.index(m) for m in measures]]
    return cosine_distance(embeddings[0::2], embeddings[1::2]), quality[0::2], quality[1::2]
