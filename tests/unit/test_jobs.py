"""The queue's pure parts: chunk job ids, chunks, timeouts, settings, the daily schedule, and
the admin claim."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from rq.job import validate_job_id

from sendready.config import ConfigError, Settings
from sendready.jobs import JOB_MARGIN, chunks, due_day, job_id, job_timeout, parse_schedule
from sendready.web.admin import is_admin, tenant_authority
from sendready.worker_cli import schedule_problem, schedule_tenant


def test_job_id_is_deterministic_per_scan_and_chunk_and_valid_for_rq() -> None:
    first = job_id("a" * 32, 0)
    assert first == job_id("a" * 32, 0)
    assert first != job_id("a" * 32, 1)
    assert first != job_id("b" * 32, 0)
    validate_job_id(first)  # RQ allows only letters, digits, _ and -
    validate_job_id(job_id("a" * 32, 499))


def test_domains_are_cut_into_chunks_in_their_order() -> None:
    names = [f"d{i}.example" for i in range(45)]
    cut = chunks(names, 20)
    assert [len(c) for c in cut] == [20, 20, 5]
    assert [d for c in cut for d in c] == names
    assert chunks(names[:3], 500) == [tuple(names[:3])]
    assert chunks([], 20) == []
    with pytest.raises(ValueError):
        chunks(names, 0)


def test_a_chunks_timeout_is_a_budget_and_margin_per_round_of_concurrent_checks() -> None:
    settings = Settings(check_budget=6.0)
    assert job_timeout(settings, 1, 16) == 6 + JOB_MARGIN
    assert job_timeout(settings, 16, 16) == 6 + JOB_MARGIN  # one round
    assert job_timeout(settings, 20, 16) == 2 * (6 + JOB_MARGIN)
    assert job_timeout(settings, 20, 1) == 20 * (6 + JOB_MARGIN)  # one at a time
    assert job_timeout(Settings(check_budget=2.5), 1, 1) == 3 + JOB_MARGIN


def test_chunk_and_concurrency_settings_are_bounded() -> None:
    assert Settings().scan_chunk == 20 and Settings().scan_concurrency == 16
    env = {"SENDREADY_SCAN_CHUNK": "501", "SENDREADY_SCAN_CONCURRENCY": "0"}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env, env_file=None)
    assert "SENDREADY_SCAN_CHUNK" in str(caught.value)
    assert "SENDREADY_SCAN_CONCURRENCY" in str(caught.value)
    ok = Settings.from_env({"SENDREADY_SCAN_CHUNK": "500", "SENDREADY_SCAN_CONCURRENCY": "256"},
                           env_file=None)  # fmt: skip
    assert (ok.scan_chunk, ok.scan_concurrency) == (500, 256)


@pytest.mark.parametrize("text", ["7:30", "07:30", " 07:30 "])
def test_schedule_parses_hours_and_minutes_in_utc(text: str) -> None:
    assert parse_schedule(text) == time(7, 30, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "7", "07:3", "24:00", "07:60", "ab:cd", "07:30:00"])
def test_schedule_rejects_what_is_not_a_time_of_day(text: str) -> None:
    with pytest.raises(ValueError):
        parse_schedule(text)


def test_scheduled_scan_is_due_from_its_time_on_that_day() -> None:
    at = time(6, 0, tzinfo=UTC)
    assert due_day(datetime(2026, 12, 3, 5, 59, 59, tzinfo=UTC), at) is None
    assert due_day(datetime(2026, 12, 3, 6, 0, tzinfo=UTC), at) == "2026-12-03"
    assert due_day(datetime(2026, 12, 3, 23, 0, tzinfo=UTC), at) == "2026-12-03"


@pytest.mark.parametrize(
    ("claims", "admin"),
    [
        ({"roles": ["SendReady.Admin"]}, True),
        ({"wids": ["62e90394-69f5-4237-9190-012177145e10"]}, True),  # Global Administrator
        ({"wids": ["29232cdf-9323-42fd-ade2-1d097af3e4de"]}, True),  # Exchange Administrator
        ({"wids": ["f2ef992c-3afb-46b9-b7cf-a126ee74c451"]}, False),  # Global Reader
        ({"roles": ["SendReady.User"], "wids": []}, False),
        ({"roles": "SendReady.Admin"}, False),  # not a list: not the claim's shape
        ({}, False),
    ],
)
def test_admin_claim_is_the_app_role_or_an_administrator_directory_role(
    claims: dict[str, object], admin: bool
) -> None:
    assert is_admin(claims) is admin


@pytest.mark.parametrize(
    "authority",
    [
        "https://login.microsoftonline.com/organizations",
        "https://login.microsoftonline.com/organizations/",
        "https://login.microsoftonline.com/99999999-8888-4777-8666-555555555555",
    ],
)
def test_a_tenant_scan_asks_the_admins_own_tenant_for_its_app_only_token(authority: str) -> None:
    tenant = "11111111-2222-4333-8444-555555555555"
    assert tenant_authority(authority, tenant) == f"https://login.microsoftonline.com/{tenant}"


def test_the_daily_scan_needs_an_app_secret_and_an_authority_naming_the_tenant() -> None:
    tenant = "11111111-2222-4333-8444-555555555555"
    ready = Settings(
        client_id="c", client_secret="s", authority=f"https://login.microsoftonline.com/{tenant}"
    )
    assert schedule_problem(ready) == "" and schedule_tenant(ready) == tenant
    assert "client secret" in schedule_problem(Settings(client_id="c"))
    multi = Settings(client_id="c", client_secret="s")  # .../organizations
    assert "must name the tenant" in schedule_problem(multi)
    assert schedule_tenant(multi) is None
