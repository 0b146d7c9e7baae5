"""X-Maps: occlusion-based explanations of a face-verification decision (method.md §2-§5)."""

from xfv.xmaps.blend import blend, colorize
from xfv.xmaps.cache import OcclusionCache
from xfv.xmaps.coalitions import DEFAULT_MASKS, CoalitionDesign
from xfv.xmaps.explainer import Explanation, Progress, XMapExplainer
from xfv.xmaps.methods import DEFAULT_METHOD, DESCRIPTIONS, METHODS, PATCH_METHODS
from xfv.xmaps.occlusion import IMAGE_SIZE, OcclusionConfig

__all__ = [
    "DEFAULT_MASKS",
    "DEFAULT_METHOD",
    "DESCRIPTIONS",
    "IMAGE_SIZE",
    "METHODS",
    "PATCH_METHODS",
    "CoalitionDesign",
    "Explanation",
    "OcclusionCache",
    "OcclusionConfig",
    "Progress",
    "XMapExplainer",
    "blend",
    "colorize",
]
