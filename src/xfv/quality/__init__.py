"""Face image quality: the model's embedding stability (:mod:`xfv.quality.stability`), the image statistics
(:mod:`xfv.quality.heuristic`) and the error-versus-discard curve that compares quality scores
(:mod:`xfv.quality.edc`); docs/quality.md."""

from xfv.quality.heuristic import SHARPNESS
from xfv.quality.stability import MEASURE as STABILITY

QUALITY_MEASURES = (STABILITY, SHARPNESS)  # what the quality-aware C-Score reads, in this order (docs/quality.md)

__all__ = ["QUALITY_MEASURES", "SHARPNESS", "STABILITY"]
