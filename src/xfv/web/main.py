"""The FastAPI application: ``create_app(settings)``; ``xfv serve`` runs it with Uvicorn."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker

from xfv.store.db import open_database
from xfv.web import pages
from xfv.web.api.main import api_router
from xfv.web.core.config import Settings
from xfv.web.services import Services

UPLOAD_PATHS = ("/api/verify", "/api/explain")
MULTIPART_OVERHEAD = 64 * 1024


def create_app(settings: Settings | None = None, factory: sessionmaker[Session] | None = None) -> FastAPI:
    """The app over the database of ``settings.db_url`` (or the given session factory, e.g. in tests)."""
    settings = settings or Settings()
    factory = factory or open_database(settings.db_url)
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        services.tasks.shutdown()

    app = FastAPI(title="xfv", description="Explainable face verification: pairs, C-Scores and X-Maps.",
                  version="0.1.0", lifespan=lifespan)
    app.state.settings, app.state.factory, app.state.services = settings, factory, services

    @app.middleware("http")
    async def limit_upload_size(request: Request, call_next):
        """Refuse an upload whose declared size exceeds two images' limit before reading its body."""
        if request.url.path in UPLOAD_PATHS:
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > 2 * settings.max_upload_bytes + MULTIPART_OVERHEAD:
                return JSONResponse({"detail": f"The upload ({length} bytes) is larger than the limit of "
                                               f"{settings.max_upload_bytes} bytes per image."}, status_code=413)
        return await call_next(request)

    @app.exception_handler(ValueError)
    async def bad_value(_request: Request, error: ValueError) -> JSONResponse:
        """xfv's errors answer with their kind's status (:mod:`xfv.errors`); any other ValueError is a 422."""
        return JSONResponse({"detail": str(error)}, status_code=getattr(error, "http_status", 422))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        messages = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
        return JSONResponse({"detail": "; ".join(messages), "errors": _plain(error.errors())}, status_code=422)

    app.include_router(api_router, prefix="/api")
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    return app


def _plain(errors: list[dict]) -> list[dict]:
    """Validation errors without the raw input objects (which need not be JSON-serialisable)."""
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
