"""Dependencies of the routes: the session factory, a DB session per request, the settings, the services.

Tests override :func:`get_factory` to point every route (and the background tasks) at a temporary database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from xfv.web.core.config import Settings
from xfv.web.services import Services


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
