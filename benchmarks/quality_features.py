"""Per-image features for the quality benchmark (``benchmarks/quality_benchmark.py``): one pass over a dataset.

For every distinct image (by content: a clean image shared by several copies is computed once) and one model:
the dataset detector's face (the crop ``xfv evaluate`` embeds), the detector's name and confidence, the
embedding, the embeddings of every perturbation of :mod:`xfv.quality.stability`, the sharpness of the same crop
(``crop_sharpness``, what the quality-aware C-Score reads), and with ``--heuristic`` the image-statistics heuristic as
``xfv ingest`` stores it (on the HOG-detected dlib 112 crop, model-free; saved as PNG under ``--crops`` for the
BRISQUE side run). Images of a store from before ``crop_sharpness`` are aligned again for it (no model pass). The embeddings also go into the shared embedding cache, so that ``xfv evaluate`` on the same
images finds them.

    python benchmarks/quality_features.py --dataset lfw --root DIR --model dlib --store features-dlib.npz \
        [--crops crops/] [--workers 2]

The store accumulates over runs (clean LFW, then its degraded copies); ``--store`` keeps one model's features.
``--fill-cache`` writes the store's embeddings and ratings (the perturbation distances of
:data:`xfv.quality.stability.DEFAULT_PERTURBATIONS` and the crop's sharpness) into the caches that ``xfv calibrate
--quality`` and ``xfv evaluate --quality`` read (no model pass).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from xfv.datasets import read_pairs
from xfv.faces import FaceDetector, align_face, detect_and_align, load_image, model_detector
from xfv.faces.detection import centre_box
from xfv.faces.pipeline import AlignedFace
from xfv.jobs.embeddings import cache_namespace, dataset_detector, quality_namespace
from xfv.models import create_model
from xfv.quality.heuristic import crop_sharpness, quality_score
from xfv.quality.stability import (
    DEFAULT_PERTURBATIONS,
    PERTURBATIONS,
    embed_with_perturbations,
    perturbation_distances,
)
from xfv.store.cache import EmbeddingCache, content_hash

CHUNK = 64


def align(path: str, alignment: str, size: int, method: str, heuristic: bool) -> tuple:
    """The dataset detector's face (``method``: the model's detector, or for an image aligned before, the detector
    that found its face then: ``centre`` is the centred box the fallback gave)."""
    data = Path(path).read_bytes()
    image = load_image(data, name=path)
    detector = model_detector(dataset_detector(), None if method in (dataset_detector().method, "centre") else method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "centre":  # both detectors found nothing near the centre before: skip them
            box = centre_box(image)
            face = AlignedFace(align_face(image, box, alignment, size), box.box, box.source)
        else:
            face = detect_and_align(image, alignment=alignment, size=size, detector=detector, name=path)
        extra = None
        if heuristic:  # as xfv ingest: HOG, centre fallback, dlib template, 112 px
            crop = detect_and_align(image, alignment="dlib", size=112,
                                    detector=FaceDetector("hog", fallback="centre"), name=path).crop
            extra = (quality_score(crop), crop)
    return content_hash(data), face.crop, face.detector, face.score, extra, crop_sharpness(face.crop)


def load_store(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}  # each read once (an NpzFile decompresses per access)
    keys = arrays.pop("sha").tolist()
    arrays.pop("names", None)
    return {k: {name: values[i].copy() for name, values in arrays.items()} for i, k in enumerate(keys)}


def read_names(path: Path) -> tuple[str, ...] | None:
    """The perturbations a store was computed with (stores from before this field: all of them)."""
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return tuple(data["names"].tolist()) if "names" in data.files else tuple(PERTURBATIONS)


def save_store(path: Path, store: dict[str, dict], names: tuple[str, ...]) -> None:
    keys = sorted(store)
    fields = sorted({name for record in store.values() for name in record})
    arrays = {"sha": np.array(keys), "names": np.array(names)}
    for name in fields:
        arrays[name] = np.stack([np.asarray(store[k].get(name, np.nan)) for k in keys])
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def fill_cache(model, store_path: Path) -> None:
    store = load_store(store_path)
    detector = model_detector(dataset_detector(), model.config.detector)
    namespace = cache_namespace(model, False, detector)
    rated = EmbeddingCache(quality_namespace(namespace, DEFAULT_PERTURBATIONS), dim=len(DEFAULT_PERTURBATIONS) + 1)
    cache = EmbeddingCache(namespace, dim=model.config.embedding_dim)
    names = read_names(store_path)
    columns = [names.index(name) for name in DEFAULT_PERTURBATIONS]
    filled = 0
    for sha, record in store.items():
        cache.put(sha, record["embedding"])
        if np.isfinite(record.get("crop_sharpness", np.nan)):  # a rating: perturbation distances, then sharpness
            moved = perturbation_distances(record["embedding"][None], record["perturbed"][None, columns])[0]
            rated.put(sha, np.append(moved, record["crop_sharpness"]))
            filled += 1
    print(f"filled {len(store)} embeddings and {filled} ratings of {rated.namespace}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="lfw")
    parser.add_argument("--root", required=True)
    parser.add_argument("--pairs")
    parser.add_argument("--model", default="dlib")
    parser.add_argument("--store", required=True, help=".npz file of this model's features (accumulates)")
    parser.add_argument("--crops", help="folder for the heuristic's 112 crops (PNG, for BRISQUE)")
    parser.add_argument("--heuristic", action="store_true", help="also the image-statistics heuristic")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fill-cache", action="store_true", help="only fill the quality cache from the store")
    parser.add_argument("--perturbations", default=",".join(PERTURBATIONS),
                        help="comma-separated names (default: all of xfv.quality.stability.PERTURBATIONS)")
    args = parser.parse_args()

    model = create_model(args.model)
    names = tuple(args.perturbations.split(","))
    if args.fill_cache:
        fill_cache(model, Path(args.store))
        return
    pair_list = read_pairs(args.dataset, args.root, args.pairs)
    paths = list(dict.fromkeys(str(pair_list.path(p)) for pair in pair_list.pairs for p in (pair.image1, pair.image2)))
    store_path = Path(args.store)
    store = load_store(store_path)
    stored_names = read_names(store_path)
    if stored_names is not None and stored_names != names:
        raise SystemExit(f"{store_path} holds perturbations {stored_names}, not {names}.")
    detector = model_detector(dataset_detector(), model.config.detector)
    cache = EmbeddingCache(cache_namespace(model, False, detector), dim=model.config.embedding_dim)
    shas = {p: content_hash(Path(p).read_bytes()) for p in paths}
    todo = [p for p in paths if shas[p] not in store]
    # images computed before the sharpness of the model's own crop was recorded: align them again (no model pass)
    unrated = [p for p in paths if shas[p] in store and not np.isfinite(store[shas[p]].get("crop_sharpness", np.nan))]
    print(f"{args.model} on {args.root}: {len(paths)} images, {len(todo)} to compute, {len(unrated)} to rate; "
          f"load {os.getloadavg()}", flush=True)
    started, passes = time.perf_counter(), 0
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        for start in range(0, len(unrated), CHUNK * 4):
            chunk = unrated[start:start + CHUNK * 4]
            # the detector that found each face then (hog+cnn's CNN only where HOG had failed), so that the face is
            # the same without running detectors that failed on it
            methods = [str(store[shas[p]]["detector"]) for p in chunk]
            for result in pool.map(align, chunk, [model.config.alignment] * len(chunk),
                                   [model.config.input_size] * len(chunk), methods, [False] * len(chunk), chunksize=8):
                record = store[result[0]]
                if result[2] != record["detector"]:
                    raise SystemExit(f"{result[0]}: found by {result[2]} now, by {record['detector']} before")
                record["crop_sharpness"] = result[5]
            print(f"rated {start + len(chunk)}/{len(unrated)}, {time.perf_counter() - started:.0f} s, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
            save_store(store_path, store, names)
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            results = list(pool.map(align, chunk, [model.config.alignment] * len(chunk),
                                    [model.config.input_size] * len(chunk), [detector.method] * len(chunk),
                                    [args.heuristic] * len(chunk), chunksize=4))
            crops = np.stack([r[1] for r in results])
            embeddings, perturbed = embed_with_perturbations(model, crops, names)
            passes += len(crops) * (1 + len(names))
            for (sha, _, source, score, extra, sharp), embedding, others in zip(results, embeddings, perturbed):
                cache.put(sha, embedding)
                record = {"embedding": embedding, "perturbed": others, "detector": source,
                          "score": np.nan if score is None else score, "crop_sharpness": sharp}
                if extra is not None:
                    quality, crop = extra
                    record.update(heuristic=quality.quality, sharpness=quality.sharpness)
                    if args.crops:
                        Path(args.crops).mkdir(parents=True, exist_ok=True)
                        Image.fromarray(crop).save(Path(args.crops) / f"{sha}.png")
                store[sha] = record
            done = start + len(chunk)
            elapsed = time.perf_counter() - started
            print(f"{done}/{len(todo)} images, {elapsed:.0f} s, {passes / elapsed:.0f} passes/s, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
            if done % (CHUNK * 20) == 0:
                save_store(store_path, store, names)
    save_store(store_path, store, names)
    print(f"done: {len(todo)} images in {time.perf_counter() - started:.0f} s; store {len(store)} images", flush=True)


if __name__ == "__main__":
    main()
