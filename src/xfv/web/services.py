"""What the routes call beyond plain queries: model instances, uploaded pairs, X-Map tasks, image rendering.

Routes stay thin; the work itself is done by :mod:`xfv.jobs` and the domain packages.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy.orm import Session, sessionmaker

from xfv.confidence import Calibration, default_calibration
from xfv.errors import NotFoundError, TooLargeError, XfvError
from xfv.faces import FaceDetector, detect_and_align, load_image, model_detector
from xfv.jobs import aligned_face, explain_pair, make_explainer
from xfv.models import EmbeddingModel, create_model, list_models
from xfv.store.models import Dataset
from xfv.store.queries import get_model, latest_calibration, stored_xmaps
from xfv.verification import cosine_distance
from xfv.web.core.config import Settings
from xfv.web.schemas import TaskOut, XMapStatus
from xfv.web.tasks import Task, TaskRunner
from xfv.xmaps import METHODS, blend, colorize
from xfv.xmaps.occlusion import IMAGE_SIZE


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
    """Decode an uploaded photo after checking its size in bytes and pixels.

    Raises ``TooLargeError`` over a limit and ``XfvError`` for anything else refused.
    """
    if not data:
        raise XfvError(f"{field_name}: the file is empty.")
    if len(data) > settings.max_upload_bytes:
        raise TooLargeError(f"{field_name}: {len(data)} bytes is more than the limit of {settings.max_upload_bytes} bytes.")
    try:
        with PILImage.open(io.BytesIO(data)) as header:
            width, height = header.size
    except (PILImage.UnidentifiedImageError, OSError, SyntaxError, PILImage.DecompressionBombError) as error:
        raise XfvError(f"{field_name}: not an image file ({error}).") from None
    if width * height > settings.max_upload_pixels:
        raise TooLargeError(f"{field_name}: {width} x {height} pixels is more than the limit of "
                            f"{settings.max_upload_pixels} pixels.")
    try:
        return load_image(data)
    except ValueError as error:
        raise XfvError(f"{field_name}: {error}") from None


def align_upload(image: np.ndarray, field_name: str, model: EmbeddingModel) -> np.ndarray:
    """The largest face as a 112 x 112 crop in the model's template (found by the model's own detector, if it
    has one); 422 when there is none."""
    try:
        return detect_and_align(image, alignment=model.config.alignment, size=IMAGE_SIZE,
                                detector=model_detector(FaceDetector("hog+cnn"), model.config.detector),
                                name=field_name).crop
    except ValueError as error:
        raise XfvError(f"{field_name}: no face found ({error}).") from None


@dataclass
class Verdict:
    distance: float
    threshold: float
    prediction: str
    confidence: float | None
    calibration: str


@dataclass
class UploadedPair:
    id: str
    model: str
    face1: np.ndarray
    face2: np.ndarray
    verdict: Verdict
    maps: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    task_id: str | None = None


class Services:
    """State shared by the routes of one app: settings, the task runner and uploaded pairs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tasks = TaskRunner(settings.task_workers)
        self._uploads: OrderedDict[str, UploadedPair] = OrderedDict()
        self._lock = threading.Lock()

    # -- calibration and verification ---------------------------------------------------------------------
    def calibration(self, session: Session, model_name: str) -> tuple[Calibration, str]:
        """The model's calibration: fitted on a stored dataset if there is one, else the bundled default."""
        try:
            record = latest_calibration(session, get_model(session, model_name))
        except NotFoundError:
            record = None
        if record is not None:
            dataset = session.get(Dataset, record.dataset_id)
            return Calibration.from_dict(record.parameters), f"fitted on {dataset.name if dataset else '?'}"
        calibration = default_calibration(model_name)
        if calibration is None:
            raise NotFoundError(f"Model {model_name!r} has no calibration: precompute a dataset with it first.")
        return calibration, "bundled default"

    def verify(self, session: Session, model: EmbeddingModel, face1: np.ndarray, face2: np.ndarray) -> Verdict:
        calibration, source = self.calibration(session, model.name)
        embeddings = model.embed(np.stack([face1, face2]))
        distance = float(cosine_distance(embeddings[0], embeddings[1]))
        confidence = float(np.asarray(calibration.confidence(np.array([distance])))[0])
        prediction = "same" if distance <= calibration.threshold else "different"
        return Verdict(distance, float(calibration.threshold), prediction, confidence, source)

    # -- uploaded pairs --------------------------------------------------------------------------------------
    def add_upload(self, model: EmbeddingModel, face1: np.ndarray, face2: np.ndarray, verdict: Verdict) -> UploadedPair:
        upload = UploadedPair(uuid.uuid4().hex, model.name, face1, face2, verdict)
        with self._lock:
            self._uploads[upload.id] = upload
            while len(self._uploads) > self.settings.uploads_kept:
                self._uploads.popitem(last=False)
        return upload

    def upload(self, upload_id: str) -> UploadedPair:
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None:
            raise NotFoundError(f"No uploaded pair {upload_id!r} (uploads are kept for the last "
                                f"{self.settings.uploads_kept} pairs only).")
        return upload

    def explain_upload(self, upload: UploadedPair) -> Task:
        def work(progress) -> dict:
            model = embedding_model(upload.model)
            explanation = make_explainer(model).explain(upload.face1, upload.face2, methods=METHODS, progress=progress)
            upload.maps = {(m, i): explanation.map(m, i) for m in METHODS for i in (1, 2)}
            return {"upload": upload.id}

        task = self.tasks.submit(f"upload:{upload.id}", work)
        upload.task_id = task.id
        return task

    # -- X-Maps of stored pairs ------------------------------------------------------------------------------
    def explain_stored_pair(self, factory: sessionmaker[Session], pair_id: int, model_name: str) -> Task:
        def work(progress) -> dict:
            explain_pair(factory, pair_id, embedding_model(model_name), progress=progress)
            return {"pair": pair_id, "model": model_name}

        return self.tasks.submit(xmap_task_key(pair_id, model_name), work)


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
