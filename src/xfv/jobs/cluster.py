"""Dataset-scale X-Maps in work units that follow the cost, run in-process or on a Dask cluster.

Three kinds of unit, each a pure function of its inputs (a retried unit gives the same answer):

1. :func:`align_unit`, once per distinct image: the file's bytes (read by the client, so workers need no copy
   of the dataset) to the aligned 112 x 112 crop in the model's template;
2. :func:`occlusion_unit`, once per distinct image and model: the original and the 1,058 occluded embeddings
   (paper convention), whatever the number of pairs the image is in - the costly unit;
3. :func:`pair_unit`, per pair: the maps of every method and scale from both images' embeddings (Eq. 6-10),
   encoded for storage.

Results travel back to the client (Dask moves the embeddings between workers; no shared disk is needed), and
the client alone writes to the database, in batches of whole pairs (:func:`xfv.jobs.explain.replace_maps`).
Each process builds a model once per :class:`ModelSpec` and keeps it (:func:`worker_explainer`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from xfv.errors import XfvError
from xfv.jobs.explain import MapRow, aligned_face, explanation_rows, make_explainer, map_options, replace_maps
from xfv.models import EmbeddingModel, create_model
from xfv.store.db import transaction
from xfv.xmaps import Progress, XMapExplainer

if TYPE_CHECKING:
    from distributed import Client

RETRIES = 3
"""How often Dask reruns a unit whose worker died or that raised (a killed worker loses only its units)."""
WINDOW = 256
"""Pair units in flight on a cluster: enough to keep 64 single-threaded workers busy with new images."""
BATCH_PAIRS = 25
BATCH_SECONDS = 10.0


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model anywhere: its registry name and options (a worker builds it from this)."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, name: str, **options: Any) -> ModelSpec:
        return cls(name, tuple(sorted(options.items())))

    def create(self) -> EmbeddingModel:
        return create_model(self.name, **dict(self.options))

    @property
    def token(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PairWork:
    """One pair to explain: its database id and its two images as ``(dataset root, relative path)``."""

    pair_id: int
    image1: tuple[str, str]
    image2: tuple[str, str]


@dataclass(frozen=True)
class PairMaps:
    """A pair's encoded maps (:func:`xfv.jobs.explain.explanation_rows`) and the model fingerprint they used."""

    pair_id: int
    rows: list[MapRow]
    options: dict
    fingerprint: str


@lru_cache(maxsize=4)
def worker_explainer(spec: ModelSpec) -> XMapExplainer:
    """This process's explainer for ``spec``: the model is loaded on first use and kept for later units."""
    return make_explainer(spec.create())


Source = ModelSpec | XMapExplainer
"""What a unit explains with: a spec (built once per process) or, in-process, an explainer at hand."""


def _explainer(source: Source) -> XMapExplainer:
    return source if isinstance(source, XMapExplainer) else worker_explainer(source)


def align_unit(source: Source, relative: str, data: bytes) -> np.ndarray:
    """Unit 1: an image file's bytes to the model's aligned crop."""
    return aligned_face("", relative, _explainer(source).model, data=data)


