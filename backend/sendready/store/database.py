"""Which database the history lives in, and one engine configured for it.

SQLite (the default, a file in the instance folder) runs in WAL mode with a busy timeout
so several processes can share one file; PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..config import ConfigError, Settings

#: Seconds a SQLite writer waits for another process's write to finish.
SQLITE_BUSY_SECONDS = 30
#: Seconds to wait for a PostgreSQL server to accept a connection (unless the URL says).
CONNECT_TIMEOUT = 10
#: File name of the default SQLite history in the instance folder.
SQLITE_FILE = "sendready.db"


class StoreConfigError(ConfigError):
    """SENDREADY_DATABASE_URL names a database the store cannot use."""


def database_url(settings: Settings) -> URL:
    """The history database of ``settings``: its URL, or SQLite in the instance folder.

    ``postgresql://`` and ``postgres://`` mean psycopg 3, the driver that is installed.
    """
    if not settings.database_url:
        folder = Path(settings.instance_path or "instance").resolve()
        return URL.create("sqlite", database=str(folder / SQLITE_FILE))
    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        raise StoreConfigError("SENDREADY_DATABASE_URL is not a database URL") from None
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        if not url.database or url.database == ":memory:":
            raise StoreConfigError("SQLite history needs a file, not an in-memory database")
        return url
    raise StoreConfigError(
        f"SENDREADY_DATABASE_URL: {url.drivername!r} is not supported; use postgresql or sqlite"
    )


def make_engine(url: URL) -> Engine:
    """One engine for the whole process (thread-safe; each store call takes a session)."""
    if url.get_backend_name() == "sqlite":
        assert url.database is not None  # database_url() refuses SQLite without a file
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # libpq waits for the operating system's TCP timeout (minutes) without one
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and one writer of several processes share the file; foreign keys
    make deleting a scan delete its reports and findings."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_SECONDS * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def safe_url(url: URL) -> str:
    """The URL as it may be printed or logged: never with its password."""
    return url.render_as_string(hide_password=True)
