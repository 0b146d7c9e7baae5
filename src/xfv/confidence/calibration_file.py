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
from xfv.verification import accuracy, best_threshold

FORMAT = "xfv-calibration"
FORMAT_VERSION = 1
_MODEL_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


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
        """Eq. 3 with this calibration's threshold and curve, in [0.5, 1]."""
        return self.cscore.confidence(distances)

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
        }

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
            return cls(str(data["model"]), str(data["dataset"]), cscore.threshold_, cscore, int(data["pairs"]),
                       int(data.get("genuine", 0)), int(data.get("imposter", 0)),
                       float(data.get("accuracy", float("nan"))), str(data["date"]), tuple(fingerprints))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{source}: bad calibration: {error}") from None


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