def occlusion_unit(source: Source, face: np.ndarray, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """Unit 2: a crop's original and occluded embeddings (:meth:`XMapExplainer.embed_face`)."""
    return _explainer(source).embed_face(face, progress=progress)


def pair_unit(source: Source, pair_id: int, face1: np.ndarray, face2: np.ndarray,
              embeddings1: dict[str, np.ndarray], embeddings2: dict[str, np.ndarray]) -> PairMaps:
    """Unit 3: a pair's maps, every method and scale, encoded for storage."""
    explainer = _explainer(source)
    explanation = explainer.assemble(face1, face2, embeddings1, embeddings2)
    return PairMaps(pair_id, explanation_rows(explanation), map_options(explanation, explainer.model.engine),
                    explainer.model.fingerprint)


def distinct_images(pairs: Sequence[PairWork]) -> list[tuple[str, str]]:
    """The images of ``pairs``, each once, in order of first appearance."""
    return list(dict.fromkeys(image for pair in pairs for image in (pair.image1, pair.image2)))


def run_in_process(explainer: XMapExplainer, pairs: Sequence[PairWork],
                   on_passes: Callable[[int], None] | None = None) -> Iterator[PairMaps]:
    """The units one after the other in this process, each image's units once; results in pair order.
    ``on_passes(n)``: after every batch of ``n`` forward passes the model ran (cached embeddings run none)."""
    faces: dict[tuple[str, str], np.ndarray] = {}
    embeddings: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    remaining = {image: 0 for image in distinct_images(pairs)}
    for pair in pairs:
        for image in (pair.image1, pair.image2):
            remaining[image] += 1
    for pair in pairs:
        for image in (pair.image1, pair.image2):
            if image not in faces:
                faces[image] = align_unit(explainer, image[1], _read(image))
                embeddings[image] = occlusion_unit(explainer, faces[image], _passes_counter(on_passes))
        yield pair_unit(explainer, pair.pair_id, faces[pair.image1], faces[pair.image2],
                        embeddings[pair.image1], embeddings[pair.image2])
        for image in (pair.image1, pair.image2):  # keep an image's results only while a later pair needs them
            remaining[image] -= 1
            if remaining[image] == 0:
                del faces[image], embeddings[image]


def _passes_counter(on_passes: Callable[[int], None] | None) -> Progress | None:
    """A ``progress(done, total)`` that reports each batch's new passes to ``on_passes``."""
    if on_passes is None:
        return None
    last = [0]

    def progress(done: int, _total: int) -> None:
        on_passes(done - last[0])
        last[0] = done

    return progress


def run_on_cluster(client: Client, spec: ModelSpec, pairs: Sequence[PairWork], *,
                   retries: int = RETRIES, window: int = WINDOW) -> Iterator[PairMaps]:
    """The units as Dask tasks (image units once, pair units depending on them); results as they finish.

    At most ``window`` pair units are in flight: the next pair (with its images' bytes and units, when new) is
    submitted as one finishes, so the client's and the cluster's memory do not grow with the dataset. The client
    keeps an image's units only until the last pair that needs them is submitted; after that the pair units hold
    them, and the scheduler frees an image's crop and embeddings once every pair that needs them is done.
    """
    from distributed import as_completed

    if not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}.")
    uses = Counter(image for pair in pairs for image in (pair.image1, pair.image2))
    units: dict[tuple[str, str], tuple[Any, Any]] = {}  # image -> (crop, embeddings) futures
    finished = as_completed()

    def submit(pair: PairWork) -> None:
        for image in (pair.image1, pair.image2):
            if image not in units:
                name = hashlib.sha256(f"{image[0]}\n{image[1]}".encode()).hexdigest()[:16]
                face = client.submit(align_unit, spec, image[1], _read(image), retries=retries,
                                     key=f"xfv-align-{spec.token}-{name}")
                units[image] = face, client.submit(occlusion_unit, spec, face, retries=retries,
                                                   key=f"xfv-occlusion-{spec.token}-{name}")
        (face1, embeddings1), (face2, embeddings2) = units[pair.image1], units[pair.image2]
        finished.add(client.submit(pair_unit, spec, pair.pair_id, face1, face2, embeddings1, embeddings2,
                                   retries=retries, key=f"xfv-pair-{spec.token}-{pair.pair_id}"))
        for image in (pair.image1, pair.image2):
            uses[image] -= 1
            if uses[image] == 0:
                del units[image]

    waiting = iter(pairs)
    for pair in islice(waiting, window):
        submit(pair)
    for future in finished:
        result = future.result()
        future.release()
        following = next(waiting, None)
        if following is not None:
            submit(following)
        yield result


