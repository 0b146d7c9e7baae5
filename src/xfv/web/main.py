"""The FastAPI application: ``create_app(settings)``; ``xfv serve`` runs it with Uvicorn (:mod:`xfv.web.server`).

Errors are mapped here once: xfv's own (:mod:`xfv.errors`) by their ``http_status`` (503 with ``Retry-After``),
request validation to 422, a value the database cannot store to 422, the database out of reach (down, hung,
locked, no free connection) to 503 with ``Retry-After``, anything unexpected to 500 (logged with its traceback).
The API answers them as JSON (:class:`~xfv.web.schemas.ErrorOut`), the browser pages as a small HTML page with a
link home. :mod:`xfv.web.limits` bounds what a request may cost, :mod:`xfv.web.headers` adds the security headers.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException
from starlette.types import Scope

from xfv.store.db import TRANSIENT_ERRORS, open_database
from xfv.web import pages
from xfv.web.api.main import api_router
from xfv.web.core.config import Settings
from xfv.web.headers import SecurityHeaders
from xfv.web.limits import Limits, RequestLimits
from xfv.web.services import Services

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
MACHINE_PATHS = ("/api/", "/openapi.json", "/static/", "/plots/")  # answered in JSON; the rest are pages


def create_app(settings: Settings | None = None, factory: sessionmaker[Session] | None = None) -> FastAPI:
    """The app over the database of ``settings.db_url`` (or the given session factory, e.g. in tests)."""
    settings = settings or Settings()
    factory = factory or open_database(settings.db_url, settings.database_limits())
    services = Services(settings, factory)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        services.start()
        services.warm_calibration_views(factory)
        yield
        services.shutdown()

    app = FastAPI(title="xfv", description="Explainable face verification: pairs, C-Scores and X-Maps.",
                  version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings, app.state.factory, app.state.services = settings, factory, services

    app.add_middleware(RequestLimits, limits=Limits(
        workers=settings.request_workers, timeout=settings.request_timeout, upload_timeout=settings.upload_timeout,
        body_timeout=settings.body_timeout,
        body_min_rate=settings.body_min_rate, retry_after=settings.retry_after,
        upload_bytes=settings.max_upload_bytes), answer=_scope_error)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, error: ValueError) -> Response:
        """xfv's errors answer with their kind's status (:mod:`xfv.errors`); any other ValueError is a 422."""
        retry_after = getattr(error, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return error_response(request, getattr(error, "http_status", 422), str(error), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        messages = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
        return error_response(request, 422, "; ".join(messages), errors=_plain(error.errors()))

    @app.exception_handler(DataError)
    async def unstorable_value(request: Request, _error: DataError) -> Response:
        return error_response(request, 422, "A value in the request is outside what the database can store.")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        return error_response(request, error.status_code, str(error.detail), error.headers)

    async def database_unavailable(request: Request, error: Exception) -> Response:
        """The database is down, hung or locked, or no connection came free in time: 503, retry later."""
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0][:300]
        log.warning("%s %s: database unavailable: %s", request.method, request.url.path, reason)
        return error_response(request, 503, f"The database is unavailable or busy ({type(error).__name__}); "
                                            f"retry in {settings.retry_after} s.",
                              {"Retry-After": str(settings.retry_after)})

    for kind in TRANSIENT_ERRORS:
        app.add_exception_handler(kind, database_unavailable)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        """A bug: logged with its traceback (by the server, which sees the error again), answered as a 500."""
        return error_response(request, 500, f"Internal error ({type(error).__name__}); it has been logged.")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.ico", headers={"Cache-Control": "public, max-age=86400"})

    app.include_router(api_router, prefix="/api")
    app.include_router(pages.router)
    _add_api_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def error_response(request: Request, status: int, detail: str, headers: dict | None = None,
                   errors: list[dict] | None = None) -> Response:
    """JSON ``{"detail": ...}`` for the API (and other machine routes), an HTML page for the browser pages."""
    if request.url.path.startswith(MACHINE_PATHS) or request.url.path == "/api":
        body = {"detail": detail} if errors is None else {"detail": detail, "errors": errors}
        return JSONResponse(body, status_code=status, headers=headers)
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return pages.templates.TemplateResponse(request, "error.html", {"status": status, "title": title,
                                                                    "detail": detail},
                                            status_code=status, headers=headers)


def _scope_error(scope: Scope, status: int, detail: str, headers: dict[str, str]) -> Response:
    """:func:`error_response` for the middleware, which has a scope rather than a request."""
    return error_response(Request(scope), status, detail, headers)


def _add_api_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` and ReDoc at ``/redoc`` from assets served here (PyPI ``fastapi-offline`` ships
    them), so that they render without network."""
    import fastapi_offline

    assets = "/static/apidocs"
    app.mount(assets, StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="apidocs")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _with_site_links(get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                                                    swagger_js_url=f"{assets}/swagger-ui-bundle.js",
                                                    swagger_css_url=f"{assets}/swagger-ui.css",
                                                    swagger_favicon_url=f"{assets}/favicon.png"))

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _with_site_links(get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                                               redoc_js_url=f"{assets}/redoc.standalone.js",
                                               redoc_favicon_url=f"{assets}/favicon.png", with_google_fonts=False))


SITE_LINKS = ('<nav class="xfv-docs-nav"><a class="brand" href="/">xfv</a><a href="/">‹ back to the site</a>'
              '<a href="/explorer">Explorer</a><a href="/explain">Explain your pair</a><a href="/redoc">ReDoc</a>'
              '<a href="/docs">Swagger UI</a></nav>')


def _with_site_links(page: HTMLResponse) -> HTMLResponse:
    """An API docs page with the site's bar on top (the way back), styled by the site's stylesheet."""
    html = page.body.decode()
    html = html.replace("</head>", '<link rel="stylesheet" href="/static/docs.css"></head>', 1)
    html = html.replace("<body>", f"<body>{SITE_LINKS}", 1)
    return HTMLResponse(html, status_code=page.status_code)


def _plain(errors: list[dict]) -> list[dict]:
    """Validation errors without the raw input objects (which need not be JSON-serialisable)."""
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
