"""LFW 10-fold accuracy of the default model under pre-processing variants, side by side in one run.

Each image is decoded and detected once; the variants differ in what happens where HOG finds no face (a
centred box, or dlib's CNN detector), in which face is used when there are several (the largest, or the one
nearest the image centre), and in test-time augmentation (flip averaging). Detection is timed once for all
variants (HOG on every image, the CNN on HOG's misses) and printed on its own line; each variant's time
column ("embed s") is its embedding pass only.

    python benchmarks/lfw_variants.py [--root ../shared/data/lfw] [--reference]

``--jitter N`` adds dlib's jittering (``dlib.jitter_image``: N random crops, rotations, scalings and flips per face,
unit embeddings averaged, as ``compute_face_descriptor(num_jitters=N)`` does); random, hence not a model option.
``--reference`` adds dlib-bin (the reference backend) for the default variant: about 25 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from xfv.datasets import read_pairs
from xfv.faces import FaceDetector, load_image
from xfv.faces.alignment import align_face
from xfv.faces.detection import centre_box, nearest_centre
from xfv.models import create_model
from xfv.verification import cosine_distance, kfold_verification


def jittered_embedding(model, face: np.ndarray, jitters: int) -> np.ndarray:
    import dlib

    copies = model.embed(np.stack(dlib.jitter_image(np.ascontiguousarray(face), num_jitters=jitters)))
    return (copies / np.linalg.norm(copies, axis=1, keepdims=True)).mean(axis=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"))
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--jitter", type=int, default=0)
    parser.add_argument("--only-jitter", action="store_true", help="skip the deterministic variants")
    args = parser.parse_args()
    pairs = read_pairs("lfw", args.root)
    paths = sorted({p for pair in pairs.pairs for p in (pair.image1, pair.image2)})
    index = {p: i for i, p in enumerate(paths)}
    hog, cnn = FaceDetector("hog"), FaceDetector("cnn")
    crops = {name: [] for name in ("hog+centre", "hog+cnn+centre", "hog+cnn+centre, nearest-centre face")}
    seconds = {"hog": 0.0, "cnn": 0.0}
    counts = {"hog-miss": 0, "cnn-miss": 0, "several": 0}
    for path in paths:
        image = load_image(pairs.path(path))
        start = time.perf_counter()
        faces = hog.detect(image)
        seconds["hog"] += time.perf_counter() - start
        if not faces:
            counts["hog-miss"] += 1
            start = time.perf_counter()
            faces = cnn.detect(image)
            seconds["cnn"] += time.perf_counter() - start
            counts["cnn-miss"] += not faces
        counts["several"] += len(faces) > 1
        largest = faces[0] if faces else centre_box(image)
        hog_only = largest if (faces and largest.source == "hog") else centre_box(image)
        central = nearest_centre(faces, image) if faces else largest
        crops["hog+centre"].append(align_face(image, hog_only, "dlib", 150))
        crops["hog+cnn+centre"].append(align_face(image, largest, "dlib", 150))
        crops["hog+cnn+centre, nearest-centre face"].append(align_face(image, central, "dlib", 150))
    print(f"{len(paths)} images; HOG found no face in {counts['hog-miss']}, CNN then none in {counts['cnn-miss']}; "
          f"{counts['several']} with several faces. HOG {seconds['hog']:.0f} s, CNN {seconds['cnn']:.0f} s.")

    labels = np.array([p.label for p in pairs.pairs])
    folds = np.array([p.fold for p in pairs.pairs])
    first = np.array([index[p.image1] for p in pairs.pairs])
    second = np.array([index[p.image2] for p in pairs.pairs])
    runs = [("hog+centre", {}), ("hog+cnn+centre", {}), ("hog+cnn+centre, nearest-centre face", {}),
            ("hog+cnn+centre", {"flip": True}), ("hog+cnn+centre, nearest-centre face", {"flip": True})]
    if args.reference:
        runs.append(("hog+cnn+centre", {"backend": "dlib"}))
    if args.only_jitter:
        runs = []
    if args.jitter:
        runs.append(("hog+cnn+centre", {"jitter": args.jitter}))
    print(f"{'variant':58s} {'accuracy':>9s} {'std':>7s} {'embed s':>8s}")
    for crop_name, options in runs:
        model = create_model("dlib", **{k: v for k, v in options.items() if k != "jitter"})
        faces = np.stack(crops[crop_name])
        start = time.perf_counter()
        if "jitter" in options:
            embeddings = np.stack([jittered_embedding(model, face, options["jitter"]) for face in faces])
        else:
            embeddings = model.embed(faces)
        wall = time.perf_counter() - start
        report = kfold_verification(cosine_distance(embeddings[first], embeddings[second]), labels, folds)
        label = f"{crop_name}, {', '.join(f'{k}={v}' for k, v in options.items()) or 'onnx'}"
        print(f"{label:58s} {report.accuracy_mean:9.4f} {report.accuracy_std:7.4f} {wall:8.1f}", flush=True)


if __name__ == "__main__":
    main()
