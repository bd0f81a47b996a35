"""The Flask service: create_app() wires the API, auth, limits, headers, CORS, logs and metrics.

Sign-in is off only when no client id is configured and the service listens on loopback
(the development mode); anywhere else create_app refuses to build an unauthenticated app.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from ..auth.http import make_session
from ..auth.msal_client import MemoryTokenStore, RedisTokenStore, ServiceAuthError, TokenBroker
from ..auth.tokens import AuthError, TokenValidator
from ..config import ConfigError, Settings
from ..engine import Engine
from . import addin, admin
from .api import make_blueprint
from .cache import MemoryReportCache, RedisReportCache, ReportCache
from .metrics import Metrics
from .problems import Problem, problem_response
from .services import Services

__all__ = ["create_app"]

log = logging.getLogger("sendready.web")

EXTENSION = "sendready"
#: Paths that need no token: the document, health, and the preflight itself.
PUBLIC_API = ("/api/v1/openapi.json",)
HSTS = "max-age=31536000; includeSubDomains"
API_CSP = f"default-src 'none'; frame-ancestors {addin.FRAME_ANCESTORS}"


def listens_on_loopback(listen: str) -> bool:
    host = listen.rsplit(":", 1)[0].strip("[]") if ":" in listen else listen
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme else ""


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    redis_client: Any | None = None,
) -> Flask:
    """Build the service for ``settings`` (default: the environment)."""
    settings = settings or Settings.from_env()
    app = Flask("sendready")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]

    if redis_client is None and settings.redis_url:
        import redis

        redis_client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
        )
    session = make_session(settings)
    validator: TokenValidator | None = None
    broker: TokenBroker | None = None
    if settings.client_id:
        validator = TokenValidator(settings, session)
        if settings.client_secret or settings.client_cert:
            store = RedisTokenStore(redis_client) if redis_client is not None else None
            broker = TokenBroker(settings, session, store or MemoryTokenStore())
    elif not listens_on_loopback(settings.listen):
        raise ConfigError(
            f"SENDREADY_CLIENT_ID is required when listening on {settings.listen}: "
            "sign-in may only be off on loopback"
        )
    else:
        log.warning(
            "SIGN-IN IS OFF: development mode without SENDREADY_CLIENT_ID; anyone who can "
            "reach %s can use the API",
            settings.listen,
        )

    engine = engine or Engine(settings)
    cache: ReportCache = (
        RedisReportCache(redis_client, settings.report_cache_ttl)
        if redis_client is not None
        else MemoryReportCache(settings.report_cache_ttl)
    )
    metrics = Metrics(lambda: engine.resolver.stats.failures)
    services = Services(settings, engine, cache, metrics, session, validator, broker, redis_client)
    app.extensions[EXTENSION] = services
    allowed_origin = _origin(settings.public_base_url)

    # One budget per user and one per tenant, shared by every limited route (shared_limit:
    # a plain limit would count each endpoint separately).
    # Order matters: authentication runs before the limiter's own before_request, so
    # the limits can key on the user and tenant.
    @app.before_request
    def start() -> Response | None:
        g.started = time.perf_counter()
        if request.method == "OPTIONS":
            return _preflight(allowed_origin)
        if request.path.startswith("/api/") and request.path not in PUBLIC_API:
            g.principal = None
            if validator is not None:
                g.principal = validator.validate(request.headers.get("Authorization"))
        return None

    limiter = Limiter(
        _user_key,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        storage_options={"socket_timeout": 1, "socket_connect_timeout": 1}
        if settings.redis_url
        else {},
        key_prefix="sendready",
        # X-RateLimit-* headers cost a third of the limiter's time; 429s carry Retry-After.
        headers_enabled=False,
        strategy="fixed-window",
    )

    def limit(view: Callable[..., Any]) -> Callable[..., Any]:
        per_tenant = limiter.shared_limit(
            settings.rate_limit_tenant, scope="tenant", key_func=_tenant_key
        )
        per_user = limiter.shared_limit(settings.rate_limit_user, scope="user", key_func=_user_key)
        return per_user(per_tenant(view))

    @contextlib.contextmanager
    def limited() -> Iterator[None]:
        # The same two limits, counted only where a check will really run. Flask-Limiter
        # checks each context-manager limit as it is entered.
        user = limiter.shared_limit(settings.rate_limit_user, scope="user", key_func=_user_key)
        tenant = limiter.shared_limit(
            settings.rate_limit_tenant, scope="tenant", key_func=_tenant_key
        )
        with user, tenant:
            yield

    app.register_blueprint(make_blueprint(limit, limited))
    admin.register(app)
    _health_routes(app, services)
    _error_handlers(app, limiter)

    @app.after_request
    def finish(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Strict-Transport-Security", HSTS)
        headers.setdefault("Referrer-Policy", "no-referrer")
        if "Content-Security-Policy" not in headers and not (response.mimetype or "").startswith(
            "text/html"
        ):
            headers["Content-Security-Policy"] = API_CSP
        origin = request.headers.get("Origin")
        if origin and origin == allowed_origin and request.path.startswith("/api/"):
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = "Retry-After, X-Cache"
        headers.add("Vary", "Origin")
        started = g.get("started")
        elapsed = time.perf_counter() - started if started is not None else 0.0
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.latency.labels(request.method, endpoint, str(response.status_code)).observe(elapsed)
        principal = g.get("principal")
        if not log.isEnabledFor(logging.INFO):
            return response
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "ms": round(elapsed * 1000, 2),
                "user": principal.user if principal is not None else None,
            },
        )
        return response

    if addin.PANE.is_dir():
        addin.register(app, settings)
    return app


def _user_key() -> str:
    principal = g.get("principal")
    return f"user:{principal.user}" if principal is not None else f"ip:{request.remote_addr}"


def _tenant_key() -> str:
    principal = g.get("principal")
    return f"tenant:{principal.tid}" if principal is not None else "tenant:none"


def _preflight(allowed_origin: str) -> Response:
    origin = request.headers.get("Origin", "")
    if not request.path.startswith("/api/") or not origin:
        return Response(status=204)
    if origin != allowed_origin:
        raise Problem(403, f"origin {origin} may not call this API", reason="origin_not_allowed")
    response = Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def _health_routes(app: Flask, services: Services) -> None:
    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> dict[str, Any]:
        checks: dict[str, str] = {}
        failed: list[str] = []
        try:
            services.cache.ping()
            checks["cache"] = "ok"
        except Exception as exc:
            checks["cache"] = f"unreachable: {type(exc).__name__}"
            failed.append("cache")
        if services.validator is not None:
            try:
                services.validator._keyset()
                checks["issuer"] = "ok"
            except Exception as exc:
                checks["issuer"] = f"unreachable: {type(exc).__name__}"
                failed.append("issuer")
        else:
            checks["issuer"] = "sign-in off"
        checks["nameservers"] = services.engine.resolver.key or "system"
        if failed:
            raise Problem(503, "not ready: " + ", ".join(failed), reason="not_ready", checks=checks)
        return {"status": "ready", "checks": checks}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(services.metrics.render(), mimetype="text/plain; version=0.0.4")


def _error_handlers(app: Flask, limiter: Limiter) -> None:
    @app.errorhandler(Problem)
    def on_problem(problem: Problem) -> Response:
        return problem_response(problem)

    @app.errorhandler(AuthError)
    def on_auth(error: AuthError) -> Response:
        headers = {}
        if error.status == 401:
            headers["WWW-Authenticate"] = (
                f'Bearer error="invalid_token", error_description="{error.reason}"'
            )
        return problem_response(
            Problem(error.status, error.detail, reason=error.reason, headers=headers)
        )

    @app.errorhandler(ServiceAuthError)
    def on_service_auth(error: ServiceAuthError) -> Response:
        return problem_response(
            Problem(error.status, error.detail, reason=error.reason, title=error.title)
        )

    @app.errorhandler(RateLimitExceeded)
    def on_limit(error: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        retry = error.limit.limit.get_expiry()
        if current is not None:
            retry = max(1, int(current.reset_at - time.time()) + 1)
        return problem_response(
            Problem(
                429,
                f"rate limit {error.limit.limit} exceeded; retry in {retry} s",
                reason="rate_limited",
                headers={"Retry-After": str(retry)},
            )
        )

    @app.errorhandler(HTTPException)
    def on_http(error: HTTPException) -> Response:
        status = error.code or 500
        detail = {
            404: "no such resource",
            405: f"{request.method} is not allowed here",
            413: f"the body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes",
        }.get(status, error.description or "")
        return problem_response(Problem(status, detail))

    @app.errorhandler(Exception)
    def on_crash(error: Exception) -> Response:
        incident = uuid.uuid4().hex[:12]
        log.exception("unhandled error", extra={"incident": incident, "path": request.path})
        return problem_response(
            Problem(
                500,
                "the service failed; quote the incident id to the operator",
                incident=incident,
            )
        )
