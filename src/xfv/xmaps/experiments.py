"""The paper's X-Map experiments (method.md §5): cut-and-paste (Sec. 4.3) and sensitivity (Sec. 4.4, Fig. 6).

Cut-and-paste regions are boxes around landmarks of the model's alignment template on the 112 x 112 crop:

- ``arcface``: the ArcFace 5-point template (eye centres, mouth corners).
- ``dlib``: dlib's face chip (padding 0.25) has no published landmark template; the points below were measured
  by mapping dlib's 68 landmarks of 40 LFW faces (every 150th pair's first image) into their 112 px chips and
  averaging (eye centres = mean of points 36-41 / 42-47, mouth corners = points 48 / 54; spread about 3 px).

With ``iod`` the distance between the eye centres: an eye box is ``0.6 iod x 0.4 iod`` around the eye centre,
``eyes`` spans both eye boxes, ``eye_mouth`` is the image-left eye's box plus the mouth box (corners widened
by ``0.15 iod`` each side, ``0.5 iod`` high around the corners' height), ``half`` is the image's left half, up
to the midpoint between the eyes.

The experiment's premise is that the pasted region makes the composite more similar to face 2. Each case also
records the model's own answer, the pair's distance before and after the paste: a faithful map can only mark the
region as similar to the extent the model treats it so, and the summary reports the scores separately for the
cases where the paste lowered the distance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import rankdata, spearmanr

from xfv.verification import cosine_distance
from xfv.xmaps.explainer import Explanation, PeerDesign, XMapExplainer, check_face, check_methods
from xfv.xmaps.faithfulness import check_budgets, explainer_maps
from xfv.xmaps.methods import METHODS
from xfv.xmaps.occlusion import IMAGE_SIZE, OcclusionConfig

REGIONS = ("eyes", "half", "eye_mouth")
RESPONSIVE = 0.05  # a paste that lowered the pair's distance by more than this: the model responded to it
# How far a paste lowered the pair's distance (before - after): bands (name, low, high], for the summary.
PASTE_EFFECT_BANDS = (
    ("none or negative", -np.inf, 0.0),
    ("up to 0.02", 0.0, 0.02),
    ("0.02 to 0.05", 0.02, RESPONSIVE),
    ("over 0.05", RESPONSIVE, np.inf),
)

# (left eye, right eye, left mouth corner, right mouth corner) as (x, y) on the 112 crop; "left" = image left.
TEMPLATE_POINTS = {
    "arcface": np.array([[38.29, 51.70], [73.53, 51.50], [41.55, 92.37], [70.73, 92.20]]),
    "dlib": np.array([[35.57, 34.84], [75.00, 34.89], [37.73, 77.80], [73.94, 77.92]]),
}

SENSITIVITY_VARIANTS: dict[str, dict[str, OcclusionConfig]] = {
    "patch size": {
        "7": OcclusionConfig(patch_sizes=(7,)),
        "14": OcclusionConfig(patch_sizes=(14,)),
        "28": OcclusionConfig(patch_sizes=(28,)),
        "7+14+28": OcclusionConfig(),
    },
    "edge": {
        "sharp": OcclusionConfig(),
        "soft 7": OcclusionConfig(soft_edge=7),
        "soft 14": OcclusionConfig(soft_edge=14),
        "soft 56": OcclusionConfig(soft_edge=56),
    },
    "colour": {
        "black": OcclusionConfig(),
        "gray": OcclusionConfig(color="gray"),
        "white": OcclusionConfig(color="white"),
        "noise": OcclusionConfig(color="noise"),
    },
    "shape": {"square": OcclusionConfig(), "round": OcclusionConfig(shape="round")},
}


def _box(mask: np.ndarray, centre_x: float, centre_y: float, half_width: float, half_height: float) -> None:
    x0, x1 = round(centre_x - half_width), round(centre_x + half_width)
    y0, y1 = round(centre_y - half_height), round(centre_y + half_height)
    mask[max(y0, 0) : min(y1, IMAGE_SIZE), max(x0, 0) : min(x1, IMAGE_SIZE)] = True


def region_mask(region: str, alignment: str) -> np.ndarray:
    """The pasted region on the 112 crop of ``alignment``'s template: ``bool (112, 112)``."""
    if region not in REGIONS:
        raise ValueError(f"region must be one of {REGIONS}, got {region!r}.")
    if alignment not in TEMPLATE_POINTS:
        raise ValueError(
            f"Cut-and-paste regions need a face template; alignment {alignment!r} has none "
            f"(expected one of {sorted(TEMPLATE_POINTS)})."
        )
    left_eye, right_eye, mouth_left, mouth_right = TEMPLATE_POINTS[alignment]
    iod = float(np.linalg.norm(right_eye - left_eye))
    mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    if region == "eyes":
        centre = (left_eye + right_eye) / 2
        _box(mask, centre[0], centre[1], (right_eye[0] - left_eye[0]) / 2 + 0.3 * iod, 0.2 * iod)
    elif region == "half":
        mask[:, : round((left_eye[0] + right_eye[0]) / 2)] = True
    else:
        _box(mask, left_eye[0], left_eye[1], 0.3 * iod, 0.2 * iod)
        centre = (mouth_left + mouth_right) / 2
        _box(mask, centre[0], centre[1], (mouth_right[0] - mouth_left[0]) / 2 + 0.15 * iod, 0.25 * iod)
    return mask


