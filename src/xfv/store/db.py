"""Database engine, sessions and schema migrations (Alembic, scripts in ``xfv/store/migrations``).

The URL comes from ``--db``, else the environment variable ``XFV_DB_URL``, else a SQLite file in the user's data
folder (``platformdirs.user_data_dir("xfv")``). PostgreSQL works by URL: ``postgresql+psycopg://user@host/db``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def default_db_url() -> str:
    """``sqlite:///<user data dir>/xfv.db``."""
    return f"sqlite:///{Path(platformdirs.user_data_dir('xfv')) / 'xfv.db'}"


def resolve_db_url(url: str | None = None) -> str:
    """The URL to use: ``url`` if given, else ``$XFV_DB_URL``, else :func:`default_db_url`."""
    return url or os.environ.get("XFV_DB_URL") or default_db_url()


def create_db_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (see :func:`resolve_db_url`); SQLite gets foreign keys, WAL and a parent folder."""
    url = resolve_db_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"Invalid database URL {url!r}; expected e.g. sqlite:///path/xfv.db or "
                         "postgresql+psycopg://user@host/db.") from None
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest schema revision this version of xfv knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None: empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest); a database already there is left alone."""
    if revision == "head" and current_revision(engine) == head_revision():
        return
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Take the schema back to ``revision`` (``base``: no tables), e.g. before restoring an older backup."""
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def open_database(url: str | None = None) -> sessionmaker[Session]:
    """Create the engine, migrate the schema and return a session factory."""
    engine = create_db_engine(url)
    migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any error (one unit of work)."""
    with factory() as session, session.begin():
        yield session
