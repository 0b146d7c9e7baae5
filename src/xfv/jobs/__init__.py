"""Jobs: long-running work over datasets (embedding, evaluation, ingest, precompute) with progress.

The names in ``__all__`` are the public interface for the layers above (``xfv.web``, ``xfv.cli``). They load on
first use, so that ``xfv verify`` and the other photo commands do not import the database layer.
"""

from __future__ import annotations

import importlib

_PUBLIC = {"aligned_face": "xfv.jobs.explain", "explain_pair": "xfv.jobs.explain",
           "make_explainer": "xfv.jobs.explain"}
__all__ = ["aligned_face", "explain_pair", "make_explainer"]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'xfv.jobs' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