def store_maps(factory: sessionmaker[Session], model: EmbeddingModel, model_id: int, results: Iterator[PairMaps],
               *, batch_pairs: int | None = None, batch_seconds: float = BATCH_SECONDS,
               on_stored: Callable[[int], None] | None = None) -> int:
    """Write ``results`` (this process is the only writer) in transactions of whole pairs: a batch when
    ``batch_pairs`` (default :data:`BATCH_PAIRS`) are waiting or ``batch_seconds`` have passed, so a killed run keeps every finished batch.
    Returns the number of pairs stored; ``on_stored(n)`` after each batch."""
    batch_pairs = batch_pairs or BATCH_PAIRS
    batch: list[PairMaps] = []
    stored, last = 0, time.monotonic()
    try:
        for result in results:
            if result.fingerprint != model.fingerprint:
                raise XfvError(f"A worker computed pair {result.pair_id} with a different {model.name!r} "
                               f"(fingerprint {result.fingerprint[:12]}, expected {model.fingerprint[:12]}): "
                               "install the same xfv version and model files on every worker.")
            batch.append(result)
            if len(batch) >= batch_pairs or time.monotonic() - last >= batch_seconds:
                stored += _write(factory, model_id, batch, on_stored)
                batch, last = [], time.monotonic()
    finally:  # an interrupted run (an error, Ctrl-C) still keeps the pairs it finished
        stored += _write(factory, model_id, batch, on_stored)
    return stored


def _write(factory: sessionmaker[Session], model_id: int, batch: list[PairMaps],
           on_stored: Callable[[int], None] | None) -> int:
    if batch:
        with transaction(factory) as session:
            for result in batch:
                replace_maps(session, result.pair_id, model_id, result.rows, result.options)
        if on_stored is not None:
            on_stored(len(batch))
    return len(batch)


def _read(image: tuple[str, str]) -> bytes:
    path = Path(image[0]) / image[1]
    try:
        return path.read_bytes()
    except OSError as error:
        raise XfvError(f"Cannot read dataset image {image[1]!r} under {image[0]!r}: {error.strerror}.") from None


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None, *, host: str = "127.0.0.1",
                scheduler_port: int = 0, dashboard_address: str | None = None,
                worker_ports: str | None = None) -> Iterator[Client]:
    """A Dask client: connected to ``scheduler`` (an address such as ``tcp://host:8786``), or to a new
    :class:`~distributed.LocalCluster` of ``workers`` processes with one thread each (closed on exit).

    ``dashboard_address``: where the new cluster serves its dashboard (None: none); ``worker_ports``: a range
    such as ``"8210:8240"`` for the local workers and their nannies (default: any free port).
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise XfvError("Running on Dask needs the dask extra: pip install 'xfv[dask]'.") from None
    if (scheduler is None) == (workers is None):
        raise XfvError("Give either a scheduler address or a number of local workers, not both or neither.")
    if scheduler is not None:
        with Client(scheduler, timeout="30s") as client:
            yield client
        return
    if workers < 1:
        raise XfvError(f"workers must be a positive number of processes, got {workers!r}.")
    options: dict[str, Any] = {}
    if worker_ports:
        low, high = (int(part) for part in worker_ports.split(":"))
        half = (low + high) // 2
        options = {"port": f"{low}:{half}", "worker_port": f"{half + 1}:{high}"}
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host=host,
                      scheduler_port=scheduler_port, dashboard_address=dashboard_address or None,
                      **options) as cluster, Client(cluster) as client:
        yield client


def dashboard_note(client: Client) -> str:
    """Where the cluster's dashboard is, or why there is none (it is served only where bokeh is installed)."""
    if "dashboard" not in client.scheduler_info().get("services", {}):
        return "Dask dashboard: off."
    if not client.run_on_scheduler(_has_bokeh):
        return "Dask dashboard: not available (the scheduler needs bokeh: pip install 'bokeh>=3.1')."
    return f"Dask dashboard: {client.dashboard_link}"


def _has_bokeh() -> bool:
    return importlib.util.find_spec("bokeh") is not None
