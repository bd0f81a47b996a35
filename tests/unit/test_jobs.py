"""The queue's pure parts: job ids, timeouts, the daily schedule, and the admin claim."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from rq.job import validate_job_id

from sendready.config import Settings
from sendready.jobs import JOB_MARGIN, due_day, job_id, job_timeout, parse_schedule
from sendready.web.admin import is_admin, tenant_authority
from sendready.worker_cli import schedule_problem, schedule_tenant


def test_job_id_is_deterministic_per_scan_and_domain_and_valid_for_rq() -> None:
    first = job_id("a" * 32, "contoso.example")
    assert first == job_id("a" * 32, "contoso.example")
    assert first != job_id("a" * 32, "fabrikam.example")
    assert first != job_id("b" * 32, "contoso.example")
    validate_job_id(first)  # RQ allows only letters, digits, _ and -


def test_job_timeout_is_the_check_budget_plus_a_margin() -> None:
    assert job_timeout(Settings(check_budget=6.0)) == 6 + JOB_MARGIN
    assert job_timeout(Settings(check_budget=2.5)) == 3 + JOB_MARGIN


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
