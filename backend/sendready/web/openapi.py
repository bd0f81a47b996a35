"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json.

Written by hand next to the routes it describes; tests/unit/test_web_openapi.py validates
real responses against these schemas, so a drift between the two fails the suite.
"""

from __future__ import annotations

from typing import Any

from ..model import SCHEMA_VERSION

_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}

RECORD = {
    "type": "object",
    "description": "A record to publish (or, for FILE, a file to serve at the URL in name).",
    "required": ["type", "name", "value", "ttl", "note"],
    "properties": {
        "type": {"enum": ["TXT", "CNAME", "MX", "FILE"]},
        "name": _STR,
        "value": _STR,
        "ttl": {"type": "integer", "minimum": 0},
        "note": _STR,
    },
    "additionalProperties": False,
}

FINDING = {
    "type": "object",
    "required": [
        "id",
        "status",
        "severity",
        "subject",
        "title",
        "detail",
        "fix",
        "spec",
        "data",
        "records",
    ],
    "properties": {
        "id": {"type": "string", "pattern": r"^[a-z0-9_]+(\.[a-z0-9_]+)+$"},
        "status": {"enum": ["pass", "fail", "unknown"]},
        "severity": {"enum": ["critical", "warning", "info"]},
        "subject": _STR,
        "title": _STR,
        "detail": _STR,
        "fix": _STR,
        "spec": _STR,
        "data": {"type": "object"},
        "records": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
    },
    "additionalProperties": False,
}

REPORT = {
    "type": "object",
    "required": [
        "schema",
        "domain",
        "address",
        "checked_at",
        "duration_ms",
        "summary",
        "findings",
        "facts",
    ],
    "properties": {
        "schema": {"type": "string", "examples": [SCHEMA_VERSION]},
        "domain": _STR,
        "address": _NSTR,
        "checked_at": {"type": "string", "format": "date-time"},
        "duration_ms": {"type": "number", "minimum": 0},
        "summary": {
            "type": "object",
            "required": ["worst", "failed", "unknown", "passed", "by_severity"],
            "properties": {
                "worst": {"enum": ["critical", "warning", "info", None]},
                "failed": {"type": "integer", "minimum": 0},
                "unknown": {"type": "integer", "minimum": 0},
                "passed": {"type": "integer", "minimum": 0},
                "by_severity": {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "minimum": 0},
                },
            },
        },
        "findings": {"type": "array", "items": {"$ref": "#/components/schemas/Finding"}},
        "facts": {"type": "object"},
    },
    "additionalProperties": False,
}

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail", "reason"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": _STR,
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": _STR,
        "instance": _STR,
        "reason": {"type": "string", "description": "Machine-readable cause."},
        "field": {"type": "string", "description": "The request field that is wrong (400, 422)."},
        "incident": {"type": "string", "description": "Id to quote to the operator (500)."},
    },
}

CHECK_REQUEST = {
    "type": "object",
    "required": ["from"],
    "properties": {
        "from": {
            "type": "string",
            "maxLength": 320,
            "description": "The sender address, or just a domain. Unicode (IDN) is accepted.",
        },
        "recipients": {
            "type": "array",
            "items": {"type": "string", "maxLength": 320},
            "description": "Recipient addresses; at most SENDREADY_MAX_RECIPIENTS (default 100).",
        },
        "options": {
            "type": "object",
            "properties": {
                "service": _NSTR,
                "selectors": {"type": "array", "items": _STR, "maxItems": 20},
                "probe_smtp": {"type": "boolean"},
                "submission": {
                    "type": "boolean",
                    "description": "Also test authenticated submission (SMTP.Send on behalf of "
                    "the signed-in user).",
                },
            },
            "additionalProperties": False,
        },
        "headers": {
            "type": "object",
            "description": "The draft's unsubscribe headers (RFC 2369, RFC 8058), for the "
            "one-click requirement. Omit when they could not be read; send {} when the draft "
            "has neither.",
            "properties": {
                name: {"type": "string", "maxLength": 2048, "pattern": "^[^\\r\\n]*$"}
                for name in ("List-Unsubscribe", "List-Unsubscribe-Post")
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}

ADDRESSES = {
    "type": "object",
    "required": ["addresses"],
    "properties": {"addresses": {"type": "array", "items": _STR}},
}

HEALTH = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"enum": ["ok", "ready"]}, "checks": {"type": "object"}},
}


def _problems(*codes: int) -> dict[str, Any]:
    ref = {"$ref": "#/components/responses/Problem"}
    return {str(code): ref for code in codes}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a new dict each call: callers may not share mutations)."""
    common = _problems(401, 403, 429, 500)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SendReady API",
            "version": "1.0.0",
            "description": "Checks a sender domain's DNS and SMTP readiness and returns "
            "findings with fixes. Every error is RFC 9457 problem+json.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/checks": {
                "post": {
                    "operationId": "createCheck",
                    "summary": "Check a sender (and its recipients) now.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/CheckRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json("The report.", "Report"),
                        **_problems(400, 413, 415, 422),
                        **common,
                    },
                }
            },
            "/api/v1/domains/{domain}": {
                "get": {
                    "operationId": "getDomain",
                    "summary": "The latest report of a domain, from cache while it is fresh.",
                    "parameters": [
                        {"name": "domain", "in": "path", "required": True, "schema": _STR}
                    ],
                    "responses": {
                        "200": {
                            **_json("The report.", "Report"),
                            "headers": {
                                "X-Cache": {
                                    "schema": {"enum": ["hit", "miss"]},
                                    "description": "Whether the report came from cache.",
                                }
                            },
                        },
                        **_problems(422),
                        **common,
                    },
                }
            },
            "/api/v1/me/addresses": {
                "get": {
                    "operationId": "getMyAddresses",
                    "summary": "The addresses the signed-in user may send as (Graph).",
                    "responses": {
                        "200": _json("The addresses.", "Addresses"),
                        **_problems(501, 502),
                        **common,
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "security": [],
                    "summary": "This document.",
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "security": [],
                    "summary": "The process is alive.",
                    "responses": {"200": _json("Alive.", "Health")},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "ready",
                    "security": [],
                    "summary": "Its dependencies (Redis, the token issuer) are reachable.",
                    "responses": {"200": _json("Ready.", "Health"), **_problems(503)},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An Entra ID v2 access token for api://<client-id>/"
                    "access_as_user.",
                }
            },
            "responses": {
                "Problem": {
                    "description": "An error.",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                }
            },
            "schemas": {
                "CheckRequest": CHECK_REQUEST,
                "Report": REPORT,
                "Finding": FINDING,
                "Record": RECORD,
                "Problem": PROBLEM,
                "Addresses": ADDRESSES,
                "Health": HEALTH,
            },
        },
    }


def _json(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }
