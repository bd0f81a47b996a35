"""The history store's rules that need no database server: which database a setting
names, what input it refuses, and what the package exports."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.dialects import sqlite

import sendready.store
from sendready.config import ConfigError, Settings
from sendready.dns import InvalidInput
from sendready.store import Store, StoreConfigError, database_url, open_store
from sendready.store.database import SQLITE_FILE, safe_url
from sendready.store.migrate import MIGRATIONS
from sendready.store.models import UTCDateTime
from tests.conftest import ROOT


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(Settings(instance_path=str(tmp_path))) as opened:
        yield opened


def test_no_database_url_means_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    url = database_url(Settings(instance_path=str(tmp_path / "inst")))
    assert url.get_backend_name() == "sqlite"
    assert url.database == str((tmp_path / "inst" / SQLITE_FILE).resolve())


def test_the_default_instance_folder_is_dot_instance() -> None:
    assert database_url(Settings()).database == str(Path("instance").resolve() / SQLITE_FILE)


@pytest.mark.parametrize(
    "given", ["postgresql://u@db/h", "postgres://u@db/h", "postgresql+psycopg://u@db/h"]
)
def test_postgresql_urls_use_psycopg_3(given: str) -> None:
    url = database_url(Settings(database_url=given))
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.host, url.database) == ("u", "db", "h")


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("mysql://u@db/h", "'mysql' is not supported"),
        ("sqlite://", "needs a file"),
        ("sqlite:///:memory:", "needs a file"),
        ("not a url", "not a database URL"),
    ],
)
def test_unusable_database_urls_are_configuration_errors(given: str, reason: str) -> None:
    with pytest.raises(StoreConfigError, match=reason) as raised:
        database_url(Settings(database_url=given))
    assert isinstance(raised.value, ConfigError)  # the CLI prints it as one line


def test_a_printed_url_hides_the_password() -> None:
    url = database_url(Settings(database_url="postgresql://u:s3cret@db/h"))
    assert "s3cret" not in safe_url(url) and "***" in safe_url(url)


def test_history_days_is_a_validated_setting() -> None:
    assert Settings().history_days == 90
    assert Settings.from_mapping({"SENDREADY_HISTORY_DAYS": "7"}).history_days == 7
    for bad in ("0", "3651", "soon"):
        with pytest.raises(ConfigError, match="SENDREADY_HISTORY_DAYS"):
            Settings.from_mapping({"SENDREADY_HISTORY_DAYS": bad})


def test_every_exported_name_resolves() -> None:
    for name in sendready.store.__all__:
        assert getattr(sendready.store, name) is not None
    with pytest.raises(AttributeError):
        sendready.store.nothing_here  # noqa: B018 - the attribute access is the test


def test_building_the_command_line_does_not_import_sqlalchemy() -> None:
    code = "import sys, sendready.cli as c; c.build_parser(); print('sqlalchemy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "False", result.stderr


def test_times_are_stored_in_utc_and_naive_ones_refused() -> None:
    column = UTCDateTime()
    dialect = sqlite.dialect()
    cet = datetime(2026, 12, 1, 11, tzinfo=timezone(timedelta(hours=1)))
    stored = column.process_bind_param(cet, dialect)
    assert stored is not None and stored.utcoffset() == timedelta(0) and stored.hour == 10
    loaded = column.process_result_value(datetime(2026, 12, 1, 10), dialect)
    assert loaded == cet and loaded is not None and loaded.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="timezone-aware"):
        column.process_bind_param(datetime(2026, 12, 1, 10), dialect)


@pytest.mark.parametrize(
    ("tenant", "domains", "kind", "error"),
    [
        ("ten ant", ["a.example.test"], "manual", ValueError),
        ("x" * 129, ["a.example.test"], "manual", ValueError),
        (None, ["a.example.test"], "Manual!", ValueError),
        (None, "a.example.test", "manual", ValueError),
        (None, ["a.example.test", "not a domain"], "manual", InvalidInput),
        (None, ["192.0.2.1"], "manual", InvalidInput),
    ],
)
def test_a_scan_with_bad_input_is_refused_and_not_stored(
    store: Store, tenant: str | None, domains: list[str], kind: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        store.create_scan(tenant, domains, kind)
    assert store.scans() == []


def test_listing_limits_are_bounded(store: Store) -> None:
    for limit in (0, 1001):
        with pytest.raises(ValueError, match="limit"):
            store.scans(limit=limit)
        with pytest.raises(ValueError, match="limit"):
            store.history("a.example.test", limit=limit)


def test_every_migration_file_ships_in_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["sendready.store"]
    package = MIGRATIONS.parent
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    present = {
        path for path in MIGRATIONS.rglob("*") if path.is_file() and "__pycache__" not in path.parts
    }
    assert present and present == shipped


def test_sqlite_runs_in_wal_mode_with_foreign_keys(store: Store) -> None:
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
