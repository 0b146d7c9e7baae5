"""Verifying two photos: the one function behind ``xfv verify``, ``xfv explain`` and the web upload.

For a pair it detects each face once with the photo detector (the model's own where its configuration names
one), aligns it twice from that detection (the model's native crop, which decides, and the 112 x 112 crop the
X-Maps occlude; docs/models.md measures the two against each other), embeds, takes the cosine distance (Eq. 1)
and judges it with one calibration: threshold ``t`` and C-Score (Eq. 2-3), named in the verdict. A calibration
with a quality-aware C-Score (docs/quality.md) also rates both faces by its quality measures, on the crops the model
embeds and in the same batch as the embeddings; its confidence is the probability that the decision is right, which
may fall below 0.5 (the decision is then more likely wrong than right, and the verdict says so), and the verdict says
when a face's quality lies outside what the calibration was fitted on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from xfv.confidence import Calibration, confidence_reading, default_calibration
from xfv.confidence.calibration_file import QualityMeasure
from xfv.errors import NotFoundError
from xfv.faces import FaceDetector, align_face, load_image, model_detector
from xfv.faces.pipeline import CANONICAL_SIZE, load_face
from xfv.jobs.embeddings import cache_namespace, quality_namespace
from xfv.models import EmbeddingModel
from xfv.quality import QUALITY_MEASURES, STABILITY
from xfv.quality.rating import qualities, rate_crops
from xfv.store.cache import EmbeddingCache, content_hash
from xfv.verification import cosine_distance

PHOTO_DETECTOR = "hog"  # dlib's HOG; the CNN (hog+cnn) finds more faces at several times the cost in time and
# memory, so photos get it only when asked (--detector hog+cnn), keeping one photo within docs/models.md's bounds
MIN_CALIBRATION_PAIRS = 1000  # fewer: the shipped benchmark calibration is used instead, and named
SHIPPED = "shipped: "  # how the name of a shipped calibration starts


@dataclass(frozen=True)
class PhotoFace:
    """One face of a photo: ``crop`` (112 x 112, what X-Maps explain) and ``native`` (the model's input size,
    what is verified), both aligned from the same detection (``detector``: which detector found it); ``key``: the
    photo's content hash (for the embedding cache), where it came from a file or bytes; ``found``: how many faces
    the detector found in the photo (the largest was used; 1 for an aligned crop); ``note``: that, in words, when
    there were several."""

    crop: np.ndarray
    native: np.ndarray
    detector: str
    key: str | None = None
    found: int = 1
    note: str | None = None


@dataclass(frozen=True)
class Verdict:
    """A verified pair: distance (Eq. 1), the calibration's threshold, prediction and C-Score (Eq. 3);
    ``cscore``: the C-Score variant that gave the confidence (``paper``, ``continuous``, ``quality-aware``);
    ``quality1``, ``quality2``: the faces' stability (None without a quality-aware C-Score);
    ``quality_note``: what the verdict says of them (a face outside the qualities the calibration has seen);
    :attr:`reading`: the confidence in words (:func:`xfv.confidence.confidence_reading`)."""

    model: str
    distance: float
    threshold: float
    prediction: str
    confidence: float | None
    calibration: str
    engine: str = ""  # what computed the embeddings (runtime, provider, precision): EmbeddingModel.engine
    cscore: str | None = None
    quality1: float | None = None
    quality2: float | None = None
    quality_note: str | None = None

    @property
    def reading(self) -> str | None:
        """The confidence in words where a number alone could mislead (a decision more likely wrong than right)."""
        return None if self.confidence is None else confidence_reading(self.confidence)

    def to_dict(self) -> dict:
        """The fields and the :attr:`reading` (JSON-ready)."""
        return {**asdict(self), "reading": self.reading}


def photo_detector(model: EmbeddingModel, method: str | None = None) -> FaceDetector:
    """The detector for photos of ``model``: the model's own if its configuration names one (sface: YuNet), else
    ``method`` if given, else :data:`PHOTO_DETECTOR`."""
    return model_detector(FaceDetector(method or PHOTO_DETECTOR), model.config.detector)


def photo_face(image: np.ndarray | str | Path | bytes, model: EmbeddingModel, *, name: str | None = None,
               detector: FaceDetector | None = None, aligned: bool = False) -> PhotoFace:
    """Detect the largest face of a photo (array, path or bytes) once and align it at 112 px and at the model's
    size. ``aligned=True``: the photo already is an aligned crop; it is only resized. Several faces are not a
    warning here (this runs in the web's threads too): the face says how many were found.
    """
    key = None
    if not isinstance(image, np.ndarray):
        data = image if isinstance(image, bytes) else Path(image).read_bytes() if Path(image).is_file() else None
        key = None if data is None else content_hash(data)
        name = name or ("the uploaded image" if isinstance(image, bytes) else str(image))
        if aligned:
            size = model.config.input_size
            crop = load_face(image, alignment="none", aligned=True, name=name)
            return PhotoFace(crop, load_face(image, alignment="none", size=size, aligned=True, name=name), "aligned",
                             key)
        image = load_image(image, name=name)
    name, size, alignment = name or "image", model.config.input_size, model.config.alignment
    if alignment == "none":
        return PhotoFace(align_face(image, None, "none", CANONICAL_SIZE), align_face(image, None, "none", size),
                         "none", key)
    detector = detector or photo_detector(model)
    face, found = detector.choose(image, name=name)  # several faces: the largest, said in ``note``
    crop = align_face(image, face, alignment, CANONICAL_SIZE)
    native = crop if size == CANONICAL_SIZE else align_face(image, face, alignment, size)
    return PhotoFace(crop, native, face.source, key, found, detector.chosen_message(name, found))


def photo_cache(model: EmbeddingModel, detector: FaceDetector, aligned: bool = False) -> EmbeddingCache:
    """The embedding cache of photos seen through ``detector``: the one ``xfv embed`` uses for the same options."""
    return EmbeddingCache(cache_namespace(model, aligned, detector))


def embed_native(model: EmbeddingModel, faces: list[PhotoFace], cache: EmbeddingCache | None = None,
                 perturbations: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray | None]:
    """The embeddings of the faces' native crops, from ``cache`` where it holds them (by the photos' content), and
    with ``perturbations`` each face's qualities ``(2,)`` by :data:`~xfv.quality.rating.QUALITY_MEASURES`, rated on
    the same native crop (:mod:`xfv.quality.rating`; None without)."""
    rated = (EmbeddingCache(quality_namespace(cache.namespace, perturbations), dim=len(perturbations) + 1)
             if cache is not None and perturbations else None)
    keyed = [cache is not None and f.key is not None for f in faces]
    found = {i: cache.get(f.key) for i, f in enumerate(faces) if keyed[i]}
    moved = {i: rated.get(f.key) for i, f in enumerate(faces) if keyed[i] and rated is not None}
    missing = [i for i in range(len(faces)) if found.get(i) is None or (perturbations and moved.get(i) is None)]
    if missing:
        crops = np.stack([faces[i].native for i in missing])
        new, rows = rate_crops(model, crops, perturbations) if perturbations else (model.embed(crops),
                                                                                   [None] * len(missing))
        for i, embedding, row in zip(missing, new, rows):
            found[i], moved[i] = embedding, row
            if keyed[i]:
                cache.put(faces[i].key, embedding)
                if rated is not None:
                    rated.put(faces[i].key, row)
    embeddings = np.stack([found[i] for i in range(len(faces))])
    if not perturbations:
        return embeddings, None
    return embeddings, qualities(np.stack([moved[i] for i in range(len(faces))]))


def shipped_calibration(model_name: str, fingerprint: str) -> tuple[Calibration, str]:
    """The benchmark calibration shipped with xfv for the model, and its name; NotFoundError without one, or when
    it was fitted with another configuration of the model (another ``fingerprint``: options or weights)."""
    calibration = default_calibration(model_name)
    remedy = (f"give one (--calibration FILE.json) or precompute a dataset of at least {MIN_CALIBRATION_PAIRS} "
              "pairs with it.")
    if calibration is None:
        raise NotFoundError(f"No calibration ships for model {model_name!r}: {remedy}")
    if not calibration.holds_for(fingerprint):
        raise NotFoundError(
            f"The calibration shipped for {model_name!r} was fitted with another configuration of it (fingerprint "
            f"{', '.join(calibration.fingerprints)}; this one is {fingerprint}, e.g. other options): {remedy}")
    return calibration, f"{SHIPPED}{describe(calibration)}"


def out_of_fold_name(dataset: str) -> str:
    """The name of a dataset's own fold-wise calibration (each pair judged by the fit on the other folds)."""
    return f"out of fold: fitted on the other folds of {dataset}"


