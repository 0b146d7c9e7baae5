"""Confidence of a verification decision: the C-Score (Eq. 2, Eq. 3), field calibrations and calibration
metrics (method.md §1). Baselines (``xfv.confidence.baselines``, scikit-learn) and figures
(``xfv.confidence.plots``, matplotlib) are imported on their own, so that applying a calibration stays light."""

from xfv.confidence.calibration_file import Calibration, default_calibration, load_calibration
from xfv.confidence.cscore import CScore, FitError, bin_ratios, logistic
from xfv.confidence.metrics import ECE_BINS, brier_score, calibration_curve, expected_calibration_error
from xfv.confidence.quality_aware import confidence_reading

__all__ = [
    "ECE_BINS",
    "CScore",
    "Calibration",
    "FitError",
    "bin_ratios",
    "brier_score",
    "calibration_curve",
    "confidence_reading",
    "default_calibration",
    "expected_calibration_error",
    "load_calibration",
    "logistic",
]
