"""Alembic run from code: the migrations ship inside the package, no alembic.ini needed.

Several processes may open the store at the same moment (web workers, RQ workers); each
upgrade holds a database-wide lock for its transaction, so the schema is created once and
the others find it at head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).resolve().with_name("migrations")

#: Key of the PostgreSQL advisory lock that serialises migrations ("SRDB" in ASCII).
ADVISORY_LOCK_KEY = 0x53524442


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config pointing into the package, optionally bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration shipped with this version of SendReady."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # the package ships at least the initial migration
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Migrate the database to head (a no-op when it is there already); returns head."""
    with engine.connect() as connection:
        _lock_for_migration(connection)
        command.upgrade(alembic_config(connection), "head")
        connection.commit()
    return head_revision()


def _lock_for_migration(connection: Connection) -> None:
    """Take the database's migration lock for the current transaction.

    PostgreSQL: a transaction-scoped advisory lock (its DDL is transactional). SQLite:
    BEGIN IMMEDIATE, which holds the file's write lock until commit.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
