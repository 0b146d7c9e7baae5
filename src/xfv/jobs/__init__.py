"""Jobs: long-running work over datasets (embedding, evaluation, ingest, precompute) with progress.

The names in ``__all__`` are the public interface for the layers above (``xfv.web``, ``xfv.cli``). They load on
first use, so that ``xfv verify`` and the other photo commands do not import the database layer.
"""

from __future__ import annotations

import importlib

_PUBLIC = {"aligned_face": "xfv.jobs.explain", "explain_pair": "xfv.jobs.explain",
           "make_explainer": "xfv.jobs.explain", "measure_rate": "xfv.jobs.explain", "job_rate": "xfv.jobs.explain",
           "passes_per_face": "xfv.jobs.explain", "record_rate": "xfv.jobs.explain",
           "calibration_quality": "xfv.jobs.quality", "fold_fits": "xfv.jobs.quality", "FoldFit": "xfv.jobs.quality",
           "CalibrationQuality": "xfv.jobs.quality", "POOR_ECE": "xfv.jobs.quality",
           **{name: "xfv.jobs.verify" for name in (
               "MIN_CALIBRATION_PAIRS", "PhotoFace", "Verdict", "is_shipped", "out_of_fold_name", "photo_detector",
               "photo_face", "shipped_calibration", "usable_calibration", "verify_faces")}}
__all__ = [
    "MIN_CALIBRATION_PAIRS",
    "POOR_ECE",
    "CalibrationQuality",
    "FoldFit",
    "PhotoFace",
    "Verdict",
    "aligned_face",
    "calibration_quality",
    "explain_pair",
    "fold_fits",
    "is_shipped",
    "job_rate",
    "make_explainer",
    "measure_rate",
    "out_of_fold_name",
    "passes_per_face",
    "photo_detector",
    "photo_face",
    "record_rate",
    "shipped_calibration",
    "usable_calibration",
    "verify_faces",
]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'xfv.jobs' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
