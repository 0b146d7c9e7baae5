"""The X-Maps entry point: a model and two aligned faces in, maps for methods 1-4 out (method.md §2-§4).

Three pieces, kept apart (style.md 2): occluded images (methods 1-3, :mod:`xfv.xmaps.occlusion`) and masked
images (method 4, :mod:`xfv.xmaps.coalitions`) are rendered lazily, embedded in bounded batches here (one pass per
face, shared by all methods and both images, cached per face), and assembled into maps (:mod:`xfv.xmaps.methods`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from itertools import pairwise
from typing import Protocol

import numpy as np

from xfv.models.base import EmbeddingModel
from xfv.verification import cosine_distance
from xfv.xmaps.blend import blend
from xfv.xmaps.cache import OcclusionCache, face_hash
from xfv.xmaps.coalitions import CoalitionDesign
from xfv.xmaps.methods import (
    DEFAULT_METHOD,
    METHODS,
    PATCH_METHODS,
    blur_map,
    method_distances,
    multiscale_map,
    normalise_map,
    similarity_map,
    unit_rows,
)
from xfv.xmaps.occlusion import IMAGE_SIZE, OcclusionConfig

Progress = Callable[[int, int], None]
ORIGINAL = "original"
FINAL = "final"  # the stage of a complete explanation (and of a method's complete map)
FIRST_PREFIX = 32  # method 4's first partial fit, in masks per face; then 64, 128, ... (:func:`mask_prefixes`)


class MaskedDesign(Protocol):
    """A fixed set of ``masks`` masked versions of any face (method 4's :class:`CoalitionDesign`, the peers of
    :mod:`xfv.xmaps.peers`): rendered in slices, embedded in the explainer's batches, cached per face under
    ``cache_key``."""

    @property
    def masks(self) -> int: ...

    def cache_key(self, fill_key: str) -> str: ...

    def render(self, face: np.ndarray, fill: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray: ...


class PeerDesign(MaskedDesign, Protocol):
    """A masked design that makes its own map from the masked faces' similarities to the other face intact and
    the intact pair's similarity (:mod:`xfv.xmaps.peers`)."""

    name: str

    def attribution(self, similarities: np.ndarray, intact: float) -> np.ndarray: ...


