"""Database engine, sessions and schema migrations (Alembic, scripts in ``xfv/store/migrations``).

The URL comes from ``--db``, else the environment variable ``XFV_DB_URL``, else a SQLite file in the user's data
folder (``platformdirs.user_data_dir("xfv")``). PostgreSQL works by URL: ``postgresql+psycopg://user@host/db``.
How long the database may keep a caller waiting, and how many connections it holds, is a :class:`DatabaseLimits`
(the web server's come from its settings).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import platformdirs
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from xfv.errors import DatabaseUnavailableError

MIGRATIONS = Path(__file__).parent / "migrations"
# Errors that say the database is out of reach for now (down, hung, locked, no free connection), not that the
# request was wrong: worth a retry, and a 503 for a client.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, PoolTimeoutError)
T = TypeVar("T")


@dataclass(frozen=True)
class DatabaseLimits:
    """The connection pool and how long a caller may wait on the database.

    ``pool_size`` connections are kept, ``max_overflow`` more opened under load; a caller waits at most
    ``pool_timeout`` s for a free one. PostgreSQL: ``connect_timeout`` s to establish a connection and
    ``statement_timeout`` s per statement (None: no limit). SQLite: ``busy_timeout`` s for another writer's lock.
    The defaults suit batch commands (``xfv ingest``, ``precompute``), which may queue behind another writer;
    the web server sets tighter ones (``xfv.web.core.config.Settings``).
    """

    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout: float = 30.0
    connect_timeout: float | None = None
    statement_timeout: float | None = None
    busy_timeout: float = 30.0


def default_db_url() -> str:
    """``sqlite:///<user data dir>/xfv.db``."""
    return f"sqlite:///{Path(platformdirs.user_data_dir('xfv')) / 'xfv.db'}"


def resolve_db_url(url: str | None = None) -> str:
    """The URL to use: ``url`` if given, else ``$XFV_DB_URL``, else :func:`default_db_url`."""
    return url or os.environ.get("XFV_DB_URL") or default_db_url()


def create_db_engine(url: str | None = None, limits: DatabaseLimits | None = None) -> Engine:
    """An engine for ``url`` (see :func:`resolve_db_url`) within ``limits``; connections are checked before use,
    so a database that comes back after an outage is used again without a restart. SQLite gets foreign keys,
    WAL, ``secure_delete`` (deleted rows, e.g. an uploaded face, are overwritten, not left in free pages) and a
    parent folder."""
    url = resolve_db_url(url)
    limits = limits or DatabaseLimits()
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"Invalid database URL {url!r}; expected e.g. sqlite:///path/xfv.db or "
                         "postgresql+psycopg://user@host/db.") from None
    pool = {"pool_size": limits.pool_size, "max_overflow": limits.max_overflow, "pool_timeout": limits.pool_timeout,
            "pool_pre_ping": True}
    if parsed.get_backend_name() != "sqlite":
        connect_args: dict = {}
        if limits.connect_timeout is not None:
            connect_args["connect_timeout"] = max(1, round(limits.connect_timeout))
        if limits.statement_timeout is not None:  # added to any options of the URL (e.g. a search_path)
            options = parsed.query.get("options", "")
            options = " ".join(options) if isinstance(options, tuple) else options
            connect_args["options"] = f"{options} -c statement_timeout={round(limits.statement_timeout * 1000)}".strip()
        return create_engine(url, connect_args=connect_args, **pool)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": limits.busy_timeout}, **pool)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    return engine


def display_url(engine: Engine) -> str:
    """The engine's URL without its password, for messages."""
    return engine.url.render_as_string(hide_password=True)


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


def open_database(url: str | None = None, limits: DatabaseLimits | None = None) -> sessionmaker[Session]:
    """Create the engine, migrate the schema and return a session factory.

    :class:`~xfv.errors.DatabaseUnavailableError` (one line naming the database) when it cannot be reached or is
    not a database at all (e.g. a damaged SQLite file).
    """
    engine = create_db_engine(url, limits)
    try:
        migrate(engine)
    except DatabaseError as error:
        engine.dispose()
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise DatabaseUnavailableError(f"Cannot open the database {display_url(engine)}: {reason}.") from None
    except CommandError as error:  # a schema revision this version does not know: written by another version
        engine.dispose()
        raise DatabaseUnavailableError(f"Cannot open the database {display_url(engine)}: {error} (written by "
                                       f"another version of xfv; this one knows up to {head_revision()}).") from None
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any error (one unit of work)."""
    with factory() as session, session.begin():
        yield session


def write_with_retry(factory: sessionmaker[Session], write: Callable[[Session], T], *, deadline: float) -> T:
    """``write(session)`` in a :func:`transaction`, tried again after a transient error (:data:`TRANSIENT_ERRORS`:
    the database down, hung or locked) with growing pauses, until ``deadline`` seconds have passed; then the
    last error is raised."""
    started, pause = time.monotonic(), 0.25
    while True:
        try:
            with transaction(factory) as session:
                return write(session)
        except TRANSIENT_ERRORS:
            if time.monotonic() - started + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(2 * pause, 2.0)


def scrub(factory: sessionmaker[Session]) -> None:
    """After deleting data that must not outlive its deletion (uploads): SQLite moves the write-ahead log into
    the database file (where ``secure_delete`` has zeroed the freed pages) and empties it. PostgreSQL frees dead
    rows by its own (auto)vacuum; nothing is done here."""
    engine = factory.kw["bind"]
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
