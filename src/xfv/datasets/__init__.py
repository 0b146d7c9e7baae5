"""Pair lists of face-verification benchmarks (LFW, CALFW, CPLFW, SLLFW, XQLFW) and the user's own CSV."""

from xfv.datasets.pairs import Pair, PairList, read_pairs, DATASET_FORMATS

__all__ = ["Pair", "PairList", "read_pairs", "DATASET_FORMATS"]