def is_shipped(name: str) -> bool:
    """Whether a calibration name (:func:`shipped_calibration`, :func:`dataset_calibration`) is the shipped one."""
    return name.startswith(SHIPPED)


def describe(calibration: Calibration) -> str:
    """``"dlib on lfw, 6000 pairs"``: what a confidence was computed with."""
    return f"{calibration.model} on {calibration.dataset}, {calibration.pairs} pairs"


def usable_calibration(calibration: Calibration | None, model_name: str, fingerprint: str, *,
                       say_why: bool = True) -> tuple[Calibration, str]:
    """``calibration`` with its name if it was fitted on at least :data:`MIN_CALIBRATION_PAIRS` pairs with this
    configuration of the model (``fingerprint``), else the shipped one, named with the reason (a curve of four
    parameters over 400 bins needs that many pairs: the demo's 60-pair sample fills a few bins and gives 1.000 to
    most pairs). ``say_why=False``: the shipped one's name alone (for a user's photos, which the set-aside
    calibration was never about)."""
    if calibration is None:
        return shipped_calibration(model_name, fingerprint)
    if not calibration.holds_for(fingerprint):
        reason = f"the one fitted on {calibration.dataset} was fitted with another configuration of {model_name}"
    elif calibration.pairs < MIN_CALIBRATION_PAIRS:
        reason = (f"the one fitted on {calibration.dataset} has only {calibration.pairs} pairs, "
                  f"fewer than {MIN_CALIBRATION_PAIRS}")
    else:
        return calibration, f"fitted: {describe(calibration)}"
    shipped, name = shipped_calibration(model_name, fingerprint)
    return shipped, f"{name} ({reason})" if say_why else name


