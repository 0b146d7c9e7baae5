"""Settings, from the environment (prefix ``XFV_``) or given to :func:`xfv.web.main.create_app`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """``XFV_DB_URL``, ``XFV_MAX_UPLOAD_BYTES``, ``XFV_MAX_UPLOAD_PIXELS``, ``XFV_UPLOAD_MODEL``, ..."""

    model_config = SettingsConfigDict(env_prefix="XFV_", extra="ignore")

    db_url: str | None = Field(None, description="database URL; default: SQLite in the user data folder")
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0, description="largest accepted upload, per image")
    max_upload_pixels: int = Field(40_000_000, gt=0, description="largest accepted image, width x height")
    upload_model: str = Field("dlib", description="model for uploaded pairs unless the request names one")
    provider: str = Field("auto", description="engine of the ONNX models (dlib, sface, onnx): auto, cpu, openvino, "
                                              "cuda or tensorrt (docs/models.md, 'Engines')")
    precision: str = Field("fp32", description="fp32, or int8 / bf16 (reduced precision: another model "
                                               "configuration, which needs its own precomputed results)")
    thumbnail_size: int = Field(96, ge=16, le=512)
    upload_ttl_hours: float = Field(24.0, gt=0, description="uploaded pairs are deleted after this many hours")
    uploads_kept: int = Field(500, ge=1, description="at most this many uploaded pairs are kept (the newest)")
    upload_workers: int = Field(2, ge=1, description="threads detecting and embedding uploaded photos")
    upload_queue: int = Field(4, ge=0, description="uploads waiting for a thread; more are refused with 503")
    task_workers: int = Field(2, ge=1, description="threads computing X-Maps on demand")
    task_queue: int = Field(8, ge=0, description="X-Map tasks waiting for a thread; more are refused with 503")
    retry_after: int = Field(5, ge=1, description="seconds a client refused with 503 is told to wait")
