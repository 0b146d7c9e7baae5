"""The X-Maps of running X-Map tasks (uploads and stored pairs): the latest version of each map, in memory only.

An X-Map task publishes every explanation of :meth:`~xfv.xmaps.XMapExplainer.stream` here under its task key
(``upload:<id>``, ``pair:<id>:<model>``): method 4 fitted on more and more masks, then methods 1-3 patch size by
patch size; the map routes serve the latest one until the final maps are in the database. Memory is bounded: one
entry per running task (the task pool bounds those), holding the latest version of each map only, dropped when the
task ends (done, failed, cancelled) or its upload is deleted. Nothing here is written anywhere.
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
    """A task's maps so far: ``maps[(method, image, scale)]``, ``stages[method]`` (:data:`FINAL` once the
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
    """The latest maps of each running X-Map task, by task key (see the module docstring)."""

    def __init__(self) -> None:
        self._tasks: dict[str, Progress] = {}  # by task key
        self._lock = threading.Lock()

    def start(self, key: str) -> None:
        with self._lock:
            self._tasks[key] = Progress(started=time.monotonic())

    def publish(self, key: str, explanation: Explanation) -> None:
        """Replace the task's maps by those of ``explanation`` (a stream's partial or final one)."""
        maps = {(m, i, 0): explanation.map(m, i) for m in explanation.maps for i in (1, 2)}
        maps |= {(m, i, p): explanation.scale_map(m, i, p) for m in explanation.maps for i in (1, 2)
                 for p in explanation.scale_maps[m]}
        with self._lock:
            if key in self._tasks:  # not after it was dropped (upload deleted, task ended)
                started = self._tasks[key].started
                self._tasks[key] = Progress(started, maps, dict(explanation.stages))

    def get(self, key: str) -> Progress | None:
        with self._lock:
            return self._tasks.get(key)

    def latest(self, key: str, method: int, image: int, scale: int = 0) -> tuple[np.ndarray, str] | None:
        """The latest version of one map and its method's stage, or None if there is none in memory."""
        progress = self.get(key)
        if progress is None or (method, image, scale) not in progress.maps:
            return None
        return progress.maps[method, image, scale], progress.stages[method]

    def running(self, key: str, task) -> tuple[dict[int, str], float | None]:
        """While ``task`` (the task of ``key``) runs: its maps' stages so far (method -> stage) and the seconds left
        at the rate so far; else ``({}, None)``."""
        progress = self.get(key)
        if progress is None or task is None or task.state != "running":
            return {}, None
        return dict(progress.stages), eta_seconds(task.done, task.total, time.monotonic() - progress.started)

    def version(self, key: str, method: int, image: int, scale: int,
                stored: np.ndarray | None) -> tuple[np.ndarray, dict[str, str]] | None:
        """The map to serve: the ``stored`` (final) one, else the latest version in memory (never to be cached),
        with the headers that say which (``X-XMap-State``, ``X-XMap-Stage``); None when there is neither."""
        if stored is not None:
            return stored, {"X-XMap-State": "final", "X-XMap-Stage": FINAL}
        if (latest := self.latest(key, method, image, scale)) is None:
            return None
        xmap, stage = latest
        return xmap, {"X-XMap-State": map_state(stage), "X-XMap-Stage": stage, "Cache-Control": "no-store"}

    def drop(self, key: str) -> None:
        with self._lock:
            self._tasks.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tasks)


def map_state(stage: str) -> str:
    """``final`` or ``partial``, from a method's stage."""
    return "final" if stage == FINAL else "partial"


def map_states(stages: dict[int, str]) -> dict[str, dict[str, str]]:
    """``'<method>-<image>'`` -> ``{"state", "stage"}`` of each map, from the stages of its method."""
    return {f"{m}-{i}": {"state": map_state(stage), "stage": stage} for m, stage in sorted(stages.items())
            for i in (1, 2)}
