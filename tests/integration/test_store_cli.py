"""`sendready db` as a real process: upgrade, current, prune, and its errors."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from sendready.store import head_revision, open_store
from sendready.store.models import ScanRow
from tests.conftest import addr, clean_environment, run_sendready
from tests.integration.test_store import BACKENDS, env_of, settings_for


def sendready_db(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return run_sendready("db", *args, env=clean_environment(**settings))


@pytest.mark.parametrize("backend", BACKENDS)
def test_current_says_behind_until_upgrade_migrates_to_head(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env = env_of(settings_for(backend, request, tmp_path))
    before = sendready_db("current", **env)
    assert before.returncode == 1, before.stderr
    assert "at revision none (empty)" in before.stdout
    upgraded = sendready_db("upgrade", **env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"at revision {head_revision()}" in upgraded.stdout
    after = sendready_db("current", **env)
    assert after.returncode == 0, after.stderr
    assert f"at revision {head_revision()}; newest {head_revision()}" in after.stdout


def test_the_default_history_is_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    result = sendready_db("upgrade", instance_path=str(tmp_path / "inst"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "inst" / "sendready.db").is_file()


@pytest.mark.parametrize("backend", BACKENDS)
def test_prune_deletes_old_scans_by_days_or_the_setting(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = settings_for(backend, request, tmp_path)
    with open_store(settings) as store:
        ids = [store.create_scan(None, ["a.example.test"]) for _ in range(3)]
        for scan_id, days in zip(ids, (40, 20, 1), strict=True):
            store.finish_scan(scan_id)
            with store.engine.begin() as connection:
                connection.execute(
                    update(ScanRow)
                    .where(ScanRow.id == scan_id)
                    .values(finished_at=datetime.now(UTC) - timedelta(days=days))
                )
    env = env_of(settings)
    by_setting = sendready_db("prune", history_days="30", **env)
    assert by_setting.returncode == 0, by_setting.stderr
    assert by_setting.stdout == "pruned 1 scan finished over 30 days ago\n"
    by_option = sendready_db("prune", "--days", "10", history_days="30", **env)
    assert by_option.stdout == "pruned 1 scan finished over 10 days ago\n"
    with open_store(settings) as store:
        assert [s.id for s in store.scans()] == [ids[2]]


def test_a_bad_days_value_is_a_usage_error(tmp_path: Path) -> None:
    result = sendready_db("prune", "--days", "-3", instance_path=str(tmp_path))
    assert result.returncode == 2
    assert "between 0 and 3650" in result.stderr


def test_an_unsupported_database_url_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    result = sendready_db("upgrade", database_url="mysql://u:pw@db.example.test/history")
    assert result.returncode == 2
    assert "SENDREADY_DATABASE_URL" in result.stderr and "'mysql'" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_server_is_reported_without_its_password() -> None:
    url = f"postgresql://postgres:s3cret-pw@{addr(66)}:5432/history?connect_timeout=2"
    result = sendready_db("upgrade", database_url=url)
    assert result.returncode == 2
    assert "cannot open the history database" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
