"""Headers every answer carries: a content security policy, no framing, no MIME sniffing, no referrer to other
sites, and ``Cache-Control: no-store`` on everything derived from an uploaded photo (an ASGI middleware).

The pages load scripts, styles and images from this site only (no inline script or style); Swagger UI and ReDoc
(``/docs``, ``/redoc``) start from an inline script and style themselves inline, so their policy allows that.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
               "frame-ancestors 'none'")
DOCS = ("/docs", "/redoc")
NEVER_STORED = ("/api/uploads/", "/api/verify", "/api/explain", "/api/tasks/")  # uploads (biometric data) and tasks
SECURITY = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}


class SecurityHeaders:
    """Adds the headers of the module docstring to every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        extra = {**SECURITY, "Content-Security-Policy": DOCS_POLICY if path in DOCS else PAGE_POLICY}
        if path.startswith(NEVER_STORED):
            extra["Cache-Control"] = "no-store"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
