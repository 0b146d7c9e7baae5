"""Files of xfv's own: where they live, how they are written so that no reader sees half of one, and the
self-checking entries of the caches (embeddings in :mod:`xfv.store.cache`, occlusions in :mod:`xfv.xmaps.cache`)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import platformdirs


def default_cache_dir() -> Path:
    """``$XFV_CACHE_DIR`` if set, else the user's cache directory for xfv (embeddings, X-Map occlusions, models)."""
    return Path(os.environ.get("XFV_CACHE_DIR") or platformdirs.user_cache_dir("xfv"))


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

    An interrupted write leaves no partial file, and two processes writing the same path both leave a complete one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


ENTRY_MAGIC = b"xfv-cache-entry 1\n"


class CacheEntryWarning(UserWarning):
    """A cache entry was misplaced, damaged or unreadable; it is recomputed."""


class BadEntry(Exception):
    """Why a cache entry cannot be used (internal to :class:`EntryCache`)."""


def encode_entry(key: str, array: np.ndarray) -> bytes:
    """A self-checking entry: a magic line, a JSON header line (key, dtype, shape, sha256 of the data), the data."""
    data = np.ascontiguousarray(array, dtype=np.float32)
    payload = data.tobytes()
    header = {"key": key, "dtype": data.dtype.str, "shape": list(data.shape),
              "sha256": hashlib.sha256(payload).hexdigest()}
    return ENTRY_MAGIC + json.dumps(header).encode() + b"\n" + payload


def decode_entry(blob: bytes, key: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """The ``float32`` array of an entry written by :func:`encode_entry` for ``key``, whose shape matches ``shape``
    (``None``: any length on that axis); :class:`BadEntry` saying why not."""
    if not blob.startswith(ENTRY_MAGIC):
        raise BadEntry("is not an xfv cache entry (damaged, or an older format)")
    head, _, payload = blob[len(ENTRY_MAGIC) :].partition(b"\n")
    try:
        header = json.loads(head)
        stored_key, dtype, stored_shape, checksum = (header[k] for k in ("key", "dtype", "shape", "sha256"))
    except (ValueError, TypeError, KeyError):
        raise BadEntry("has a damaged header") from None
    if stored_key != key:
        raise BadEntry(f"belongs to another key ({stored_key!r}, expected {key!r}): a misplaced file")
    if dtype != np.dtype(np.float32).str or not isinstance(stored_shape, list) or len(stored_shape) != len(shape) \
            or any(want is not None and got != want for got, want in zip(stored_shape, shape)):
        raise BadEntry(f"has dtype {dtype} and shape {stored_shape}, expected float32 {list(shape)}")
    if len(payload) != 4 * int(np.prod(stored_shape)) or hashlib.sha256(payload).hexdigest() != checksum:
        raise BadEntry("fails its checksum (truncated or corrupt)")
    array = np.frombuffer(payload, dtype=np.float32).reshape(stored_shape)
    if not np.isfinite(array).all():
        raise BadEntry("holds non-finite values")
    return array


class EntryCache:
    """Arrays on disk, one self-checking file per key (:func:`encode_entry`), shared by xfv's caches.

    ``get`` returns the array, or None for a miss; an entry that cannot be used (misplaced, corrupt, wrong shape,
    non-finite, a directory, unreadable) is a miss too, reported by a :class:`CacheEntryWarning` naming its path,
    and ``put`` then replaces it (atomically: :func:`atomic_write`). A directory in an entry's place is reported
    and left alone.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        name = hashlib.sha256(key.encode()).hexdigest()
        return self.directory / name[:2] / f"{name}.entry"

    def get(self, key: str, shape: tuple[int | None, ...]) -> np.ndarray | None:
        path = self.path(key)
        try:
            return decode_entry(path.read_bytes(), key, shape)
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            reason = "is a directory; remove it to cache this entry again"
        except OSError as error:
            reason = f"cannot be read ({error.strerror or error})"
        except BadEntry as error:
            reason = str(error)
        warnings.warn(f"Cache entry {path} {reason}; recomputing it.", CacheEntryWarning, stacklevel=2)
        return None

    def put(self, key: str, array: np.ndarray) -> None:
        path = self.path(key)
        if not path.is_dir():
            atomic_write(path, encode_entry(key, array))
