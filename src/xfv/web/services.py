"""What the routes call beyond plain queries: model instances, uploaded pairs, X-Map tasks, image rendering.

Routes stay thin; the work itself is done by :mod:`xfv.jobs` and the domain packages.
"""

from __future__ import annotations

import io
import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy.orm import Session, sessionmaker

from xfv.confidence import Calibration
from xfv.errors import BusyError, NoFaceError, NotFoundError, TooLargeError, XfvError
from xfv.faces import load_image
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
    make_explainer,
    out_of_fold_name,
    photo_face,
    shipped_calibration,
    usable_calibration,
    verify_faces,
)
from xfv.models import EmbeddingModel, create_model, list_models
from xfv.store.db import transaction
from xfv.store.models import UploadRecord, utcnow
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
from xfv.store.uploads import expire_uploads, get_upload, save_upload_maps, upload_task_key
from xfv.web.core.config import Settings
from xfv.web.schemas import TaskOut, XMapStatus
from xfv.web.tasks import BoundedPool, Task, TaskRunner, Work
from xfv.xmaps import METHODS, Progress, blend, colorize


@lru_cache(maxsize=8)
def embedding_model(name: str) -> EmbeddingModel:
    """One shared instance per registered model name."""
    if name not in list_models():
        raise NotFoundError(f"Unknown model {name!r}; expected one of {sorted(list_models())}.")
    return create_model(name)


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
    """A JPEG of at most ``size`` pixels on its longer side."""
    with PILImage.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((size, size))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


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
    """Two uploaded photos after detection and alignment (the 112 px crops), and the model's verdict on them."""

    model: EmbeddingModel
    face1: np.ndarray
    face2: np.ndarray
    verdict: Verdict


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
    and tasks are kept in the database, so a restart loses neither.
    """

    def __init__(self, settings: Settings, factory: sessionmaker[Session]) -> None:
        self.settings, self.factory = settings, factory
        self.uploads = BoundedPool("upload", settings.upload_workers, settings.upload_queue, settings.retry_after)
        self.tasks = TaskRunner(factory, BoundedPool("task", settings.task_workers, settings.task_queue,
                                                     settings.retry_after), self._work_for)
        self._views: dict[tuple, CalibrationView] = {}
        self._compute_lock = threading.Lock()

    def start(self) -> None:
        """At start-up: drop expired uploads, queue again the tasks a previous run left unfinished."""
        self.expire_uploads()
        self.tasks.resume()

    def shutdown(self) -> None:
        self.uploads.shutdown()
        self.tasks.shutdown()

    # -- calibration and verification ---------------------------------------------------------------------
    def calibration(self, session: Session, model: EmbeddingModel) -> tuple[Calibration, str]:
        """The model's newest all-pairs calibration in the database if fitted on enough pairs, else the shipped
        one, with its name (:func:`xfv.jobs.usable_calibration` says why)."""
        try:
            record = latest_calibration(session, get_model(session, model.name))
        except NotFoundError:
            record = None
        stored = Calibration.from_dict(record.parameters) if record is not None else None
        return usable_calibration(stored, model.name, model.fingerprint)

    def verify(self, model: EmbeddingModel, face1: PhotoFace, face2: PhotoFace) -> Verdict:
        with self.factory() as session:
            calibration, name = self.calibration(session, model)
        return verify_faces(model, face1, face2, calibration, name)

    def prepare(self, data1: bytes, data2: bytes, model_name: str | None) -> PreparedPair:
        """Decode, detect, align and compare two uploaded photos (run it in :attr:`uploads`)."""
        model = embedding_model(model_name or self.settings.upload_model)
        faces = [align_upload(check_upload(data, name, self.settings), name, model)
                 for name, data in (("image1", data1), ("image2", data2))]
        return PreparedPair(model, faces[0].crop, faces[1].crop, self.verify(model, faces[0], faces[1]))

    # -- uploaded pairs --------------------------------------------------------------------------------------
    def explain_photos(self, data1: bytes, data2: bytes, model_name: str | None) -> UploadRecord:
        """:meth:`prepare`, then store the pair and queue its X-Maps (``BusyError`` when the task queue is full)."""
        self.tasks.check_room()
        pair = self.prepare(data1, data2, model_name)
        verdict = {key: value for key, value in asdict(pair.verdict).items() if key != "model"}  # stored fields
        upload = UploadRecord(id=uuid.uuid4().hex, model=pair.model.name, face1=png_bytes(pair.face1),
                              face2=png_bytes(pair.face2), **verdict)
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

    def expire_uploads(self) -> int:
        before = utcnow() - timedelta(hours=self.settings.upload_ttl_hours)
        with transaction(self.factory) as session:
            return expire_uploads(session, before, self.settings.uploads_kept)

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
        with self.factory() as session:
            upload = get_upload(session, upload_id)
            model_name, face1, face2 = upload.model, png_face(upload.face1), png_face(upload.face2)
        explanation = make_explainer(embedding_model(model_name)).explain(face1, face2, methods=METHODS,
                                                                          progress=progress)
        with transaction(self.factory) as session:
            get_upload(session, upload_id)
            save_upload_maps(session, upload_id, {(m, i): explanation.map(m, i) for m in METHODS for i in (1, 2)})
        return {"upload": upload_id}

    def _explain_stored_pair(self, pair_id: int, model_name: str, progress: Progress) -> dict:
        explain_pair(self.factory, pair_id, embedding_model(model_name), progress=progress)
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
        """Which of the pair's X-Maps are stored for the model, and the task computing them, if any."""
        maps = stored_xmaps(session, pair_id, get_model(session, model_name))
        task = self.tasks.running(xmap_task_key(pair_id, model_name))
        urls = {f"{m}-{i}": f"/api/pairs/{pair_id}/xmaps/{model_name}/{m}/{i}.png" for (m, i) in sorted(maps)}
        return XMapStatus(model=model_name, ready=len(maps) == 2 * len(METHODS),
                          methods=sorted({m for m, _ in maps}), task=TaskOut.of(task) if task else None, urls=urls)


def xmap_task_key(pair_id: int, model_name: str) -> str:
    return f"pair:{pair_id}:{model_name}"


@lru_cache(maxsize=512)
def stored_face(root: str, relative: str, model_name: str) -> np.ndarray:
    """The aligned crop of a dataset image for a model's template (cached: detection is the slow part)."""
    return aligned_face(root, relative, embedding_model(model_name))
