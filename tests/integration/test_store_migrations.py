"""The history schema and processes: the migration equals the models, and several processes
that open and write one database at once migrate it once and store each report once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from sendready.store import current_revision, head_revision, open_store
from sendready.store.migrate import alembic_config, upgrade
from sendready.store.models import Base, FindingRow
from tests.conftest import ROOT, clean_environment
from tests.integration.test_store import BACKENDS, env_of, rows, settings_for

CHILD = """
import sys
from sendready.config import Settings
from sendready.model import Finding, Report, Severity, Status
from sendready.store import open_store

sys.stdin.readline()
store = open_store(Settings.from_env(env_file=None))
print("ready", flush=True)
scan_id, count = sys.stdin.readline().split()
saved = 0
for n in range(int(count)):
    domain = f"d{n}.example.test"
    finding = Finding("spf.missing", Status.PASS, Severity.INFO, domain, "SPF record published")
    report = Report(domain, None, "2026-12-01T10:00:00+00:00", 1.0, (finding,), {})
    saved += store.save_report(scan_id, report)
store.close()
print(saved, flush=True)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_migration_creates_exactly_the_models_schema(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = open_store(settings_for(backend, request, tmp_path))
    with store, store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert context.get_current_revision() == head_revision()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_migrations_downgrade_to_nothing_and_upgrade_again(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with open_store(settings_for(backend, request, tmp_path)) as store:
        with store.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection)
            assert context.get_current_revision() is None
            assert connection.dialect.get_table_names(connection) == ["alembic_version"]
        assert upgrade(store.engine) == head_revision() == current_revision(store.engine)
        assert store.scans() == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_migrate_one_empty_database_and_save_each_report_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = settings_for(backend, request, tmp_path)
    count = 40
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD],
            cwd=ROOT,
            env=clean_environment(**env_of(settings)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for child in children:  # both open (and migrate) the empty database at once
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line == "ready\n", child.stderr.read() if child.stderr else line
        with open_store(settings, migrate=False) as store:
            scan_id = store.create_scan(None, [f"d{n}.example.test" for n in range(count)])
            outputs = [child.communicate(f"{scan_id} {count}\n", timeout=120) for child in children]
            assert [child.returncode for child in children] == [0, 0], outputs
            assert sum(int(out) for out, _ in outputs) == count  # every domain saved once
            assert len(store.scan_reports(scan_id)) == count
            assert rows(store, FindingRow) == count
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
