"""Files of xfv's own: where they live, and how they are written so that no reader sees half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import platformdirs


def default_cache_dir() -> Path:
    """``$XFV_CACHE_DIR`` if set, else the user's cache directory for xfv (embeddings, X-Map occlusions, models)."""
    return Path(os.environ.get("XFV_CACHE_DIR") or platformdirs.user_cache_dir("xfv"))


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

    An interrupted write leaves no partial file, and two processes writing the same path both leave a complete one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, array, allow_pickle=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
