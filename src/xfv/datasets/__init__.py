"""Pair lists of face-verification benchmarks (LFW, CALFW, CPLFW, SLLFW, XQLFW) and the user's own CSV."""

from xfv.datasets.pairs import DATASET_FORMATS, Pair, PairList, read_pairs

__all__ = ["DATASET_FORMATS", "Pair", "PairList", "read_pairs"]