def check_face(face: object, name: str) -> np.ndarray:
    """An aligned face: ``uint8 (112, 112, 3)`` RGB."""
    if not isinstance(face, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of shape (112, 112, 3), got {type(face).__name__}.")
    if face.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ValueError(f"{name} must be an aligned crop of shape (112, 112, 3), got shape {face.shape}.")
    if face.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 in [0, 255], got dtype {face.dtype}.")
    return face


def check_methods(methods: Iterable[int]) -> tuple[int, ...]:
    chosen = tuple(dict.fromkeys(methods))
    if not chosen or any(m not in METHODS for m in chosen):
        raise ValueError(f"methods must be a non-empty selection of {METHODS}, got {tuple(methods)!r}.")
    return chosen


@dataclass(frozen=True)
class Explanation:
    """X-Maps of one pair. ``maps[k]`` / ``raw_maps[k]``: ``(image 1, image 2)`` for method ``k``.

    ``maps`` are blurred and normalised, ``float32 (112, 112)`` in [-1, 1] (+1 similar, -1 dissimilar);
    ``raw_maps`` are the multi-scale maps of Eq. 10 (method 4: its cells' effects) before blur and normalisation.
    ``scale_maps[k][p]``: ``(image 1, image 2)`` of one patch size ``p``, Eq. 9's ``S_p`` blurred and normalised
    like the final map (for display; Eq. 10 combines the unnormalised ``S_p``); empty for method 4, which uses
    no patches. Method 3 has one map, stored for both images.
    ``forward_passes``: images the model embedded (0 when all came from the cache), of ``total_passes`` that the
    explanation needs beyond the cache.

    :meth:`XMapExplainer.stream` yields partial explanations before the final one: ``stage`` names the last step
    reached (:data:`FINAL` once complete), ``stages[k]`` what method ``k``'s map is built on so far (e.g.
    ``"64 of 1058 masks"``, ``"28, 14 px patches"``, or :data:`FINAL`); a method not started yet has no map.
    """

    face1: np.ndarray
    face2: np.ndarray
    distance: float
    maps: dict[int, tuple[np.ndarray, np.ndarray]]
    raw_maps: dict[int, tuple[np.ndarray, np.ndarray]]
    scale_maps: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]]
    forward_passes: int
    timings: dict[str, float]
    occlusion: OcclusionConfig
    stage: str = FINAL
    stages: dict[int, str] = field(default_factory=dict)
    total_passes: int = 0

    @property
    def partial(self) -> bool:
        """Whether a later explanation of the stream improves on this one (a map missing or fitted on part of its
        images)."""
        return self.stage != FINAL

    def map(self, method: int, image: int) -> np.ndarray:
        """The normalised map of ``method`` for ``image`` 1 or 2."""
        if method not in self.maps:
            raise ValueError(f"method {method!r} was not computed; available: {sorted(self.maps)}.")
        if image not in (1, 2):
            raise ValueError(f"image must be 1 or 2, got {image!r}.")
        return self.maps[method][image - 1]

    def scale_map(self, method: int, image: int, patch_size: int) -> np.ndarray:
        """The normalised map of one patch size (:attr:`scale_maps`) of ``method`` for ``image`` 1 or 2."""
        self.map(method, image)
        if patch_size not in self.scale_maps[method]:
            available = sorted(self.scale_maps[method])
            raise ValueError(f"patch size {patch_size!r} was not computed for method {method}; "
                             f"available: {available or 'none (method 4 uses no patches)'}.")
        return self.scale_maps[method][patch_size][image - 1]

    def blend(self, method: int, image: int, colormap: str = "red-green") -> np.ndarray:
        """Algorithm 2: the X-Map of ``method`` over face ``image``, ``uint8 (112, 112, 3)`` RGB."""
        face = self.face1 if image == 1 else self.face2
        return blend(face, self.map(method, image), colormap)


@dataclass
class _Job:
    """Images of one face to embed: its original (one image), one patch size's occlusions or a design's masked
    faces; ``filled`` of them are embedded so far, in order."""

    digest: str
    key: str
    count: int
    render: Callable[[int, int], np.ndarray]
    embeddings: np.ndarray | None = None
    filled: int = 0

    @property
    def complete(self) -> bool:
        return self.filled == self.count


Part = tuple[_Job, int, int]  # images start:stop of a job


@dataclass
class _Step:
    """A point of the stream: the images embedded before it (``parts``, in order) and the stage it reaches."""

    stage: str
    parts: list[Part] = field(default_factory=list)


def mask_prefixes(masks: int, first: int = FIRST_PREFIX) -> list[int]:
    """The prefixes of method 4's design that the stream fits, in masks per face: ``first``, twice that, ... up to
    half the design, then all ``masks`` (every even prefix of the design is a design of its own)."""
    counts = []
    while first <= masks // 2:
        counts.append(first)
        first *= 2
    return [*counts, masks]


@lru_cache(maxsize=8)
def _shared(design: CoalitionDesign) -> CoalitionDesign:
    """One instance per distinct design, so that its masks and fitted operators are built once per process."""
    return design


