"""Alembic environment of the history store, run only from ``sendready.store.migrate``.

The caller passes an open connection in ``config.attributes["connection"]`` with its own
transaction and lock, so concurrent starts of several processes migrate once.
"""

from __future__ import annotations

from alembic import context

from sendready.store.models import Base


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the history migrations with `sendready db upgrade`")
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
