"""What the routes call beyond plain queries: model instances, uploaded pairs, X-Map tasks, image rendering.

Routes stay thin; the work itself is done by :mod:`xfv.jobs` and the domain packages.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from xfv.confidence import Calibration
from xfv.errors import BusyError, NoFaceError, NotFoundError, TooLargeError, XfvError
from xfv.faces import load_image
from xfv.faces.images import check_declared
from xfv.jobs import (
    MIN_CALIBRATION_PAIRS,
    CalibrationQuality,
    FoldFit,
    PhotoFace,
    Verdict,
    aligned_face,
    calibration_quality,
    explain_pair,
    fold_fits,
    is_shipped,
    job_rate,
    make_explainer,
    measure_rate,
    out_of_fold_name,
    passes_per_face,
    photo_face,
    record_rate,
    shipped_calibration,
    usable_calibration,
    verify_faces,
)
from xfv.models import EmbeddingModel, create_model, list_models, runnable_models
from xfv.models.engines import ENGINE_MODELS, check_engine
from xfv.store.db import TRANSIENT_ERRORS, scrub, transaction, write_with_retry
from xfv.store.models import ModelRecord, Pair, UploadRecord, utcnow
from xfv.store.queries import (
    dataset_summaries,
    fold_calibrations,
    get_dataset,
    get_model,
    latest_calibration,
    model_pair_qualities,
    model_results,
    results_calibration,
    results_variant,
    stored_xmaps,
)
from xfv.store.uploads import (
    delete_uploads,
    expire_uploads,
    get_upload,
    save_upload_maps,
    upload_expired,
    upload_of_task,
    upload_task_key,
)
from xfv.web.core.config import Settings
from xfv.web.partials import PartialMaps, map_states
from xfv.web.schemas import CostEstimate, TaskOut, XMapStatus
from xfv.web.tasks import BoundedPool, Task, TaskRunner, Work
from xfv.xmaps import METHODS, Progress, blend, colorize
from xfv.xmaps.explainer import FINAL

log = logging.getLogger(__name__)
WRITE_DEADLINE = 4.0  # seconds a task's final writes are retried while the database is out of reach


@lru_cache(maxsize=8)
def embedding_model(name: str, provider: str = "auto", precision: str = "fp32") -> EmbeddingModel:
    """One shared instance per registered model name and engine, for the models that run by their name alone
    (``provider`` and ``precision`` apply to the ONNX models only; the others take none)."""
    if name not in list_models():
        raise NotFoundError(f"Unknown model {name!r}; expected one of {sorted(runnable_models())}.")
    if name not in runnable_models():
        raise XfvError(f"Model {name!r} needs options the web app cannot give (see 'xfv models'); expected one of "
                       f"{sorted(runnable_models())}.")
    return create_model(name, **({"provider": provider, "precision": precision} if name in ENGINE_MODELS else {}))


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def render_map(face: np.ndarray, xmap: np.ndarray, kind: str) -> bytes:
    """``blend``: Algorithm 2 over the face; ``map``: the coloured map alone. PNG bytes."""
    if kind == "blend":
        return png_bytes(blend(face, xmap))
    return png_bytes((colorize(xmap) * 255).round().astype(np.uint8))


def thumbnail(path: Path, size: int) -> bytes:
    """A JPEG of at most ``size`` pixels on its longer side (the declared size checked first, like any photo's;
    Pillow then decodes a JPEG at the smallest scale the thumbnail allows)."""
    with PILImage.open(path) as image:
        check_declared(image, path.name)
        image.thumbnail((size, size))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def served_path(root: str, relative: str) -> Path:
    """A dataset file the web may read: under the dataset's root once links are resolved (a symbolic link that
    leads out of it, or a path ingested with ``--allow-outside-root``, is not served); NotFoundError otherwise."""
    base = Path(root).resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        raise NotFoundError(f"Image {relative!r} is not available under the dataset root.")
    return path


def check_upload(data: bytes, field_name: str, settings: Settings) -> np.ndarray:
    """Decode an uploaded photo within the byte and pixel limits (:func:`~xfv.faces.load_image` checks the
    header before decoding, and decodes a large JPEG at a reduced scale).

    Raises ``TooLargeError`` over a limit (pixel bombs too) and ``XfvError`` for anything else refused; messages
    name the field, never Python objects.
    """
    if not data:
        raise XfvError(f"{field_name}: the file is empty.")
    if len(data) > settings.max_upload_bytes:
        raise TooLargeError(f"{field_name}: {len(data)} bytes is more than the limit of {settings.max_upload_bytes} bytes.")
    return load_image(data, name=field_name, max_pixels=settings.max_upload_pixels)


def align_upload(image: np.ndarray, field_name: str, model: EmbeddingModel) -> PhotoFace:
    """The largest face, found by the photo detector every route uses (the model's own, if it has one), at 112 px
    and at the model's size; 422 when there is none."""
    try:
        return photo_face(image, model, name=field_name)
    except NoFaceError:
        raise NoFaceError(f"{field_name}: no face found.") from None


def png_face(data: bytes) -> np.ndarray:
    """A face crop stored as PNG, back as ``uint8 (112, 112, 3)`` (lossless)."""
    with PILImage.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


@dataclass
class PreparedPair:
    """Two uploaded photos after detection and alignment (the 112 px crops), the model's verdict on them, and
    what detection found (``faces``: ``{"found": [n1, n2], "notes": [...]}``, the largest face of each is used)."""

    model: EmbeddingModel
    face1: np.ndarray
    face2: np.ndarray
    verdict: Verdict
    faces: dict = field(default_factory=dict)


@dataclass
class CalibrationView:
    """What the landing page shows of one model on one dataset: Fig. 2 per fold, reliability, quality."""

    distances: np.ndarray
    labels: np.ndarray
    fits: list[FoldFit]
    quality: CalibrationQuality
    calibration: str  # the name of the calibration behind the stored results
    shipped: Calibration | None  # the shipped calibration, where it judges the stored results (small datasets)
    variant: str = "paper"  # the C-Score variant of the stored confidences


class Services:
    """State shared by the routes of one app: settings, the bounded pools, the task runner, uploaded pairs.

    Uploads are detected, aligned and embedded in :attr:`uploads` (a :class:`BoundedPool`: no request waits
    behind more than its queue, none holds a lock across users); X-Maps run as tasks in their own pool. Uploads
    and tasks are kept in the database, so a restart loses neither. An upload is readable until it expires
    (``upload_ttl_hours``, checked on every read); a sweeper thread deletes expired ones every ``sweep_seconds``,
    and :meth:`delete_upload` at once. Nothing derived from an uploaded photo is written outside the database:
    its X-Maps are computed without the on-disk occlusion cache.
    """

    def __init__(self, settings: Settings, factory: sessionmaker[Session]) -> None:
        check_engine(settings.provider, settings.precision)  # a bad XFV_PROVIDER stops the start, with its reason
        self.settings, self.factory = settings, factory
        self.uploads = BoundedPool("upload", settings.upload_workers, settings.upload_queue, settings.retry_after)
        self.tasks = TaskRunner(factory, BoundedPool("task", settings.task_workers, settings.task_queue,
                                                     settings.retry_after), self._work_for,
                                stall_seconds=settings.task_stall_seconds, write_deadline=WRITE_DEADLINE,
                                on_end=lambda task: self.partials.drop(task.key))
        self.partials = PartialMaps()
        self._views: dict[tuple, CalibrationView] = {}
        self._compute_lock = threading.Lock()
        self._stopping = threading.Event()
        self._rate_lock = threading.Lock()

    def start(self) -> None:
        """At start-up: drop expired uploads, queue again the tasks a previous run left unfinished, start the
        sweeper."""
        self.expire_uploads()
        self.tasks.resume()
        threading.Thread(target=self._sweep, name="xfv-upload-sweeper", daemon=True).start()

    def shutdown(self) -> None:
        self._stopping.set()
        self.uploads.shutdown()
        self.tasks.shutdown()

    def _sweep(self) -> None:
        while not self._stopping.wait(self.settings.sweep_seconds):
            try:
                self.expire_uploads()
            except Exception as error:  # noqa: BLE001 - the database may be out of reach: next round
                log.warning("deleting expired uploads failed (tried again in %g s): %s", self.settings.sweep_seconds,
                            str(error).splitlines()[0])

    def model(self, name: str) -> EmbeddingModel:
        """The shared instance of a registered model on the server's engine (``XFV_PROVIDER``, ``XFV_PRECISION``)."""
        return embedding_model(name, self.settings.provider, self.settings.precision)

    # -- calibration and verification ---------------------------------------------------------------------
    def calibration(self, session: Session, model: EmbeddingModel) -> tuple[Calibration, str]:
        """The model's newest all-pairs calibration in the database if fitted on enough pairs (at least
        :data:`~xfv.jobs.MIN_CALIBRATION_PAIRS`, with this configuration), else the shipped one, with its name:
        a user's photos are judged by a benchmark calibration, whatever small dataset the database holds."""
        try:
            record = latest_calibration(session, get_model(session, model.name))
        except NotFoundError:
            record = None
        stored = Calibration.from_dict(record.parameters) if record is not None else None
        return usable_calibration(stored, model.name, model.fingerprint, say_why=False)

    def verify(self, model: EmbeddingModel, face1: PhotoFace, face2: PhotoFace) -> Verdict:
        with self.factory() as session:
            calibration, name = self.calibration(session, model)
        return verify_faces(model, face1, face2, calibration, name)

    def prepare(self, data1: bytes, data2: bytes, model_name: str | None) -> PreparedPair:
        """Decode, detect, align and compare two uploaded photos (run it in :attr:`uploads`)."""
        model = self.model(model_name or self.settings.upload_model)
        faces = [align_upload(check_upload(data, name, self.settings), name, model)
                 for name, data in (("image1", data1), ("image2", data2))]
        found = {"found": [face.found for face in faces], "notes": [face.note for face in faces if face.note]}
        return PreparedPair(model, faces[0].crop, faces[1].crop, self.verify(model, faces[0], faces[1]), found)

    # -- uploaded pairs --------------------------------------------------------------------------------------
    def explain_photos(self, data1: bytes, data2: bytes, model_name: str | None) -> UploadRecord:
        """:meth:`prepare`, then store the pair and queue its X-Maps (``BusyError`` when the task queue is full)."""
        self.tasks.check_room()
        pair = self.prepare(data1, data2, model_name)
        verdict = {key: value for key, value in asdict(pair.verdict).items() if key != "model"}  # stored fields
        upload = UploadRecord(id=uuid.uuid4().hex, model=pair.model.name, face1=png_bytes(pair.face1),
                              face2=png_bytes(pair.face2), faces=pair.faces, **verdict)
        with transaction(self.factory) as session:
            session.add(upload)
        try:
            task = self.tasks.submit(upload_task_key(upload.id))
        except BusyError:
            with transaction(self.factory) as session:
                session.delete(session.get(UploadRecord, upload.id))
            raise
        with transaction(self.factory) as session:
            session.get(UploadRecord, upload.id).task_id = task.id
        upload.task_id = task.id
        self.expire_uploads()
        return upload

    def expiry_cutoff(self) -> datetime:
        """Uploads created before this moment have expired."""
        return utcnow() - timedelta(hours=self.settings.upload_ttl_hours)

    def upload(self, session: Session, upload_id: str) -> UploadRecord:
        """An upload that has not expired; NotFoundError otherwise."""
        return get_upload(session, upload_id, self.expiry_cutoff())

    def task(self, task_id: str) -> Task:
        """A task as it stands; NotFoundError for an unknown one and for one whose upload expired or was deleted.
        While the database is out of reach, a task this server holds in memory is still answered (its end, too,
        when that could not be written)."""
        task = self.tasks.get(task_id)
        if task is None:
            raise NotFoundError(f"No task {task_id!r}.")
        if (upload_id := upload_of_task(task.key)) is not None:
            try:
                with self.factory() as session:
                    self.upload(session, upload_id)
            except TRANSIENT_ERRORS:
                if not self.tasks.holds(task_id):
                    raise
        return task

    def retry_task(self, task_id: str) -> Task:
        """Start an ended (or stalled) task again; an upload's pair then points at the new task."""
        self.task(task_id)
        task = self.tasks.retry(task_id)
        if task is None:
            raise NotFoundError(f"No task {task_id!r}.")
        if task.id != task_id and (upload_id := upload_of_task(task.key)) is not None:
            with transaction(self.factory) as session:
                self.upload(session, upload_id).task_id = task.id
        return task

    def delete_upload(self, upload_id: str) -> None:
        """Delete an upload now: its faces, verdict, maps and task (a running one stops at its next batch).
        NotFoundError when there is none, or it had already expired (it is deleted all the same)."""
        with transaction(self.factory) as session:
            expired = upload_expired(get_upload(session, upload_id), self.expiry_cutoff())
            tasks = delete_uploads(session, [upload_id])
        self._forget([upload_id], tasks)
        if expired:
            raise NotFoundError(f"No uploaded pair {upload_id!r} (it had expired).")

    def cancel_upload_task(self, upload_id: str) -> UploadRecord:
        """Stop the upload's X-Map task before its next batch (it ends ``cancelled``; its partial maps are dropped,
        nothing of them stored); the upload and its verdict stay, and the task can be tried again."""
        with self.factory() as session:
            upload = self.upload(session, upload_id)
        if upload.task_id:
            self.tasks.stop(upload.task_id)
        self.partials.drop(upload_task_key(upload_id))
        return upload

    def expire_uploads(self) -> int:
        """Delete expired uploads (and all but the newest ``uploads_kept``) with everything derived from them."""
        with transaction(self.factory) as session:
            uploads, tasks = expire_uploads(session, self.expiry_cutoff(), self.settings.uploads_kept)
        self._forget(uploads, tasks)
        return len(uploads)

    def _forget(self, uploads: list[str], tasks: list[str]) -> None:
        """Stop the uploads' running tasks, forget finished ones, and leave no trace of the rows in the files."""
        for upload_id in uploads:
            self.tasks.cancel(upload_task_key(upload_id))
            self.partials.drop(upload_task_key(upload_id))
        self.tasks.forget(tasks)
        if uploads:
            scrub(self.factory)

    def _work_for(self, key: str) -> Work:
        """The work a task key names: ``upload:<id>`` or ``pair:<id>:<model>`` (X-Maps of all methods)."""
        kind, _, rest = key.partition(":")
        if kind == "upload":
            return partial(self._explain_upload, rest)
        pair_id, _, model_name = rest.partition(":")
        if kind != "pair" or not pair_id.isdigit():
            raise XfvError(f"Unknown task key {key!r}; expected 'upload:<id>' or 'pair:<id>:<model>'.")
        return partial(self._explain_stored_pair, int(pair_id), model_name)

    def _explain_upload(self, upload_id: str, progress: Progress) -> dict:
        """An upload's X-Maps, its occlusions embedded in memory only, each partial version published in
        :attr:`partials` as it arrives (:meth:`~xfv.xmaps.XMapExplainer.stream`); only the final maps are written
        (with retries)."""
        with self.factory() as session:
            upload = self.upload(session, upload_id)
            model_name, face1, face2 = upload.model, png_face(upload.face1), png_face(upload.face2)
        started = time.perf_counter()
        model = self.model(model_name)
        key = upload_task_key(upload_id)
        self.partials.start(key)
        for explanation in make_explainer(model, disk_cache=False).stream(face1, face2, methods=METHODS,
                                                                          progress=progress):
            self.partials.publish(key, explanation)  # the final one too, until it is stored
        maps = {(m, i, 0): explanation.map(m, i) for m in METHODS for i in (1, 2)}
        maps |= {(m, i, p): explanation.scale_map(m, i, p) for m in METHODS for i in (1, 2)
                 for p in explanation.scale_maps[m]}
        rate = job_rate(explanation.forward_passes, time.perf_counter() - started)

        def write(session: Session) -> None:
            self.upload(session, upload_id)
            save_upload_maps(session, upload_id, maps)
            record = session.scalar(select(ModelRecord).where(ModelRecord.name == model_name))
            if record is not None and record.fingerprint == model.fingerprint:
                record_rate(session, record.id, rate)

        write_with_retry(self.factory, write, deadline=WRITE_DEADLINE)
        return {"upload": upload_id}

    def _explain_stored_pair(self, pair_id: int, model_name: str, progress: Progress) -> dict:
        with self.factory() as session:
            pair = session.get(Pair, pair_id)
            if pair is None:
                raise NotFoundError(f"No pair with id {pair_id}.")
            for image in (pair.image1, pair.image2):
                served_path(pair.dataset.root, image.path)
        key = xmap_task_key(pair_id, model_name)
        self.partials.start(key)
        explain_pair(self.factory, pair_id, self.model(model_name), progress=progress,
                     publish=partial(self.partials.publish, key))
        return {"pair": pair_id, "model": model_name}

    def calibration_view(self, session: Session, dataset_name: str, model_name: str) -> CalibrationView:
        """The stored results, per-fold fits and calibration quality of a model on a dataset (cached until the
        results change)."""
        dataset, model = get_dataset(session, dataset_name), get_model(session, model_name)
        rows = model_results(session, dataset, model)
        if not rows:
            raise NotFoundError(f"Model {model_name!r} has no results on dataset {dataset_name!r}.")
        key = (dataset.id, model.id, model.fingerprint, len(rows))
        with self._compute_lock:  # one computation at a time: a second asker waits for it, then reads the cache
            view = self._views.get(key)
            if view is None:
                distances, labels, folds, confidence, correct = (np.array(column) for column in zip(*rows))
                name = results_calibration(session, dataset, model) or out_of_fold_name(dataset.name)
                shipped = shipped_calibration(model_name, model.fingerprint)[0] if is_shipped(name) else None
                if shipped is None:
                    fits = fold_fits(folds, fold_calibrations(session, dataset, model))
                else:  # every fold judged by the shipped t and curve
                    fits = [FoldFit(int(k), float(shipped.threshold), shipped.cscore, folds != k)
                            for k in np.unique(folds)]
                rated = np.array(model_pair_qualities(session, dataset, model), dtype=float).reshape(-1, 2)
                qualities = (rated[:, 0], rated[:, 1]) if len(rated) and np.all(np.isfinite(rated)) else None
                quality = calibration_quality(distances, labels, folds, confidence.astype(float), correct, fits,
                                              min_pairs=MIN_CALIBRATION_PAIRS, shipped=shipped is not None,
                                              qualities=qualities)
                variant = results_variant(session, dataset, model) or "paper"
                view = self._views[key] = CalibrationView(distances, labels, fits, quality, name, shipped, variant)
        return view

    def warm_calibration_views(self, factory: sessionmaker[Session]) -> threading.Thread:
        """Compute every stored model's calibration view in the background, so that the landing page is quick on
        its first visit too (the baselines' fold-wise fits take seconds on 6,000 pairs). A failure here only
        means the page computes the view itself, and reports the error there."""
        def work() -> None:
            try:
                with factory() as session:
                    for dataset in dataset_summaries(session):
                        for model in dataset.models:
                            self.calibration_view(session, dataset.name, model.name)
            except Exception:  # noqa: BLE001 - see the docstring
                return

        thread = threading.Thread(target=work, name="xfv-calibration-views", daemon=True)
        thread.start()
        return thread

    # -- X-Maps of stored pairs ------------------------------------------------------------------------------
    def explain_stored_pair(self, pair_id: int, model_name: str) -> Task:
        return self.tasks.submit(xmap_task_key(pair_id, model_name))

    def xmap_status(self, session: Session, pair_id: int, model_name: str) -> XMapStatus:
        """Which of the pair's X-Maps are stored for the model, the task computing them, if any (with the maps it
        has so far, partial or final, and the time left), and while they are not stored, what computing them will
        cost."""
        record = get_model(session, model_name)
        maps = stored_xmaps(session, pair_id, record)
        key = xmap_task_key(pair_id, model_name)
        task = self.tasks.running(key)
        stages, eta = self.partials.running(key, task)
        stages = dict.fromkeys(sorted({m for m, _ in maps}), FINAL) if not stages and maps else stages
        urls = {f"{m}-{i}": f"/api/pairs/{pair_id}/xmaps/{model_name}/{m}/{i}.png"
                for (m, i) in sorted(set(maps) | {(m, i) for m in stages for i in (1, 2)})}
        ready = len(maps) == 2 * len(METHODS)
        return XMapStatus(model=model_name, ready=ready, methods=sorted({m for m, _ in maps}),
                          task=TaskOut.of(task) if task else None, urls=urls,
                          map_states=map_states(stages),  # type: ignore[arg-type]
                          eta_seconds=None if eta is None else round(eta, 1),
                          cancel=f"/api/pairs/{pair_id}/xmaps/{model_name}/task",
                          estimate=None if ready else self.estimate(session, record))

    def cancel_pair_task(self, pair_id: int, model_name: str) -> Task | None:
        """Stop the task computing the pair's X-Maps with the model before its next batch (it ends ``cancelled``;
        its partial maps are dropped, nothing of them stored); None when none is running."""
        key = xmap_task_key(pair_id, model_name)
        task = self.tasks.running(key)
        stopped = self.tasks.stop(task.id) if task is not None else None
        self.partials.drop(key)
        return stopped

    def estimate(self, session: Session, record: ModelRecord) -> CostEstimate:
        """The cost of a pair's X-Maps with the model: both faces' passes at the speed last measured here (by an
        X-Map job, or measured now on a few batches if none ran yet)."""
        passes = 2 * passes_per_face()  # the platform's explainer (make_explainer) for any model
        if (record.passes_per_second is None and record.name in runnable_models()
                and record.fingerprint == self.model(record.name).fingerprint):
            with self._rate_lock:  # one measurement at a time: they would slow each other down
                session.refresh(record)
                if record.passes_per_second is None:
                    rate = measure_rate(self.model(record.name))
                    with transaction(self.factory) as writer:
                        record_rate(writer, record.id, rate)
                    session.refresh(record)
        rate = record.passes_per_second
        measured = record.rate_measured_at.isoformat() if record.rate_measured_at else None
        return CostEstimate(passes=passes, passes_per_second=rate, seconds=passes / rate if rate else None,
                            measured_at=measured)


def xmap_task_key(pair_id: int, model_name: str) -> str:
    return f"pair:{pair_id}:{model_name}"


@lru_cache(maxsize=512)
def stored_face(root: str, relative: str, model_name: str) -> np.ndarray:
    """The aligned crop of a dataset image for a model's template (cached: detection is the slow part); only
    files under the dataset's root (:func:`served_path`)."""
    served_path(root, relative)
    return aligned_face(root, relative, embedding_model(model_name))
