"""Downloading benchmark data with checksum verification (``xfv data download lfw``).

Files are streamed to ``<name>.part`` and moved into place only after their MD5 matches the published value,
so an interrupted or corrupted download never passes for a complete one. Archives are unpacked with
tarfile's ``data`` filter (no absolute paths, no links out of the destination).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm


@dataclass(frozen=True)
class RemoteFile:
    name: str
    md5: str
    extract: bool = False  # a .tgz to unpack into the destination


LFW_BASE_URL = "http://vis-www.cs.umass.edu/lfw/"
REMOTE_DATASETS: dict[str, tuple[str, str, list[RemoteFile]]] = {
    # name: (base URL, dataset root inside the destination, files). MD5s as published with LFW and checked by
    # torchvision's LFW datasets.
    "lfw": (LFW_BASE_URL, "lfw-deepfunneled", [
        RemoteFile("lfw-deepfunneled.tgz", "68331da3eb755a505a502b5aacb3c201", extract=True),
        RemoteFile("pairs.txt", "9f1ba174e4e1c508ff7cdf10ac338a7d"),
    ]),
}


def md5_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def fetch(url: str, target: Path, md5: str, progress: bool = False, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target`` unless a file with the right MD5 is already there."""
    if target.is_file() and md5_of(target) == md5:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=not progress) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise ValueError(f"Could not download {url}: {error}") from None
    actual = md5_of(partial)
    if actual != md5:
        partial.unlink(missing_ok=True)
        raise ValueError(f"Checksum mismatch for {url}: expected MD5 {md5}, got {actual}; the file was discarded.")
    os.replace(partial, target)
    return target


def download_files(files: list[RemoteFile], base_url: str, dest: Path, root_name: str, progress: bool = False) -> Path:
    """Fetch and verify ``files`` from ``base_url`` into ``dest``; returns the dataset root ``dest/root_name``."""
    dest = Path(dest)
    root = dest / root_name
    for remote in files:
        target = fetch(base_url.rstrip("/") + "/" + remote.name, dest / remote.name, remote.md5, progress)
        if remote.extract:
            with tarfile.open(target) as archive:
                archive.extractall(dest, filter="data")
        else:
            root.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, root / remote.name)
    return root


def download_dataset(name: str, dest: str | Path, base_url: str | None = None, progress: bool = False) -> Path:
    """Download a known dataset (see :data:`REMOTE_DATASETS`); ``base_url`` overrides the official mirror."""
    if name not in REMOTE_DATASETS:
        raise ValueError(f"No download is known for dataset {name!r}; expected one of {sorted(REMOTE_DATASETS)}.")
    default_url, root_name, files = REMOTE_DATASETS[name]
    return download_files(files, base_url or default_url, Path(dest), root_name, progress)