def paste(face1: np.ndarray, face2: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Face 1 with the ``mask`` region copied from face 2 at the same place."""
    face1, face2 = check_face(face1, "face1"), check_face(face2, "face2")
    composite = face1.copy()
    composite[mask] = face2[mask]
    return composite


def pixel_auc(scores: np.ndarray, mask: np.ndarray) -> float:
    """ROC-AUC of the map's pixels with the region as the positive class (Mann-Whitney U, ties count 1/2)."""
    scores, mask = np.ravel(scores), np.ravel(mask).astype(bool)
    positives, negatives = int(mask.sum()), int((~mask).sum())
    if positives == 0 or negatives == 0:
        raise ValueError(f"The region must cover some but not all pixels, got {positives} of {mask.size}.")
    ranks = rankdata(scores)
    return float((ranks[mask].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dataclass(frozen=True)
class CutPasteRecord:
    """One pair, region and method: the composite's (image 1's) map inside and outside the pasted region."""

    pair: int
    region: str
    method: int | str  # a method's number, or a name: method 4 on a budget, a peer
    inside: float
    outside: float
    auc: float
    distance_before: float  # face 1 and face 2
    distance_after: float  # the composite and face 2

    @property
    def paste_lowers_distance(self) -> bool:
        """The model's side of the premise: the pasted region brought the composite closer to face 2."""
        return self.distance_after < self.distance_before


@dataclass(frozen=True)
class CutPasteExample:
    pair: int
    region: str
    explanation: Explanation
    mask: np.ndarray


@dataclass
class CutPasteResult:
    records: list[CutPasteRecord]
    examples: list[CutPasteExample]

    def summary(self) -> dict:
        """Per method (and region): cases, mean inside / outside, share inside > outside, mean pixel AUC, and the
        same over the cases whose paste lowered the distance; per region: how often the paste lowered it."""
        cases = list({(r.pair, r.region): r for r in self.records}.values())
        return {
            "pairs": len({r.pair for r in self.records}),
            "paste_lowers_distance": _with_regions(_paste_response, cases),
            "methods": {
                str(method): _with_regions(_summarise, [r for r in self.records if r.method == method])
                for method in dict.fromkeys(r.method for r in self.records)
            },
        }

    def rows(self) -> list[dict]:
        return [asdict(r) for r in self.records]


def _with_regions(summarise: Callable[[list[CutPasteRecord]], dict], rows: list[CutPasteRecord]) -> dict:
    """``summarise`` over all ``rows``, and under ``"regions"`` over each region's rows."""
    return summarise(rows) | {
        "regions": {
            region: summarise([r for r in rows if r.region == region])
            for region in REGIONS
            if any(r.region == region for r in rows)
        }
    }


def _paste_response(cases: list[CutPasteRecord]) -> dict:
    """How the model took the pastes: share that lowered the distance, mean distance before and after."""
    return {
        "cases": len(cases),
        "share": float(np.mean([r.paste_lowers_distance for r in cases])),
        "distance_before_mean": float(np.mean([r.distance_before for r in cases])),
        "distance_after_mean": float(np.mean([r.distance_after for r in cases])),
    }


def _summarise(rows: list[CutPasteRecord]) -> dict:
    """Per case (pair and region) and per pair (found in every region case of the pair), then the same over the
    cases the model responded to (``responsive``: the paste lowered the distance by more than
    :data:`RESPONSIVE`, the headline), over those whose paste lowered the distance at all (``where_paste_helps``)
    and per band of the paste's effect on the distance (``by_paste_effect``, bands :data:`PASTE_EFFECT_BANDS`;
    ``None`` for an empty selection), and the Spearman correlation of the effect and the pixel AUC (``None`` when
    either is constant)."""
    effects = [r.distance_before - r.distance_after for r in rows]
    bands = {}
    for name, low, high in PASTE_EFFECT_BANDS:
        chosen = [r for r, effect in zip(rows, effects) if low < effect <= high]
        bands[name] = _scores(chosen) if chosen else None
    helped = [r for r in rows if r.paste_lowers_distance]
    responsive = [r for r, effect in zip(rows, effects) if effect > RESPONSIVE]
    constant = len(set(effects)) < 2 or len({r.auc for r in rows}) < 2
    return _scores(rows) | {
        "responsive": _scores(responsive) if responsive else None,
        "where_paste_helps": _scores(helped) if helped else None,
        "by_paste_effect": bands,
        "auc_effect_spearman": None if constant else float(spearmanr(effects, [r.auc for r in rows])[0]),
    }


def _scores(rows: list[CutPasteRecord]) -> dict:
    pairs = sorted({r.pair for r in rows})
    return {
        "cases": len(rows),
        "inside_mean": float(np.mean([r.inside for r in rows])),
        "outside_mean": float(np.mean([r.outside for r in rows])),
        "inside_above_outside": float(np.mean([r.inside > r.outside for r in rows])),
        "pairs_found_in_every_region": float(
            np.mean([all(r.inside > r.outside for r in rows if r.pair == pair) for pair in pairs])
        ),
        "auc_mean": float(np.mean([r.auc for r in rows])),
    }


def cut_paste_experiment(
    explainer: XMapExplainer,
    pairs: Iterable[tuple[int, np.ndarray, np.ndarray]],
    alignment: str,
    *,
    regions: Iterable[str] = REGIONS,
    methods: Iterable[int] = METHODS,
    peers: Mapping[str, PeerDesign] | None = None,
    budgets: Iterable[int] = (),
    examples: int = 6,
    progress: Callable[[int, str], None] | None = None,
) -> CutPasteResult:
    """Section 4.3 on imposter pairs ``(index, face1, face2)``: paste each region of face 2 into face 1,
    explain ``(composite, face 2)`` and score the composite's map against the region, for every method (by
    number), method 4 on the first ``budgets`` masks and every peer (by name, :mod:`xfv.xmaps.peers`).

    Keeps the first ``examples`` cases (their explanations of ``methods``) for figures.
    """
    masks = {region: region_mask(region, alignment) for region in regions}
    methods = check_methods(methods)
    peers = dict(peers or {})
    budgets = check_budgets(budgets, explainer.coalitions.masks, methods)
    records: list[CutPasteRecord] = []
    kept: list[CutPasteExample] = []
    for index, face1, face2 in pairs:
        distance_before = float(cosine_distance(*explainer.model.embed(np.stack([face1, face2]))))
        for region, mask in masks.items():
            if progress is not None:
                progress(index, region)
            composite = paste(face1, face2, mask)
            maps, explanation = explainer_maps(explainer, composite, face2, methods=methods, peers=peers,
                                               budgets=budgets)
            for name, (values, _) in maps.items():
                records.append(
                    CutPasteRecord(
                        pair=index,
                        region=region,
                        method=name,
                        inside=float(values[mask].mean()),
                        outside=float(values[~mask].mean()),
                        auc=pixel_auc(values, mask),
                        distance_before=distance_before,
                        distance_after=explanation.distance,
                    )
                )
            if len(kept) < examples:
                kept.append(CutPasteExample(index, region, explanation, mask))
    if not records:
        raise ValueError("No pairs were given to the cut-and-paste experiment.")
    return CutPasteResult(records, kept)


def sensitivity_experiment(
    explainer: XMapExplainer,
    face1: np.ndarray,
    face2: np.ndarray,
    *,
    method: int = 3,
    variants: dict[str, dict[str, OcclusionConfig]] = SENSITIVITY_VARIANTS,
    progress: Callable[[str, str], None] | None = None,
) -> dict[str, dict[str, Explanation]]:
    """Section 4.4 / Fig. 6: the pair's X-Maps under each occlusion variant, grouped as in ``variants``.

    Runs through copies of ``explainer`` with the variant's occlusion (model, batch size and cache shared);
    a configuration that appears in several groups is explained once, and with a cache the variants that
    share a patch size's occlusions embed them once.
    """
    done: dict[OcclusionConfig, Explanation] = {}
    results: dict[str, dict[str, Explanation]] = {}
    for group, configs in variants.items():
        results[group] = {}
        for name, occlusion in configs.items():
            if occlusion not in done:
                if progress is not None:
                    progress(group, name)
                variant = XMapExplainer(
                    explainer.model,
                    occlusion=occlusion,
                    batch_size=explainer.batch_size,
                    cache=explainer.cache,
                )
                done[occlusion] = variant.explain(face1, face2, methods=(method,))
            results[group][name] = done[occlusion]
    return results
