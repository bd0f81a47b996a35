"""RFC 9457 problem details: every error the API returns, in one shape."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request

MEDIA_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Sign-in required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Cannot check this input",
    429: "Too many requests",
    500: "Internal error",
    501: "Not available on this server",
    502: "An upstream service failed",
    503: "Not ready",
}


class Problem(Exception):
    """Raised anywhere in a request; rendered as problem+json by the app's handler."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        reason: str = "",
        title: str = "",
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.reason = reason or TITLES.get(status, "error").lower().replace(" ", "_")
        self.title = title or TITLES.get(status, "Error")
        self.field = field
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:sendready:problem:{self.reason}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": request.path,
            "reason": self.reason,
        }
        if self.field is not None:
            body["field"] = self.field
        body.update(self.extra)
        return body


def problem_response(problem: Problem) -> Response:
    response = Response(json.dumps(problem.body()), status=problem.status, mimetype=MEDIA_TYPE)
    for key, value in problem.headers.items():
        response.headers[key] = value
    return response
