"""Field calibration (method.md §1 step 5): a threshold and a C-Score curve fitted once on a whole validation
dataset for one model, kept as a versioned JSON file and applied to pairs without ground truth.

File format (``"format": "xfv-calibration"``, ``"version": 1``)::

    {"format": "xfv-calibration", "version": 1, "model": "dlib", "dataset": "lfw",
     "threshold": 0.07, "parameters": {"L": ..., "d0": ..., "k": ..., "b": ...},
     "options": {"n_bins": 400, "density": false, "fill_empty": false, "start": "auto", "maxfev": 2000},
     "date": "2026-11-28T00:00:00+00:00", "pairs": 6000, "genuine": 3000, "imposter": 3000,
     "accuracy": 0.99, "fingerprints": ["41f9bfb57008965a"], "xfv_version": "0.1.0"}

``fingerprints`` (optional): the model configurations the calibration holds for (``EmbeddingModel.fingerprint``:
its options and weights); a file without them holds for any model of its name. The shipped calibrations live in
``xfv/data/calibrations/<model>.json``.

``variants`` (optional, beyond the paper; files without it are read as before, and readers that do not know it
ignore it): other C-Scores of the same threshold, and which one applies by default::

    "variants": {"default": "quality-aware",
                 "continuous": {"parameters": {...}, "options": {...}},
                 "quality-aware": {"parameters": {...}, "quality": {"measures": ["stability", "sharpness"],
                                   "perturbations": [...], "seen": [[low, high], [low, high]]},
                                   "dataset": "...", "pairs": 6000}}

``continuous``: Eq. 2 fitted through ``c(t) = 0.5`` (:class:`~xfv.confidence.cscore.CScore` with
``continuous=True``); ``quality-aware``: :class:`~xfv.confidence.quality_aware.QualityAwareCScore`, with the
image quality measures it was fitted on and the range of each its fitting pairs spanned (``seen``: a photo outside
it is outside what the calibration has seen). The top-level ``parameters`` stay the paper's C-Score.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np

from xfv import __version__
from xfv.confidence.cscore import CScore, check_distances, check_pairs
from xfv.confidence.quality_aware import QualityAwareCScore
from xfv.verification import accuracy, best_threshold

FORMAT = "xfv-calibration"
FORMAT_VERSION = 1
_MODEL_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
PAPER, CONTINUOUS, QUALITY_AWARE = "paper", "continuous", "quality-aware"
VARIANTS = (PAPER, CONTINUOUS, QUALITY_AWARE)


@dataclass(frozen=True)
class QualityMeasure:
    """The image qualities a quality-aware curve was fitted on: ``measures`` in order (``stability``:
    xfv.quality.stability with ``perturbations``; ``sharpness``: xfv.quality.heuristic.sharpness_measure), and per
    measure the range ``seen`` of the fitting pairs' image qualities."""

    measures: tuple[str, ...]
    perturbations: tuple[str, ...]
    seen: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.measures or len(self.seen) != len(self.measures):
            raise ValueError(f"quality needs one 'seen' range per measure {list(self.measures)}, got {self.seen!r}.")
        if any(len(r) != 2 or not r[0] <= r[1] for r in self.seen):
            raise ValueError(f"quality 'seen' ranges must be [low, high], got {self.seen!r}.")

    def outside(self, qualities: np.ndarray) -> list[tuple[str, float, float, float]]:
        """The measures of one image (a value per measure) outside the range the calibration has seen:
        ``(measure, value, low, high)``."""
        values = np.atleast_1d(np.asarray(qualities, dtype=float))
        return [(name, float(v), low, high) for name, v, (low, high) in zip(self.measures, values, self.seen)
                if not low <= v <= high]

    def to_dict(self) -> dict:
        return {"measures": list(self.measures), "perturbations": list(self.perturbations),
                "seen": [list(r) for r in self.seen]}

    @classmethod
    def from_dict(cls, data: dict) -> QualityMeasure:
        return cls(tuple(str(m) for m in data["measures"]), tuple(str(p) for p in data["perturbations"]),
                   tuple(tuple(float(v) for v in r) for r in data["seen"]))

    @classmethod
    def of(cls, measures: tuple[str, ...], perturbations: tuple[str, ...], quality1: np.ndarray,
           quality2: np.ndarray) -> QualityMeasure:
        """The measures with the ranges their fitting pairs' images span (``(N, M)`` or ``(N,)`` qualities)."""
        images = np.concatenate([np.asarray(quality1, float).reshape(len(quality1), -1),
                                 np.asarray(quality2, float).reshape(len(quality2), -1)])
        return cls(tuple(measures), tuple(perturbations),
                   tuple((float(lo), float(hi)) for lo, hi in zip(images.min(0), images.max(0))))


@dataclass(frozen=True)
class Scored:
    """Confidences of some pairs and the name of the C-Score variant that gave them."""

    confidence: np.ndarray
    variant: str


