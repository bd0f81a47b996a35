"""Flask routes of the Outlook add-in: task pane, event runtime, manifest, icons, vendored JS.

Everything here is static or templated from Settings; no route does DNS or checks. The pane's
pinned browser libraries (Fluent UI web components, Fluent tokens, MSAL.js) are served from
``node_modules`` as installed by ``npm ci`` from the committed package-lock.json.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, abort, current_app, request, send_file

from ..config import Settings
from ..manifest import ASSETS, ICON_SIZES, ManifestError, allowed_scripts, render_manifest

ROOT = Path(__file__).resolve().parents[3]
PANE = ROOT / "taskpane"
NODE_MODULES = ROOT / "node_modules"

#: URL prefix → the one file or directory of an npm package it may serve.
VENDOR_FILES = {
    "fluent/web-components.js": NODE_MODULES
    / "@fluentui/web-components/dist/web-components-all.min.js",
    "msal/msal-browser.min.js": NODE_MODULES / "@azure/msal-browser/lib/msal-browser.min.js",
}
VENDOR_DIRS = {"tokens": NODE_MODULES / "@fluentui/tokens/lib"}

#: Pages rendered with the settings filled in; the rest of taskpane/ is served as is.
PAGES = ("taskpane.html", "commands.html", "auth-dialog.html")
MODULE_TYPES = {".js": "text/javascript", ".css": "text/css"}

#: Where Outlook on the web and new Outlook frame the pane from.
FRAME_ANCESTORS = (
    "'self' https://outlook.office.com https://outlook.office365.com https://outlook.live.com "
    "https://*.outlook.com https://*.office.com https://*.officeapps.live.com "
    "https://*.microsoft365.com"
)
ENTRA = "https://login.microsoftonline.com"

bp = Blueprint("addin", __name__)
EXTENSION = "sendready.addin"


def register(app: Flask, settings: Settings | None = None) -> None:
    """Add the add-in's routes to ``app``; ``settings`` default to those the app holds."""
    app.extensions[EXTENSION] = settings
    app.register_blueprint(bp)


def _settings() -> Settings:
    settings = current_app.extensions.get(EXTENSION)
    if isinstance(settings, Settings):
        return settings
    for value in (*current_app.extensions.values(), *current_app.config.values()):
        if isinstance(value, Settings):
            return value
    return Settings.from_env(env_file=None)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _base_url() -> str:
    """The add-in's public base URL: configured, or the origin this request came to."""
    settings = _settings()
    return settings.public_base_url or request.host_url.rstrip("/")


def _csp() -> str:
    office_js = _settings().office_js_url
    scripts = ["'self'"]
    if office_js.startswith(("https://", "http://")):
        scripts.append(_origin(office_js))
    return "; ".join(
        (
            "default-src 'self'",
            "script-src " + " ".join(dict.fromkeys(scripts)),
            # Fluent web components adopt constructed style sheets and set custom properties.
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {ENTRA}",
            f"frame-src {ENTRA}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {FRAME_ANCESTORS}",
        )
    )


def _page(name: str) -> Response:
    settings = _settings()
    text = (PANE / name).read_text(encoding="utf-8")
    values = {
        "__OFFICE_JS__": settings.office_js_url,
        "__CLIENT_ID__": settings.client_id,
        "__AUTHORITY__": settings.authority,
        "__API_BASE__": "",  # same origin
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, escape(value, quote=True))
    response = Response(text, mimetype="text/html")
    response.headers["Content-Security-Policy"] = _csp()
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/taskpane.html")
def taskpane() -> Response:
    return _page("taskpane.html")


@bp.get("/commands.html")
def commands() -> Response:
    return _page("commands.html")


@bp.get("/auth-dialog.html")
def auth_dialog() -> Response:
    return _page("auth-dialog.html")


@bp.get("/support")
def support() -> Response:
    response = send_file(PANE / "support.html", mimetype="text/html")
    response.headers["Content-Security-Policy"] = _csp()
    return response


@bp.get("/launchevent.js")
def launchevent() -> Response:
    """The event handlers, with the absolute API base the classic runtime needs."""
    settings = _settings()
    text = (PANE / "launchevent.js").read_text(encoding="utf-8")
    for placeholder, value in (
        ("__SENDREADY_API_BASE__", _base_url()),
        ("__SENDREADY_CLIENT_ID__", settings.client_id),
        ("__SENDREADY_AUTHORITY__", settings.authority),
    ):
        # json.dumps gives a valid JS string literal; the template has the quotes.
        text = text.replace(f'"{placeholder}"', json.dumps(value))
    response = Response(text, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/pane/<path:name>")
def pane_file(name: str) -> Response:
    path = (PANE / name).resolve()
    kind = MODULE_TYPES.get(path.suffix)
    if kind is None or path.parent != PANE or not path.is_file():
        abort(404)
    response = send_file(path, mimetype=kind, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/assets/icon-<int:size>.png")
def icon(size: int) -> Response:
    if size not in ICON_SIZES:
        abort(404)
    # Icons must be cacheable: Outlook and the admin center fetch them rarely.
    return send_file(ASSETS / f"icon-{size}.png", mimetype="image/png", max_age=86400)


@bp.get("/vendor/<path:name>")
def vendor(name: str) -> Response:
    path = VENDOR_FILES.get(name)
    if path is None:
        prefix, _, rest = name.partition("/")
        root = VENDOR_DIRS.get(prefix)
        if root is None or not rest.endswith(".js"):
            abort(404)
        path = (root / rest).resolve()
        if not path.is_relative_to(root.resolve()):
            abort(404)
    if not path.is_file():
        abort(404, description=f"{name} is not installed: run `npm ci` in the project root")
    response = send_file(path, mimetype="text/javascript", max_age=86400)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/manifest.xml")
def manifest() -> Response:
    settings = _settings()
    base = settings.public_base_url or ("https://" + request.host)
    try:
        text = render_manifest(base, settings.client_id or None)
    except ManifestError as exc:
        abort(500, description=f"cannot render the manifest: {exc}")
    return Response(text, mimetype="application/xml")


@bp.get("/.well-known/microsoft-officeaddins-allowed.json")
def allowed() -> Response:
    settings = _settings()
    base = settings.public_base_url or ("https://" + request.host)
    try:
        body = allowed_scripts(base)
    except ManifestError as exc:
        abort(500, description=f"cannot list the launch-event scripts: {exc}")
    return Response(json.dumps(body), mimetype="application/json")
