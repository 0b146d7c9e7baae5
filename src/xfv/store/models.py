"""The platform's database schema (SQLAlchemy 2): datasets, images, pairs, models, results, calibrations, X-Maps.

Every change here needs a migration in ``xfv/store/migrations/versions`` (``tests/test_store.py`` checks that
the migrated schema matches these models).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Dataset(Base):
    """A pair list and the folder its image paths are relative to."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    format: Mapped[str] = mapped_column(String(20))
    root: Mapped[str] = mapped_column(Text)
    pairs_file: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Image(Base):
    """One image file of a dataset; ``path`` is relative to the dataset root, ``sha256`` its content hash.

    ``quality`` (0-100) combines ``sharpness`` (variance of the Laplacian), ``brightness`` and ``contrast``
    of the aligned crop (see ``xfv.quality.heuristic.quality_score``); ``aligned`` is False when no face was found and
    the measures come from the centre of the photo instead.
    """

    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("dataset_id", "path", name="uq_images_dataset_path"),
        Index("ix_images_dataset_identity", "dataset_id", "identity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(500))
    identity: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    quality: Mapped[float] = mapped_column(Float)
    sharpness: Mapped[float] = mapped_column(Float)
    brightness: Mapped[float] = mapped_column(Float)
    contrast: Mapped[float] = mapped_column(Float)
    aligned: Mapped[bool] = mapped_column(Boolean)


class Pair(Base):
    """A verification pair: ``position`` is its index in the pair list, ``label`` 1 genuine, 0 imposter."""

    __tablename__ = "pairs"
    __table_args__ = (
        UniqueConstraint("dataset_id", "position", name="uq_pairs_dataset_position"),
        Index("ix_pairs_dataset_fold", "dataset_id", "fold"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    fold: Mapped[int] = mapped_column(Integer)
    label: Mapped[int] = mapped_column(Integer)
    image1_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    image2_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))

    dataset: Mapped[Dataset] = relationship()
    image1: Mapped[Image] = relationship(foreign_keys=[image1_id])
    image2: Mapped[Image] = relationship(foreign_keys=[image2_id])


class ModelRecord(Base):
    """A face model by registry name; ``fingerprint`` identifies the outputs its results were computed with."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    # X-Map forward passes per second of the model's last X-Map job here (the viewer's cost estimate)
    passes_per_second: Mapped[float | None] = mapped_column(Float, nullable=True)
    rate_measured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Result(Base):
    """One model's verdict on one pair, with the out-of-fold threshold and C-Score (method.md §0-1)."""

    __tablename__ = "results"
    __table_args__ = (
        UniqueConstraint("pair_id", "model_id", name="uq_results_pair_model"),
        Index("ix_results_model_confidence", "model_id", "confidence"),
        Index("ix_results_model_distance", "model_id", "distance"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    distance: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    prediction: Mapped[bool] = mapped_column(Boolean)  # True: "same"
    correct: Mapped[bool] = mapped_column(Boolean)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    # where threshold and confidence come from: out of fold, or the shipped calibration (small datasets)
    calibration: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # what computed the embeddings (runtime, provider, precision, threads): EmbeddingModel.engine
    engine: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # the detector that found each face in the model's pipeline; "centre": none did, the photo's centre was compared
    face1: Mapped[str | None] = mapped_column(String(10), nullable=True)
    face2: Mapped[str | None] = mapped_column(String(10), nullable=True)
    cscore: Mapped[str | None] = mapped_column(String(20), nullable=True)  # the C-Score variant of the confidence


class ImageQualityRecord(Base):
    """A model-based quality of one image for one model (``measure``: ``stability``, docs/quality.md): how far the
    model's embedding of the image moves under small perturbations, ``1 - mean distance``; higher is better.

    Per image *and* model: each model has its own view of a photo. Written by ``xfv precompute`` with the model's
    results; the explorer sorts and filters on it."""

    __tablename__ = "image_qualities"
    __table_args__ = (
        UniqueConstraint("image_id", "model_id", name="uq_image_qualities_image_model"),
        Index("ix_image_qualities_model_quality", "model_id", "quality"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    measure: Mapped[str] = mapped_column(String(40))
    quality: Mapped[float] = mapped_column(Float)


class CalibrationRecord(Base):
    """A threshold and C-Score curve fitted for a model on a dataset: per fold (training folds = all others)
    or, with ``fold`` NULL, on all pairs (the calibration used for uploaded pairs)."""

    __tablename__ = "calibrations"
    __table_args__ = (Index("ix_calibrations_model_dataset", "model_id", "dataset_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    fold: Mapped[int | None] = mapped_column(Integer, nullable=True)
    threshold: Mapped[float] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    parameters: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class XMapRecord(Base):
    """One normalised X-Map (112 x 112 in [-1, 1], stored by ``xfv.store.maps.encode_map``) of one image of a pair.

    ``scale`` 0 is the final multi-scale map (Eq. 10); 7, 14, 28 (the patch sizes) are that patch size's map
    (Eq. 9), blurred and normalised the same way.
    """

    __tablename__ = "xmaps"
    __table_args__ = (UniqueConstraint("pair_id", "model_id", "method", "image", "scale",
                                       name="uq_xmaps_pair_model_method_image_scale"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    method: Mapped[int] = mapped_column(Integer)
    image: Mapped[int] = mapped_column(Integer)
    scale: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    data: Mapped[bytes] = mapped_column(LargeBinary)
    options: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TaskRecord(Base):
    """Background work of the web app (X-Maps of a stored pair or of an upload), kept across restarts.

    ``key`` names the work (``pair:<id>:<model>`` or ``upload:<id>``) so that an unfinished task can be queued
    again at start-up; ``state`` is ``queued``, ``running``, ``done`` or ``error``.
    """

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_key_state", "key", "state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(10))
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class UploadRecord(Base):
    """A pair uploaded through the web app: the two aligned face crops (PNG), the verdict and its X-Map task.

    The photos themselves are never stored; uploads expire after the ``upload_ttl_hours`` setting, or are deleted
    by their user.
    """

    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(100))
    face1: Mapped[bytes] = mapped_column(LargeBinary)
    face2: Mapped[bytes] = mapped_column(LargeBinary)
    distance: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    prediction: Mapped[str] = mapped_column(String(10))
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    calibration: Mapped[str] = mapped_column(String(200))
    engine: Mapped[str | None] = mapped_column(String(300), nullable=True)
    cscore: Mapped[str | None] = mapped_column(String(20), nullable=True)  # the C-Score variant of the confidence
    quality1: Mapped[float | None] = mapped_column(Float, nullable=True)  # the faces' qualities (calibration's measure)
    quality2: Mapped[float | None] = mapped_column(Float, nullable=True)
    quality_note: Mapped[str | None] = mapped_column(Text, nullable=True)  # a face outside the calibration's qualities
    task_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # what detection found: {"found": [faces in photo 1, in photo 2], "notes": ["image1: 3 faces found, ..."]}
    faces: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UploadXMapRecord(Base):
    """One X-Map of an uploaded pair (``.npy`` bytes as in :class:`XMapRecord`)."""

    __tablename__ = "upload_xmaps"
    __table_args__ = (UniqueConstraint("upload_id", "method", "image", "scale",
                                       name="uq_upload_xmaps_upload_method_image_scale"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upload_id: Mapped[str] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"))
    method: Mapped[int] = mapped_column(Integer)
    image: Mapped[int] = mapped_column(Integer)
    scale: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # as XMapRecord.scale
    data: Mapped[bytes] = mapped_column(LargeBinary)