@dataclass
class Calibration:
    """A model's threshold ``t`` and C-Score curve (Eq. 2) from one dataset; ``confidence`` applies Eq. 3."""

    model: str
    dataset: str
    threshold: float
    cscore: CScore
    pairs: int
    genuine: int
    imposter: int
    accuracy: float
    date: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    fingerprints: tuple[str, ...] = ()
    continuous: CScore | None = None  # Eq. 2 through c(t) = 0.5 (variant "continuous")
    quality_aware: QualityAwareCScore | None = None  # variant "quality-aware"
    quality: QualityMeasure | None = None  # what quality_aware was fitted on
    quality_dataset: str = ""  # and on which pairs
    quality_pairs: int = 0
    default_variant: str = PAPER

    @classmethod
    def fit(
        cls, distances: np.ndarray, labels: np.ndarray, *, model: str, dataset: str, fingerprint: str = "",
        **cscore_options
    ) -> Calibration:
        """``t`` maximises accuracy on all pairs; the C-Score curve is fitted on all pairs at that ``t``;
        ``fingerprint``: the model's, when the distances came from a model at hand."""
        for name, value in (("model", model), ("dataset", dataset)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty name, got {value!r}.")
        d, y = check_pairs(distances, labels)
        threshold = best_threshold(d, y)
        cscore = CScore(**cscore_options).fit(d, y, threshold)
        return cls(model, dataset, threshold, cscore, len(d), int(y.sum()), int(len(y) - y.sum()),
                   accuracy(d, y, threshold), fingerprints=(fingerprint,) if fingerprint else ())

    def holds_for(self, fingerprint: str) -> bool:
        """Whether the calibration applies to the model configuration ``fingerprint`` (any, if none recorded)."""
        return not self.fingerprints or fingerprint in self.fingerprints

    def confidence(self, distances: np.ndarray) -> np.ndarray:
        """Eq. 3 with this calibration's threshold and the paper's curve, in [0.5, 1]."""
        return self.cscore.confidence(distances)

    @property
    def variants(self) -> tuple[str, ...]:
        """The C-Score variants this calibration holds (the paper's always)."""
        return tuple(v for v, score in ((PAPER, self.cscore), (CONTINUOUS, self.continuous),
                                        (QUALITY_AWARE, self.quality_aware)) if score is not None)

    def check_variant(self, variant: str | None) -> None:
        """``ValueError`` unless ``variant`` is None (the default) or one this calibration holds."""
        if variant is not None and variant not in VARIANTS:
            raise ValueError(f"Unknown C-Score variant {variant!r}; expected one of {list(VARIANTS)}.")
        if variant is not None and variant not in self.variants:
            raise ValueError(f"The calibration of {self.model} on {self.dataset} has no {variant!r} C-Score; it has "
                             f"{list(self.variants)}.")

    def score(self, distances: np.ndarray, quality1: np.ndarray | None = None, quality2: np.ndarray | None = None,
              variant: str | None = None) -> Scored:
        """The confidence of the decisions ``d <= t`` by ``variant`` (default: the calibration's default). The
        quality-aware variant needs both images' qualities, ``(N, M)`` by :attr:`quality`'s measures (``(N,)`` for
        one); without them the default
        falls back to the continuous curve, else the paper's, and the returned name says which applied."""
        self.check_variant(variant)
        chosen = variant or self.default_variant
        has_quality = quality1 is not None and quality2 is not None
        if chosen == QUALITY_AWARE and not has_quality:
            if variant == QUALITY_AWARE:
                raise ValueError("The quality-aware C-Score needs the quality of both images.")
            chosen = CONTINUOUS if self.continuous is not None else PAPER
        if chosen == QUALITY_AWARE:
            return Scored(self.quality_aware.confidence(distances, quality1, quality2), QUALITY_AWARE)
        if chosen == CONTINUOUS:
            return Scored(self.continuous.confidence(distances), CONTINUOUS)
        return Scored(self.cscore.confidence(distances), PAPER)

    def with_variants(self, *, continuous: CScore | None = None, quality_aware: QualityAwareCScore | None = None,
                      quality: QualityMeasure | None = None, quality_dataset: str = "", quality_pairs: int = 0,
                      default: str | None = None) -> Calibration:
        """This calibration with the given variants added (their threshold must be this one's)."""
        for name, score in ((CONTINUOUS, continuous), (QUALITY_AWARE, quality_aware)):
            if score is not None and abs(score.threshold_ - self.threshold) > 1e-12:
                raise ValueError(f"The {name} C-Score was fitted at t = {score.threshold_}, not at this "
                                 f"calibration's t = {self.threshold}.")
        if (quality_aware is None) != (quality is None):
            raise ValueError("A quality-aware C-Score needs its quality measure, and only it has one.")
        added = Calibration(**{**self.__dict__, "continuous": continuous or self.continuous,
                               "quality_aware": quality_aware or self.quality_aware, "quality": quality or self.quality,
                               "quality_dataset": quality_dataset or self.quality_dataset,
                               "quality_pairs": quality_pairs or self.quality_pairs})
        default = default or added.default_variant
        if default not in added.variants:
            raise ValueError(f"default variant {default!r} is not among {list(added.variants)}.")
        added.default_variant = default
        return added

    def predictions(self, distances: np.ndarray) -> np.ndarray:
        """True (same person) where ``d <= threshold``."""
        return check_distances(np.atleast_1d(distances)) <= self.threshold

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "model": self.model,
            "dataset": self.dataset,
            "threshold": self.threshold,
            "parameters": self.cscore.parameters,
            "options": self.cscore.get_params(),
            "date": self.date,
            "pairs": self.pairs,
            "genuine": self.genuine,
            "imposter": self.imposter,
            "accuracy": self.accuracy,
            **({"fingerprints": list(self.fingerprints)} if self.fingerprints else {}),
            "xfv_version": __version__,
            **({"variants": self._variants_dict()} if len(self.variants) > 1 else {}),
        }

    def _variants_dict(self) -> dict:
        variants: dict = {"default": self.default_variant}
        if self.continuous is not None:
            variants[CONTINUOUS] = {"parameters": self.continuous.parameters, "options": self.continuous.get_params()}
        if self.quality_aware is not None:
            variants[QUALITY_AWARE] = {"parameters": self.quality_aware.parameters, "quality": self.quality.to_dict(),
                                       "dataset": self.quality_dataset, "pairs": self.quality_pairs}
        return variants

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: dict, source: str = "calibration") -> Calibration:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{source}: not an xfv calibration file (expected \"format\": {FORMAT!r}).")
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"{source}: unknown calibration format version {data.get('version')!r}; "
                             f"this xfv reads version {FORMAT_VERSION}.")
        required = {"model", "dataset", "threshold", "parameters", "options", "date", "pairs"}
        missing = required - set(data)
        if missing:
            raise ValueError(f"{source}: missing field(s) {sorted(missing)}.")
        fingerprints = data.get("fingerprints", [])
        if not isinstance(fingerprints, list) or not all(isinstance(f, str) and f for f in fingerprints):
            raise ValueError(f"{source}: fingerprints must be a list of model fingerprints (strings), "
                             f"got {fingerprints!r}.")
        try:
            cscore = CScore.from_parameters(data["parameters"], data["threshold"], **data["options"])
            calibration = cls(str(data["model"]), str(data["dataset"]), cscore.threshold_, cscore, int(data["pairs"]),
                              int(data.get("genuine", 0)), int(data.get("imposter", 0)),
                              float(data.get("accuracy", float("nan"))), str(data["date"]), tuple(fingerprints))
            return _read_variants(calibration, data.get("variants"))
        except (TypeError, ValueError, KeyError) as error:
            raise ValueError(f"{source}: bad calibration: {error}") from None


