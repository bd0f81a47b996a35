"""`sendready check --tenant-domain` end to end: a real process against Knot prints the
Microsoft 365 DKIM CNAMEs of a domain without DKIM, and the alignment facts name the domain
Microsoft 365 signs with meanwhile."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

DOMAIN = "fix-dkim.test"
TENANT = "fix-tenant.onmicrosoft.test"
#: The providers' real names answered by the test zones (as the test backend maps them).
ALIASES = "outlook.com=outlook.test,onmicrosoft.com=onmicrosoft.test"


def sendready(*args: str, nameserver: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDREADY_")}
    env.update(SENDREADY_PROVIDER_ALIASES=ALIASES, NO_COLOR="1")
    argv = [sys.executable, "-m", "sendready.cli", "check", *args, "--no-smtp"]
    argv += ["--nameserver", nameserver]
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def ns(dns_server) -> str:  # type: ignore[no-untyped-def]
    return str(dns_server.nameserver)


def test_the_cnames_are_printed_ready_to_paste(ns: str) -> None:
    result = sendready(DOMAIN, "--tenant-domain", TENANT.upper() + ".", nameserver=ns)
    assert result.returncode in (0, 1), result.stderr
    lines = result.stdout.splitlines()
    for selector in ("selector1", "selector2"):
        name = f"{selector}._domainkey.{DOMAIN}"
        head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["CNAME", name])
        assert lines[head + 1].strip() == f"{selector}-fix-dkim-test._domainkey.{TENANT}"


def test_json_carries_the_records_and_the_tenant_in_the_alignment_facts(ns: str) -> None:
    result = sendready(DOMAIN, "--tenant-domain", TENANT, "--json", nameserver=ns)
    report = json.loads(result.stdout)
    (missing,) = [f for f in report["findings"] if f["id"] == "dkim.missing"]
    assert [r["value"] for r in missing["records"]] == [
        f"selector1-fix-dkim-test._domainkey.{TENANT}",
        f"selector2-fix-dkim-test._domainkey.{TENANT}",
    ]
    alignment = report["facts"]["alignment"]
    assert alignment["tenant_domain"] == TENANT
    (m365,) = [p for p in alignment["predictions"] if p["service"] == "microsoft365"]
    assert m365["dkim"]["domain"] == TENANT and m365["dkim"]["aligned"] is False
    assert f"signs as your tenant's initial domain {TENANT} (d={TENANT})" in m365["dkim"]["reason"]


def test_without_it_no_cname_is_guessed(ns: str) -> None:
    report = json.loads(sendready(DOMAIN, "--json", nameserver=ns).stdout)
    (missing,) = [f for f in report["findings"] if f["id"] == "dkim.missing"]
    assert missing["records"] == [] and "Get-DkimSigningConfig" in missing["fix"]


def test_a_bad_tenant_domain_is_a_usage_error_naming_the_option(ns: str) -> None:
    result = sendready(DOMAIN, "--tenant-domain", "not a domain", nameserver=ns)
    assert result.returncode == 2
    assert result.stderr.startswith("sendready: --tenant-domain: ")
    assert result.stdout == ""