class XMapExplainer:
    """X-Maps for a black-box model (captum-style: build once, call :meth:`explain` per pair, or :meth:`stream`
    for partial maps as they improve).

    ``occlusion``: Algorithm 1's parameters; ``coalitions``: method 4's masks (default: 1,058 on 14-px cells, as
    many as the occlusions of methods 1-3 with the paper's defaults); ``batch_size``: images per ``model.embed`` call (memory is bounded by it,
    never by the 1,058 images per face; default: the model's own choice for large calls, e.g. the batch size its
    engine measured fastest on this machine, else 64); ``cache``: an :class:`OcclusionCache` or None.
    """

    def __init__(
        self,
        model: EmbeddingModel,
        *,
        occlusion: OcclusionConfig | None = None,
        coalitions: CoalitionDesign | None = None,
        batch_size: int | None = None,
        cache: OcclusionCache | None = None,
    ) -> None:
        if not callable(getattr(model, "embed", None)):
            raise TypeError(f"model must have an embed(faces) method, got {type(model).__name__}.")
        if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.model = model
        self.occlusion = occlusion or OcclusionConfig()
        self.coalitions = _shared(coalitions or CoalitionDesign())
        self._batch_size = None if batch_size is None else int(batch_size)
        self.cache = cache

    @property
    def batch_size(self) -> int:
        """Images per ``model.embed`` call: as given, else the model's choice for a face's images (measured once)."""
        if self._batch_size is None:
            choose = getattr(self.model, "batch_for", None)
            self._batch_size = int(choose(self.occlusion.count())) if choose is not None else 64
        return self._batch_size

    def explain(
        self,
        face1: np.ndarray,
        face2: np.ndarray,
        *,
        methods: Iterable[int] = METHODS,
        progress: Progress | None = None,
    ) -> Explanation:
        """Maps of ``methods`` for two aligned faces; ``progress(done, total)`` after every batch. The last
        explanation of :meth:`stream`, embedded in the same order, without the partial fits."""
        face1, face2 = check_face(face1, "face1"), check_face(face2, "face2")
        return deque(self._stream(face1, face2, check_methods(methods), progress, partials=False), maxlen=1)[0]

    def stream(
        self,
        face1: np.ndarray,
        face2: np.ndarray,
        *,
        methods: Iterable[int] = METHODS,
        progress: Progress | None = None,
    ) -> Iterator[Explanation]:
        """:meth:`explain` as it progresses: partial explanations as the maps improve, the final one last.

        Order: both originals (the distance); the default view's method (:data:`~xfv.xmaps.methods.DEFAULT_METHOD`,
        method 4) on growing prefixes of its design (:func:`mask_prefixes`: 32, 64, 128, ... masks per face, both
        faces in each step, a fit after each); then methods 1-3 coarse before fine (28, 14, 7 px patches; Eq. 10
        over the patch sizes done). What the cache holds arrives at once (a first explanation before any pass);
        the final explanation equals :meth:`explain`'s. Every model call is a batch; ``progress(done, total)``
        after each. Closing the iterator, or an exception raised by ``progress``, stops before the next batch and
        caches only complete entries.
        """
        face1, face2 = check_face(face1, "face1"), check_face(face2, "face2")
        return self._stream(face1, face2, check_methods(methods), progress, partials=True)

    def embed_face(self, face: np.ndarray, methods: Iterable[int] = METHODS,
                   progress: Progress | None = None) -> dict[str, np.ndarray]:
        """One face's embeddings for ``methods``: original, every patch size's occlusions (methods 1-3) and the
        masked faces (method 4), from the cache or the model.

        The costly half of :meth:`explain`, done once per face whatever the number of pairs it is in; the keys
        are ``"original"``, :meth:`OcclusionConfig.cache_key` of each patch size and :meth:`design_key` of
        method 4's design. ``progress(done, total)`` after every batch (total: the passes not cached).
        """
        return self.embed_faces([face], methods, progress=progress)[0][0]

    def embed_faces(
        self,
        faces: Sequence[np.ndarray],
        methods: Iterable[int] = METHODS,
        designs: Iterable[MaskedDesign] = (),
        progress: Progress | None = None,
    ) -> tuple[list[dict[str, np.ndarray]], int]:
        """:meth:`embed_face` for several faces in shared batches (a face given twice is embedded once), plus the
        masked faces of other ``designs`` (e.g. the peers, :mod:`xfv.xmaps.peers`) under :meth:`design_key`;
        returns the embeddings per face and the forward passes spent."""
        faces = [check_face(face, f"faces[{k}]") for k, face in enumerate(faces)]
        digests = [face_hash(face) for face in faces]
        jobs = self._cached_jobs(dict(zip(digests, faces)), check_methods(methods), tuple(designs))
        parts = [(job, 0, job.count) for face_jobs in jobs.values() for job in face_jobs.values() if not job.complete]
        total = sum(job.count for job, _, _ in parts)
        self._embed(parts, 0, total, progress)
        embeddings = {digest: {key: job.embeddings for key, job in face_jobs.items()} for digest, face_jobs in jobs.items()}
        return [embeddings[digest] for digest in digests], total

    def assemble(
        self,
        face1: np.ndarray,
        face2: np.ndarray,
        embeddings1: dict[str, np.ndarray],
        embeddings2: dict[str, np.ndarray],
        *,
        methods: Iterable[int] = METHODS,
        count: int | None = None,
        patch_sizes: Collection[int] | None = None,
    ) -> Explanation:
        """The cheap half of :meth:`explain`: maps from both faces' :meth:`embed_face` results (Eq. 6-10).

        ``count``: method 4 fitted on the first ``count`` masks of its design only (default: all), the map a
        viewer can show after ``count`` forward passes per face (:meth:`CoalitionDesign.attribution`).
        ``patch_sizes``: methods 1-3 from these patch sizes only (Eq. 10 over them; default: all; none: no map of
        methods 1-3), the map a viewer can show once their occlusions are embedded.
        """
        methods = check_methods(methods)
        started = time.perf_counter()
        distance = float(cosine_distance(embeddings1[ORIGINAL][0], embeddings2[ORIGINAL][0]))
        unit1 = {key: unit_rows(value) for key, value in embeddings1.items()}
        unit2 = {key: unit_rows(value) for key, value in embeddings2.items()}
        grids = [grid for grid in self.occlusion.grids() if patch_sizes is None or grid.patch_size in patch_sizes]
        maps, raw_maps, scale_maps, stages = {}, {}, {}, {}
        for method in methods:
            if method not in PATCH_METHODS:  # method 4: each masked face against the intact other face
                key = self.design_key(self.coalitions)
                if key not in unit1 or key not in unit2:
                    continue  # a partial explanation before any masked face (:meth:`stream`)
                masked1, masked2 = unit1[key][:count], unit2[key][:count]
                raw_maps[method] = (self.coalitions.attribution(masked1 @ unit2[ORIGINAL][0]),
                                    self.coalitions.attribution(masked2 @ unit1[ORIGINAL][0]))
                maps[method], scale_maps[method] = self._display(raw_maps[method]), {}
                fitted, masks = len(masked1), self.coalitions.masks
                stages[method] = FINAL if fitted == masks else f"{fitted} of {masks} masks"
                continue
            if not grids:
                continue
            sizes1: dict[int, np.ndarray] = {}
            sizes2: dict[int, np.ndarray] = {}
            for grid in grids:
                key, p = self.occlusion.cache_key(grid.patch_size), grid.patch_size
                d1, d2 = method_distances(
                    method, unit1[key], unit2[key], unit1[ORIGINAL][0], unit2[ORIGINAL][0]
                )
                sizes1[p] = similarity_map(d1, distance, grid)
                sizes2[p] = sizes1[p] if method == 3 else similarity_map(d2, distance, grid)
            raw_maps[method] = (multiscale_map(sizes1), multiscale_map(sizes2))
            maps[method] = self._display(raw_maps[method])
            scale_maps[method] = {p: self._display((sizes1[p], sizes2[p])) for p in sizes1}
            done = ", ".join(str(p) for p in sorted(sizes1, reverse=True))
            stages[method] = FINAL if len(grids) == len(self.occlusion.patch_sizes) else f"{done} px patches"
        return Explanation(
            face1=face1,
            face2=face2,
            distance=distance,
            maps=maps,
            raw_maps=raw_maps,
            scale_maps=scale_maps,
            forward_passes=0,
            timings={"maps": time.perf_counter() - started},
            occlusion=self.occlusion,
            stage=FINAL if len(stages) == len(methods) and all(stage == FINAL for stage in stages.values()) else "",
            stages=stages,
        )

    def peer_maps(
        self, embeddings1: dict[str, np.ndarray], embeddings2: dict[str, np.ndarray], peers: Mapping[str, PeerDesign]
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each peer's maps of both faces (blurred and normalised as method 4's) from :meth:`embed_faces` results
        that include the peers' designs: each masked face scored against the other face intact."""
        original1, original2 = unit_rows(embeddings1[ORIGINAL])[0], unit_rows(embeddings2[ORIGINAL])[0]
        intact = float(original1 @ original2)
        maps = {}
        for name, peer in peers.items():
            key = self.design_key(peer)
            raw = (peer.attribution(unit_rows(embeddings1[key]) @ original2, intact),
                   peer.attribution(unit_rows(embeddings2[key]) @ original1, intact))
            maps[name] = self._display(raw)
        return maps

    def design_key(self, design: MaskedDesign) -> str:
        """The cache key of a design's masked faces: the design and what fills the removed parts."""
        fill = {"color": self.occlusion.color} | ({"seed": self.occlusion.seed} if self.occlusion.color == "noise" else {})
        return design.cache_key(json.dumps(fill, sort_keys=True))

    def _display(self, pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Blur and normalise both images' maps (method.md §4)."""
        return tuple(normalise_map(blur_map(r, self.occlusion.stride)) for r in pair)

    def _jobs(self, digest: str, face: np.ndarray, fill: np.ndarray, methods: tuple[int, ...],
              designs: tuple[MaskedDesign, ...]) -> Iterator[_Job]:
        yield _Job(digest, ORIGINAL, 1, lambda start, stop: face[None])
        if any(m in PATCH_METHODS for m in methods):
            for grid in self.occlusion.grids():
                render = partial(grid.render, face, fill)
                yield _Job(digest, self.occlusion.cache_key(grid.patch_size), len(grid), render)
        if any(m not in PATCH_METHODS for m in methods):
            designs = (self.coalitions, *designs)
        for design in designs:
            yield _Job(digest, self.design_key(design), design.masks, partial(design.render, face, fill))

    def _cached_jobs(self, faces: dict[str, np.ndarray], methods: tuple[int, ...],
                     designs: tuple[MaskedDesign, ...] = ()) -> dict[str, dict[str, _Job]]:
        """Each distinct face's jobs by key, those in the cache already complete."""
        fingerprint = self.model.fingerprint if self.cache is not None else ""
        fill = self.occlusion.fill()
        jobs: dict[str, dict[str, _Job]] = {}
        for digest, face in faces.items():
            jobs[digest] = {job.key: job for job in self._jobs(digest, face, fill, methods, designs)}
            for job in jobs[digest].values():
                cached = self.cache.get(fingerprint, digest, job.key, job.count) if self.cache else None
                if cached is not None:
                    job.embeddings, job.filled = cached, job.count
        return jobs

    def _embed(self, parts: list[Part], done: int, total: int, progress: Progress | None) -> int:
        """Embed the images of ``parts`` in batches (a batch may span parts), in order; a job's embeddings are
        cached once complete. ``done`` of ``total`` passes before; returns the passes done after."""
        fingerprint = self.model.fingerprint if self.cache is not None else ""
        for batch in _batches(parts, self.batch_size):
            images = np.concatenate([job.render(start, stop) for job, start, stop in batch])
            embedded = np.asarray(self.model.embed(images), dtype=np.float32)
            if embedded.ndim != 2 or len(embedded) != len(images):
                raise ValueError(
                    f"model.embed returned shape {embedded.shape} for {len(images)} images; expected (n, D)."
                )
            offset = 0
            for job, start, stop in batch:
                if job.embeddings is None:
                    job.embeddings = np.empty((job.count, embedded.shape[1]), dtype=np.float32)
                job.embeddings[start:stop] = embedded[offset : offset + stop - start]
                offset += stop - start
                job.filled += stop - start
                if job.complete and self.cache is not None:
                    self.cache.put(fingerprint, job.digest, job.key, job.embeddings)
            done += len(images)
            if progress is not None:
                progress(done, total)
        return done

    def _steps(self, jobs: list[dict[str, _Job]], methods: tuple[int, ...]) -> list[_Step]:
        """The stream's order (:meth:`stream`) over both faces' jobs, leaving out what is embedded already."""
        def step(stage: str, key: str, start: int = 0, stop: int | None = None) -> _Step:
            parts = [(face[key], start, face[key].count if stop is None else stop) for face in jobs]
            return _Step(stage, [(job, a, b) for job, a, b in parts if job.filled < b])

        masks, patches = [], []
        if any(m not in PATCH_METHODS for m in methods):
            key, total = self.design_key(self.coalitions), self.coalitions.masks
            masks = [step(f"method 4: {b} of {total} masks", key, a, b)
                     for a, b in pairwise([0, *mask_prefixes(total)])]
        if any(m in PATCH_METHODS for m in methods):
            patches = [step(f"methods 1-3: {p} px patches", self.occlusion.cache_key(p))
                       for p in sorted(self.occlusion.patch_sizes, reverse=True)]
        ordered = [*patches, *masks] if DEFAULT_METHOD in PATCH_METHODS else [*masks, *patches]
        return [s for s in (step("original faces", ORIGINAL), *ordered) if s.parts]

    def _stream(self, face1: np.ndarray, face2: np.ndarray, methods: tuple[int, ...], progress: Progress | None,
                partials: bool) -> Iterator[Explanation]:
        """:meth:`stream` (``partials``) or only its final explanation (:meth:`explain`): the same steps and
        batches either way."""
        started = time.perf_counter()
        digests = face_hash(face1), face_hash(face2)
        jobs = self._cached_jobs(dict(zip(digests, (face1, face2))), methods)
        steps = self._steps([jobs[digest] for digest in dict.fromkeys(digests)], methods)  # a face twice: once
        total = sum(stop - start for step in steps for _, start, stop in step.parts)
        done, fitting = 0, 0.0
        for k, step in enumerate(steps):
            if partials and (k > 0 or all(jobs[digest][ORIGINAL].complete for digest in digests)):
                fit = time.perf_counter()  # what is embedded so far (or cached), as an explanation
                yield self._partial(face1, face2, jobs[digests[0]], jobs[digests[1]], methods,
                                    steps[k - 1].stage if k else "cached", done, total, started)
                fitting += time.perf_counter() - fit
            done = self._embed(step.parts, done, total, progress)
        embedded = time.perf_counter()
        embeddings1, embeddings2 = ({key: job.embeddings for key, job in jobs[d].items()} for d in digests)
        explanation = self.assemble(face1, face2, embeddings1, embeddings2, methods=methods)
        finished = time.perf_counter()
        timings = {"embed": embedded - started - fitting, "maps": finished - embedded, "total": finished - started}
        if partials:
            timings["partial maps"] = fitting
        yield dataclasses.replace(explanation, forward_passes=done, total_passes=total, timings=timings)

    def _partial(self, face1: np.ndarray, face2: np.ndarray, jobs1: dict[str, _Job], jobs2: dict[str, _Job],
                 methods: tuple[int, ...], stage: str, done: int, total: int, started: float) -> Explanation:
        """The explanation the embeddings so far give: method 4 on the masks embedded so far (a prefix of the
        design, the same for both faces: every step embeds both), methods 1-3 on the patch sizes done."""
        embedded1, embedded2 = ({key: job.embeddings[:job.filled] for key, job in jobs.items() if job.filled}
                                for jobs in (jobs1, jobs2))
        sizes = [p for p in self.occlusion.patch_sizes
                 if all(self.occlusion.cache_key(p) in jobs and jobs[self.occlusion.cache_key(p)].complete
                        for jobs in (jobs1, jobs2))]
        explanation = self.assemble(face1, face2, embedded1, embedded2, methods=methods, patch_sizes=sizes)
        return dataclasses.replace(explanation, stage=stage, forward_passes=done, total_passes=total,
                                   timings={"elapsed": time.perf_counter() - started})


def _batches(parts: list[Part], batch_size: int) -> Iterator[list[Part]]:
    """Split the parts' images into batches of ``batch_size`` (a batch may span several parts)."""
    batch: list[Part] = []
    room = batch_size
    for job, start, stop in parts:
        while start < stop:
            end = min(stop, start + room)
            batch.append((job, start, end))
            room -= end - start
            start = end
            if room == 0:
                yield batch
                batch, room = [], batch_size
    if batch:
        yield batch
