"""Renders the XML add-in manifest (addin-manifest/manifest.template.xml) for one base URL."""

from __future__ import annotations

import ipaddress
import re
import uuid
from pathlib import Path
from string import Template
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

#: Bump on every change to the template: Outlook and the admin center cache by version.
MANIFEST_VERSION = "1.0.0.0"

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_DIR = ROOT / "addin-manifest"
TEMPLATE = MANIFEST_DIR / "manifest.template.xml"
ASSETS = MANIFEST_DIR / "assets"
ICON_SIZES = (16, 32, 64, 80, 128)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# A fixed namespace so that one base URL always gets the same add-in Id, and dev and
# production (different URLs) get different ones and install side by side.
_ID_NAMESPACE = uuid.UUID("5b0d6c1e-8a43-4f57-9a0e-2f6c0d7e4a11")


class ManifestError(ValueError):
    """The base URL or client id cannot make a valid manifest; the message says why."""


def normalize_base_url(base_url: str) -> tuple[str, str]:
    """(base URL without trailing slash, its origin) for an https URL, or ManifestError."""
    text = base_url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme != "https":
        raise ManifestError(f"{base_url!r}: the add-in must be served over https://")
    if not parts.hostname:
        raise ManifestError(f"{base_url!r}: no host name")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ManifestError(f"{base_url!r}: no query, fragment or credentials allowed")
    if any(c in text for c in "<>\"' "):
        raise ManifestError(f"{base_url!r}: contains characters a URL may not")
    origin = f"https://{parts.netloc.lower()}"
    return origin + parts.path, origin


def is_development(origin: str) -> bool:
    host = urlsplit(origin).hostname or ""
    if host == "localhost" or host.endswith((".localhost", ".test", ".local")):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def addin_id(base: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, base))


def render_manifest(
    base_url: str, client_id: str | None = None, *, version: str = MANIFEST_VERSION
) -> str:
    """The manifest XML for the add-in served at ``base_url``.

    With ``client_id`` (the Entra ID application id) it carries ``WebApplicationInfo``;
    nested app authentication itself needs none, legacy Office SSO does.
    """
    base, origin = normalize_base_url(base_url)
    if not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", version):
        raise ManifestError(f"version {version!r}: must be four numbers, n.n.n.n")
    info = ""
    if client_id:
        if not _GUID.match(client_id):
            raise ManifestError(f"client id {client_id!r}: must be a GUID")
        host = urlsplit(origin).netloc
        info = (
            "      <WebApplicationInfo>\n"
            f"        <Id>{escape(client_id.lower())}</Id>\n"
            f"        <Resource>api://{escape(host)}/{escape(client_id.lower())}</Resource>\n"
            "        <Scopes>\n"
            "          <Scope>openid</Scope>\n"
            "          <Scope>profile</Scope>\n"
            "        </Scopes>\n"
            "      </WebApplicationInfo>\n"
        )
    dev = is_development(origin)
    name = "SendReady (development)" if dev else "SendReady"
    values = {
        "id": addin_id(base),
        "version": version,
        "display_name": quoteattr(name)[1:-1],
        "base": escape(base),
        "origin": escape(origin),
        "web_application_info": info,
    }
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(values)


def allowed_scripts(base_url: str) -> dict[str, list[str]]:
    """/.well-known/microsoft-officeaddins-allowed.json: the launch-event scripts classic
    Outlook on Windows may load from this origin."""
    base, _ = normalize_base_url(base_url)
    return {"allowed": [f"{base}/launchevent.js"]}
