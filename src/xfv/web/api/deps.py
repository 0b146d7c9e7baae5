"""Dependencies of the routes: the session factory, a DB session per request, the settings, the services;
the parameter types shared by several routes (ids within the database's integer range) and their error answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session, sessionmaker

from xfv.web.core.config import Settings
from xfv.web.schemas import DB_INT_MAX, TEXT, ErrorOut
from xfv.web.services import Services
from xfv.xmaps import IMAGE_SIZE, METHODS

PairId = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="pair id")]
ModelName = Annotated[str, Path(min_length=1, max_length=100, pattern=TEXT, description="model name")]
ImageIndex = Annotated[int, Path(ge=1, le=2, description="1 or 2")]
Method = Annotated[int, Path(ge=1, le=max(METHODS), description="X-Map method 1-4")]
HexId = Annotated[str, Path(min_length=1, max_length=64, pattern=TEXT, description="id given when it was created")]
Scale = Annotated[int, Query(ge=0, le=IMAGE_SIZE - 1,  # the largest patch OcclusionConfig accepts
                             description="0: the multi-scale map; a patch size (7, 14, 28): its map")]


def _error(description: str) -> dict:
    return {"model": ErrorOut, "description": description}


BUSY = {503: _error("the server, its queue or its database is busy or unavailable: retry after the Retry-After "
                    "header's seconds")}
ERRORS = {404: _error("not found"), 422: _error("invalid parameter or input"), **BUSY}
UPLOAD_ERRORS = {400: _error("malformed multipart body"), 408: _error("the body did not arrive in time"),
                 411: _error("no Content-Length"), 413: _error("too large (bytes or pixels)"), **BUSY}
PNG = {200: {"content": {"image/png": {}}}}


def get_factory(request: Request) -> sessionmaker[Session]:
    return request.app.state.factory


FactoryDep = Annotated[sessionmaker[Session], Depends(get_factory)]


def get_session(factory: FactoryDep) -> Iterator[Session]:
    with factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
