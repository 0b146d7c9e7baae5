"""Settings, from the environment (prefix ``XFV_``) or given to :func:`xfv.web.main.create_app`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from xfv.store.db import DatabaseLimits


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
    sweep_seconds: float = Field(60.0, gt=0, description="how often expired uploads are deleted")
    upload_workers: int = Field(2, ge=1, description="threads detecting and embedding uploaded photos")
    upload_queue: int = Field(4, ge=0, description="uploads waiting for a thread; more are refused with 503")
    task_workers: int = Field(2, ge=1, description="threads computing X-Maps on demand")
    task_queue: int = Field(8, ge=0, description="X-Map tasks waiting for a thread; more are refused with 503")
    task_stall_seconds: float = Field(120.0, gt=0, description="a running task without progress for this long "
                                                                "is reported as failed")
    retry_after: int = Field(5, ge=1, description="seconds a client refused with 503 is told to wait")
    # requests and the database (xfv.web.limits, xfv.store.db.DatabaseLimits)
    request_workers: int = Field(8, ge=1, le=32, description="requests served at once, each with a database "
                                                              "connection; the others wait in line")
    request_timeout: float = Field(10.0, gt=0, description="seconds within which every request is answered "
                                                            "(503 with Retry-After when it cannot be)")
    upload_timeout: float = Field(60.0, gt=0, description="the same for an upload (verify, explain): its "
                                                           "photos' detection may take seconds")
    body_timeout: float = Field(10.0, gt=0, description="seconds a request body may pause before 408")
    body_min_rate: int = Field(32 * 1024, gt=0, description="bytes/s a request body must average (after "
                                                            "body_timeout s of grace) before 408")
    db_pool_timeout: float = Field(2.0, gt=0, description="seconds to wait for a free database connection")
    db_connect_timeout: float = Field(3.0, gt=0, description="PostgreSQL: seconds to establish a connection")
    db_statement_timeout: float = Field(5.0, gt=0, description="PostgreSQL: seconds a statement may run")
    db_busy_timeout: float = Field(5.0, gt=0, description="SQLite: seconds to wait for another writer's lock")
    # the HTTP server (xfv serve: xfv.web.server)
    header_timeout: float = Field(10.0, gt=0, description="seconds for a request's headers to arrive")
    keep_alive_timeout: int = Field(5, ge=1, description="seconds an idle connection is kept open")
    max_connections: int = Field(500, ge=16, description="open connections beyond which requests get 503")
    max_header_bytes: int = Field(16 * 1024, ge=4096, description="largest request line and headers")

    def database_limits(self) -> DatabaseLimits:
        """A connection for every request served at once and every background thread (uploads, tasks, the
        sweeper, the landing page's warm-up), so that none waits for one; the timeouts above."""
        pool = self.request_workers + self.upload_workers + self.task_workers + 2
        return DatabaseLimits(pool_size=pool, max_overflow=4, pool_timeout=self.db_pool_timeout,
                              connect_timeout=self.db_connect_timeout, statement_timeout=self.db_statement_timeout,
                              busy_timeout=self.db_busy_timeout)
