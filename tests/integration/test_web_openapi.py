"""The OpenAPI 3.1 document matches the implementation: real responses of a real check
(Knot on loopback) and real problems validate against the schemas it publishes."""

from __future__ import annotations

import ipaddress
from typing import Any

import jsonschema
import pytest
from flask.testing import FlaskClient

from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.web import create_app
from tests.conftest import NET


@pytest.fixture(scope="module")
def client(dns_server) -> FlaskClient:  # type: ignore[no-untyped-def]
    settings = Settings(
        dns_servers=parse_nameservers(dns_server.nameserver),
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
        check_budget=3.0,
        dns_timeout=1.0,
    )
    return create_app(settings).test_client()


@pytest.fixture(scope="module")
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.get_json()
    return doc


def validator(document: dict[str, Any], ref: str) -> jsonschema.Draft202012Validator:
    # The document is the root, so "#/components/..." references resolve inside it.
    schema = {"$ref": ref, "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


def response_schema(document: dict[str, Any], path: str, method: str, status: str) -> str:
    response = document["paths"][path][method]["responses"][status]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[1]
        response = document["components"]["responses"][name]
    (content,) = response["content"].values()
    ref: str = content["schema"]["$ref"]
    return ref


def test_document_is_openapi_3_1_and_its_schemas_are_valid(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    for name, schema in document["components"]["schemas"].items():
        assert name and jsonschema.Draft202012Validator.check_schema(schema) is None
    paths = set(document["paths"])
    assert {"/api/v1/checks", "/api/v1/domains/{domain}", "/healthz", "/readyz"} <= paths


def test_a_real_report_matches_the_report_schema(
    client: FlaskClient, document: dict[str, Any]
) -> None:
    response = client.post(
        "/api/v1/checks",
        json={"from": "alice@m365-good.test", "recipients": ["bob@dmarc-good.test"],
              "options": {"probe_smtp": False}},
    )  # fmt: skip
    assert response.status_code == 200
    report = response.get_json()
    assert report["findings"], "a real check has findings"
    ref = response_schema(document, "/api/v1/checks", "post", "200")
    validator(document, ref).validate(report)
    by_domain = client.get("/api/v1/domains/dmarc-good.test")
    validator(document, ref).validate(by_domain.get_json())


def test_a_report_with_ready_to_paste_records_matches_the_schema(
    client: FlaskClient, document: dict[str, Any]
) -> None:
    response = client.post(
        "/api/v1/checks",
        json={"from": "alice@fix-sts.test", "options": {"probe_smtp": False}},
    )
    assert response.status_code == 200
    report = response.get_json()
    records = [r for f in report["findings"] for r in f["records"]]
    assert {r["type"] for r in records} >= {"TXT", "FILE"}  # DMARC stages, MTA-STS policy
    ref = response_schema(document, "/api/v1/checks", "post", "200")
    validator(document, ref).validate(report)


def test_the_request_schema_accepts_what_the_pane_sends_and_refuses_what_the_api_does(
    client: FlaskClient, document: dict[str, Any]
) -> None:
    request_schema = validator(document, "#/components/schemas/CheckRequest")
    sent = {"from": "a@b.test", "recipients": ["c@d.test"], "options": {"probe_smtp": False}}
    request_schema.validate(sent)
    bad = {"from": "a@b.test", "options": {"probe_smtp": "yes"}}
    assert not request_schema.is_valid(bad)
    assert client.post("/api/v1/checks", json=bad).status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/api/v1/checks", {"from": 5}, "400"),
        ("post", "/api/v1/checks", {"from": "a@" + "x" * 300 + ".test"}, "422"),
        ("get", "/api/v1/domains/a..b", None, "422"),
    ],
)
def test_real_problems_match_the_problem_schema(
    client: FlaskClient,
    document: dict[str, Any],
    method: str,
    path: str,
    body: Any,
    status: str,
) -> None:
    response = getattr(client, method)(path, json=body) if body else getattr(client, method)(path)
    assert str(response.status_code) == status
    assert response.mimetype == "application/problem+json"
    spec_path = "/api/v1/domains/{domain}" if "domains" in path else path
    validator(document, response_schema(document, spec_path, method, status)).validate(
        response.get_json()
    )


def test_health_responses_match(client: FlaskClient, document: dict[str, Any]) -> None:
    for path in ("/healthz", "/readyz"):
        response = client.get(path)
        assert response.status_code == 200
        validator(document, response_schema(document, path, "get", "200")).validate(
            response.get_json()
        )
