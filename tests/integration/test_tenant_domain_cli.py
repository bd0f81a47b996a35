"""`sendready check --tenant-domain` end to end: a real process against Knot prints the
Microsoft 365 DKIM CNAMEs of a domain without DKIM, and the alignment facts name the domain
Microsoft 365 signs with meanwhile. `sendready scan --tenant` learns the initial domain from
Graph (the Entra-like issuer), `sendready scan --tenant-domain` takes it for a list."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NET, Pki, clean_environment, run_sendready
from tests.fixtures.issuer import API_CLIENT_ID, API_SECRET
from tests.fixtures.issuer import TENANT as TENANT_ID
from tests.servers.fake_issuer import FakeIssuer

DOMAIN = "fix-dkim.test"
TENANT = "fix-tenant.onmicrosoft.test"
#: The providers' real names answered by the test zones (as the test backend maps them).
ALIASES = "outlook.com=outlook.test,onmicrosoft.com=onmicrosoft.test"


def run(*argv: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = clean_environment(provider_aliases=ALIASES)
    env.update(NO_COLOR="1", **env_extra)
    return run_sendready(*argv, env=env, timeout=120)


def sendready(*args: str, nameserver: str) -> subprocess.CompletedProcess[str]:
    return run("check", *args, "--no-smtp", "--nameserver", nameserver)


def cname_targets(report: dict[str, Any]) -> list[str]:
    (missing,) = [f for f in report["findings"] if f["id"] == "dkim.missing"]
    return [r["value"] for r in missing["records"]]


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
    assert cname_targets(report) == [
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


def scan(*args: str, ns: str, instance: Path, **env: str) -> dict[str, dict[str, Any]]:
    """`sendready scan ... --format json`: each domain's stored report."""
    result = run(
        "scan",
        *args,
        "--no-smtp",
        "--format",
        "json",
        SENDREADY_DNS_SERVERS=ns,
        SENDREADY_ALLOW_PRIVATE_TARGETS=f"{NET}.0/24",
        SENDREADY_INSTANCE_PATH=str(instance),
        **env,
    )
    assert result.returncode in (0, 1), result.stderr
    data = json.loads(result.stdout)
    return {r["domain"]: r["report"] for r in data["reports"]}


def test_a_tenant_scan_learns_the_initial_domain_from_graph(
    ns: str, tmp_path: Path, issuer: FakeIssuer, pki: Pki
) -> None:
    issuer.domains = [(DOMAIN, True), (TENANT, True)]
    issuer.domains_initial = TENANT
    try:
        reports = scan(
            "--tenant",
            ns=ns,
            instance=tmp_path,
            SENDREADY_CLIENT_ID=API_CLIENT_ID,
            SENDREADY_CLIENT_SECRET=API_SECRET,
            SENDREADY_AUTHORITY=f"{issuer.base}/{TENANT_ID}",
            SENDREADY_AUTH_CA_FILE=pki.ca,
            SENDREADY_GRAPH_URL=f"{issuer.base}/graph",
        )
    finally:
        issuer.domains, issuer.domains_initial = [], ""
    assert cname_targets(reports[DOMAIN]) == [
        f"selector1-fix-dkim-test._domainkey.{TENANT}",
        f"selector2-fix-dkim-test._domainkey.{TENANT}",
    ]


def test_a_scan_of_a_list_takes_the_tenant_domain_option(ns: str, tmp_path: Path) -> None:
    other = "other-tenant.onmicrosoft.test"
    reports = scan(DOMAIN, "--tenant-domain", other, ns=ns, instance=tmp_path)
    assert cname_targets(reports[DOMAIN]) == [
        f"selector1-fix-dkim-test._domainkey.{other}",
        f"selector2-fix-dkim-test._domainkey.{other}",
    ]
    bad = run("scan", DOMAIN, "--tenant-domain", "bad_.x-", SENDREADY_INSTANCE_PATH=str(tmp_path))
    assert bad.returncode == 2 and bad.stderr.startswith("sendready: --tenant-domain: ")