def _read_variants(calibration: Calibration, variants: dict | None) -> Calibration:
    if variants is None:
        return calibration
    if not isinstance(variants, dict):
        raise TypeError(f"variants must be an object, got {variants!r}")
    unknown = set(variants) - {"default", CONTINUOUS, QUALITY_AWARE}
    if unknown:
        raise ValueError(f"unknown C-Score variant(s) {sorted(unknown)}; this xfv knows {list(VARIANTS)}")
    t = calibration.threshold
    continuous = quality_aware = quality = None
    if CONTINUOUS in variants:
        entry = variants[CONTINUOUS]
        continuous = CScore.from_parameters(entry["parameters"], t, **entry["options"])
    extra: dict = {}
    if QUALITY_AWARE in variants:
        entry = variants[QUALITY_AWARE]
        quality_aware = QualityAwareCScore.from_parameters(entry["parameters"], t)
        quality = QualityMeasure.from_dict(entry["quality"])
        extra = {"quality_dataset": str(entry.get("dataset", "")), "quality_pairs": int(entry.get("pairs", 0))}
    return calibration.with_variants(continuous=continuous, quality_aware=quality_aware, quality=quality,
                                     default=str(variants.get("default", PAPER)), **extra)


def load_calibration(path: str | Path) -> Calibration:
    """Read a calibration file; ``ValueError`` for a file that is not one or has an unknown version."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Calibration file {str(path)!r} not found.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error}).") from None
    return Calibration.from_dict(data, source=str(path))


def default_calibration(model_name: str) -> Calibration | None:
    """The calibration shipped with xfv for ``model_name`` (``xfv/data/calibrations/<model>.json``), or None."""
    if not isinstance(model_name, str) or not _MODEL_FILE_NAME.match(model_name):
        return None
    resource = resources.files("xfv") / "data" / "calibrations" / f"{model_name}.json"
    if not resource.is_file():
        return None
    return Calibration.from_dict(json.loads(resource.read_text(encoding="utf-8")), source=f"xfv:{model_name}.json")
