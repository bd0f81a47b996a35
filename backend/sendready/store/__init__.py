"""Check history: scans, their reports and findings, and regressions between scans.

SQLite in the instance folder by default, PostgreSQL with SENDREADY_DATABASE_URL; the
schema is migrated with Alembic when the store is opened.

The names are loaded on first use, so that importing ``sendready.store.cli`` to build the
command line does not import SQLAlchemy and Alembic (a third of a second) for every
``sendready`` command.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .database import StoreConfigError, database_url
    from .migrate import current_revision, head_revision, upgrade
    from .store import Store, UnknownScan, open_store
    from .views import DONE, PARTIAL, QUEUED, RUNNING, Regression, ScanView, StoredReport

_HOMES = {
    "StoreConfigError": "database",
    "database_url": "database",
    "current_revision": "migrate",
    "head_revision": "migrate",
    "upgrade": "migrate",
    "Store": "store",
    "UnknownScan": "store",
    "open_store": "store",
    "DONE": "views",
    "PARTIAL": "views",
    "QUEUED": "views",
    "RUNNING": "views",
    "Regression": "views",
    "ScanView": "views",
    "StoredReport": "views",
}

__all__ = [
    "DONE",
    "PARTIAL",
    "QUEUED",
    "RUNNING",
    "Regression",
    "ScanView",
    "Store",
    "StoreConfigError",
    "StoredReport",
    "UnknownScan",
    "current_revision",
    "database_url",
    "head_revision",
    "open_store",
    "upgrade",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
