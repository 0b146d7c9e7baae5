"""Converted model files in the cache: made once, named after their source's sha256, checked by a JSON sidecar.

Used for dlib's ResNet converted to ONNX (:mod:`xfv.models.dlib_onnx`) and for ONNX files prepared to run as
they come (:mod:`xfv.models.onnx_graph`). The sidecar records the converted file's sha256, the source's sha256
and the converter version; a missing or mismatching file is converted again. Writes are atomic and guarded by
a file lock, so concurrent processes and interrupted runs are safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from xfv.files import default_cache_dir


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _is_valid(path: Path, meta_path: Path, source_sha256: str, version: str) -> bool:
    try:
        meta = json.loads(meta_path.read_text())
        return (
            meta.get("converter_version") == version
            and meta.get("source_sha256") == source_sha256
            and meta.get("onnx_sha256") == sha256(path.read_bytes())
        )
    except (OSError, ValueError):
        return False


def cached_conversion(
    data: bytes, convert: Callable[[bytes], bytes], *, prefix: str, version: str, source: str,
    cache_dir: Path | None = None, meta: dict | None = None,
) -> Path:
    """The file ``convert(data)`` as ``<cache_dir>/<prefix>-<sha256 of data>.onnx``, converted on first use.

    ``cache_dir`` defaults to the xfv cache's ``models`` folder; ``meta`` adds fields to the sidecar.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "models"
    source_sha256 = sha256(data)
    path = cache_dir / f"{prefix}-{source_sha256}.onnx"
    meta_path = cache_dir / f"{prefix}-{source_sha256}.json"
    if _is_valid(path, meta_path, source_sha256, version):
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / f"{prefix}-{source_sha256}.lock")):
        if _is_valid(path, meta_path, source_sha256, version):
            return path
        converted = convert(data)
        write_atomic(path, converted)
        sidecar = {"onnx_sha256": sha256(converted), "source_sha256": source_sha256, "source": source,
                   "converter_version": version, **(meta or {})}
        write_atomic(meta_path, json.dumps(sidecar, indent=2).encode())
    return path
