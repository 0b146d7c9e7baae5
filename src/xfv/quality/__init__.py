"""Face image quality: the model's embedding stability (:mod:`xfv.quality.stability`), the image statistics
(:mod:`xfv.quality.heuristic`), a face's rating by both from the model's own crop (:mod:`xfv.quality.rating`) and
the error-versus-discard curve that compares quality scores (:mod:`xfv.quality.edc`); docs/quality.md."""

from xfv.quality.heuristic import SHARPNESS
from xfv.quality.rating import QUALITY_MEASURES
from xfv.quality.stability import MEASURE as STABILITY

__all__ = ["QUALITY_MEASURES", "SHARPNESS", "STABILITY"]
