"""Check history: scans, their reports and findings, and regressions between scans.

SQLite in the instance folder by default, PostgreSQL with SENDREADY_DATABASE_URL; the
schema is migrated with Alembic when the store is opened.
"""

from .database import StoreConfigError, database_url
from .migrate import current_revision, head_revision, upgrade
from .store import Store, UnknownScan, open_store
from .views import DONE, PARTIAL, QUEUED, RUNNING, Regression, ScanView, StoredReport

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