def dataset_calibration(own: Calibration, fingerprint: str) -> tuple[Calibration | None, str]:
    """What judges the stored pairs of a dataset, and its name: its own fold-wise fits (None) when the dataset has
    at least :data:`MIN_CALIBRATION_PAIRS` pairs, else the shipped calibration of the model (Eq. 3 with the
    shipped t and curve); the fold-wise fits again, named so, where none ships for this configuration of it."""
    out_of_fold = out_of_fold_name(own.dataset)
    if own.pairs >= MIN_CALIBRATION_PAIRS:
        return None, out_of_fold
    try:
        return usable_calibration(own, own.model, fingerprint)
    except NotFoundError:
        return None, (f"{out_of_fold}, only {own.pairs} pairs (fewer than {MIN_CALIBRATION_PAIRS}; "
                      f"no calibration ships for this configuration of {own.model})")


def verify_faces(model: EmbeddingModel, face1: PhotoFace, face2: PhotoFace, calibration: Calibration | None,
                 name: str, *, threshold: float | None = None, cache: EmbeddingCache | None = None,
                 variant: str | None = None) -> Verdict:
    """Embed the native crops (through ``cache`` if given), Eq. 1, and judge with ``calibration`` (named ``name``);
    a ``threshold`` of one's own replaces the calibration's, and then there is no C-Score (Eq. 3 belongs to the
    calibration's t); ``variant``: the C-Score variant (default: the calibration's default)."""
    if calibration is None and threshold is None:
        raise ValueError("verify_faces needs a calibration or a threshold.")
    if calibration is not None:
        calibration.check_variant(variant)
    wants_quality = variant in (None, "quality-aware")
    measure = calibration.quality if calibration is not None and threshold is None and wants_quality else None
    if measure is not None and not set(measure.measures) <= set(QUALITY_MEASURES):
        raise ValueError(f"The calibration's quality measures {list(measure.measures)} are not all known to this xfv "
                         f"({', '.join(QUALITY_MEASURES)}).")
    embeddings, quality = embed_native(model, [face1, face2], cache, measure.perturbations if measure else ())
    distance = float(cosine_distance(embeddings[0], embeddings[1]))
    if threshold is not None:
        t = float(threshold)
        return Verdict(model.name, distance, t, "same" if distance <= t else "different", None,
                       "none: threshold given, so no C-Score", model.engine)
    rated = None if quality is None else quality[:, [QUALITY_MEASURES.index(m) for m in measure.measures]]
    scored = calibration.score(np.array([distance]), *((None, None) if rated is None else (rated[:1], rated[1:])),
                               variant=variant)
    stability = None if quality is None else quality[:, QUALITY_MEASURES.index(STABILITY)]
    q1, q2 = (None, None) if stability is None else (float(stability[0]), float(stability[1]))
    confidence = float(scored.confidence[0])
    return Verdict(model.name, distance, float(calibration.threshold),
                   "same" if distance <= calibration.threshold else "different", confidence, name, model.engine,
                   scored.variant, q1, q2, None if rated is None else quality_note(measure, rated))


def quality_note(measure: QualityMeasure, rated: np.ndarray) -> str | None:
    """What a verdict says of the faces' qualities (``rated``: one row per face, one column per measure): which lie
    outside the ranges the calibration's quality-aware C-Score was fitted on (its confidence is then an
    extrapolation), or None."""
    parts = [f"face {i} {name} {value:.3f} ({'below' if value < low else 'above'} {low:.3f}-{high:.3f})"
             for i, row in enumerate(rated, start=1) for name, value, low, high in measure.outside(row)]
    if not parts:
        return None
    return (f"Quality outside what the calibration has seen: {'; '.join(parts)}, the ranges of the pairs it was "
            "fitted on; the confidence is an extrapolation.")
