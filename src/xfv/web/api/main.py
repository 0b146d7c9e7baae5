"""The API router: every resource module under ``/api``."""

from fastapi import APIRouter

from xfv.web.api.deps import ERRORS
from xfv.web.api.routes import datasets, models, pairs, tasks, uploads, xmaps

api_router = APIRouter(responses=ERRORS)
for module in (datasets, models, pairs, xmaps, tasks, uploads):
    api_router.include_router(module.router)
