"""The X-Maps of uploads while they are computed: the latest version of each map, in memory only.

An upload's X-Map task publishes every explanation of :meth:`~xfv.xmaps.XMapExplainer.stream` here (method 4
fitted on more and more masks, then methods 1-3 patch size by patch size); the map routes serve the latest one
until the final maps are in the database. Memory is bounded: one entry per running upload task (the task pool
bounds those), holding the latest version of each map only, dropped when the task ends (done, failed, cancelled)
or the upload is deleted. Nothing here is written anywhere.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from xfv.xmaps import Explanation
from xfv.xmaps.explainer import FINAL

MapKey = tuple[int, int, int]  # method, image, scale (0: the final multi-scale map)


@dataclass(frozen=True)
class Progress:
    """An upload's maps so far: ``maps[(method, image, scale)]``, ``stages[method]`` (:data:`FINAL` once the
    method's map is complete) and when the computation started (monotonic seconds)."""

    started: float
    maps: dict[MapKey, np.ndarray] = field(default_factory=dict)
    stages: dict[int, str] = field(default_factory=dict)


def eta_seconds(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the rate so far (``done`` of ``total`` passes in ``elapsed`` s); None before any pass."""
    if done <= 0 or total <= 0 or elapsed <= 0:
        return None
    return max(0.0, (total - done) * elapsed / done)


class PartialMaps:
    """The latest maps of each upload being explained (see the module docstring)."""

    def __init__(self) -> None:
        self._uploads: dict[str, Progress] = {}
        self._lock = threading.Lock()

    def start(self, upload_id: str) -> None:
        with self._lock:
            self._uploads[upload_id] = Progress(started=time.monotonic())

    def publish(self, upload_id: str, explanation: Explanation) -> None:
        """Replace the upload's maps by those of ``explanation`` (a stream's partial or final one)."""
        maps = {(m, i, 0): explanation.map(m, i) for m in explanation.maps for i in (1, 2)}
        maps |= {(m, i, p): explanation.scale_map(m, i, p) for m in explanation.maps for i in (1, 2)
                 for p in explanation.scale_maps[m]}
        with self._lock:
            if upload_id in self._uploads:  # not after the upload was dropped (deleted, its task ended)
                started = self._uploads[upload_id].started
                self._uploads[upload_id] = Progress(started, maps, dict(explanation.stages))

    def get(self, upload_id: str) -> Progress | None:
        with self._lock:
            return self._uploads.get(upload_id)

    def latest(self, upload_id: str, method: int, image: int, scale: int = 0) -> tuple[np.ndarray, str] | None:
        """The latest version of one map and its method's stage, or None if there is none in memory."""
        progress = self.get(upload_id)
        if progress is None or (method, image, scale) not in progress.maps:
            return None
        return progress.maps[method, image, scale], progress.stages[method]

    def drop(self, upload_id: str | None) -> None:
        with self._lock:
            self._uploads.pop(upload_id, None)  # type: ignore[arg-type]

    def __len__(self) -> int:
        with self._lock:
            return len(self._uploads)


def map_state(stage: str) -> str:
    """``final`` or ``partial``, from a method's stage."""
    return "final" if stage == FINAL else "partial"
