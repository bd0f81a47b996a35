"""`sendready explain`, and `sendready check` with --no-smtp and --submission."""

from __future__ import annotations

import io
import json

import pytest

from sendready.cli import EXIT_OK, EXIT_USAGE, main
from tests.conftest import NET, Pki, addr
from tests.fixtures.hostile_smtp import Hostile
from tests.fixtures.submission import Submission


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out), out.getvalue()


def test_explain_prints_cause_and_fix() -> None:
    code, text = cli(
        "explain", "550 5.7.60 Client does not have permissions to send as this sender"
    )
    assert code == EXIT_OK
    assert "recognised" in text and "Send As" in text and "Fix:" in text


def test_explain_json_for_an_unknown_code() -> None:
    code, text = cli("explain", "--json", "451 4.9.9 something new")
    data = json.loads(text)
    assert code == EXIT_OK and data["recognised"] is False and data["enhanced"] == "4.9.9"
    assert "transient" in data["class_meaning"]


def test_a_bad_submission_flag_is_a_usage_error() -> None:
    assert cli("check", "example.test", "--submission", "smtp.example.test:0")[0] == EXIT_USAGE


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, dns_server, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SENDREADY_DNS_SERVERS", dns_server.nameserver)
    monkeypatch.setenv("SENDREADY_ALLOW_PRIVATE_TARGETS", f"{NET}.0/24")
    monkeypatch.setenv("SENDREADY_SMTP_SOURCE_ADDRESS", addr(1))
    monkeypatch.setenv("SENDREADY_CA_FILE", pki.ca)
    monkeypatch.setenv("SENDREADY_SMTP_TIMEOUT", "3")
    monkeypatch.chdir(pki.dir)  # no stray .env file


def test_check_no_smtp_skips_the_probes(env: None, hostile_smtp: Hostile) -> None:
    _, text = cli("check", "d-notls.smtp-hostile.test", "--no-smtp", "--json")
    report = json.loads(text)
    assert not [f for f in report["findings"] if f["id"].startswith("smtp.")]


def test_check_shows_smtp_results(env: None, hostile_smtp: Hostile) -> None:
    _, text = cli("check", "d-notls.smtp-hostile.test", "--color", "never")
    assert "SMTP" in text and "does not offer STARTTLS" in text


def test_check_submission_flag_probes_that_host(env: None, submission: Submission) -> None:
    _, text = cli(
        "check", "d-refused.smtp-hostile.test", "--submission", f"{submission.name}:465", "--json"
    )
    facts = json.loads(text)["facts"]["smtp"]
    (probe,) = facts["submission"]
    assert probe["target"]["port"] == 465 and probe["target"]["mode"] == "implicit"
    assert probe["tls"]["cert"]["trusted"] is True
