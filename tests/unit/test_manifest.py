"""The rendered XML manifest, checked structurally (no online validator: TESTING.md §10.4)."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from flask import Flask

from sendready import cli
from sendready.config import Settings
from sendready.manifest import ASSETS, ManifestError, render_manifest
from sendready.web import addin

ROOT = Path(__file__).resolve().parents[2]
BASE = "https://addin.example.com"
CLIENT = "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"
NS = {
    "o": "http://schemas.microsoft.com/office/appforoffice/1.1",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "bt": "http://schemas.microsoft.com/office/officeappbasictypes/1.0",
    "v10": "http://schemas.microsoft.com/office/mailappversionoverrides",
    "v11": "http://schemas.microsoft.com/office/mailappversionoverrides/1.1",
}
XSI_TYPE = f"{{{NS['xsi']}}}type"

#: Schema order of OfficeApp's children (ADDIN.md §2.1; manifest-element-ordering).
OFFICEAPP_ORDER = [
    "Id", "AlternateId", "Version", "ProviderName", "DefaultLocale", "DisplayName",
    "Description", "IconUrl", "HighResolutionIconUrl", "SupportUrl", "AppDomains", "Hosts",
    "Requirements", "FormSettings", "Permissions", "Rule", "DisableEntityHighlighting",
    "VersionOverrides",
]  # fmt: skip
VO_ORDER = ["Description", "Requirements", "Hosts", "Resources", "WebApplicationInfo",
            "ExtendedPermissions", "VersionOverrides"]  # fmt: skip
HOST_ORDER = ["Runtimes", "DesktopFormFactor", "MobileFormFactor"]
DESKTOP_ORDER = ["GetStarted", "FunctionFile", "ExtensionPoint"]
RESOURCES_ORDER = ["Images", "Urls", "ShortStrings", "LongStrings"]
CONTROL_ORDER = ["Label", "Supertip", "Icon", "Action"]


def local(tag: str) -> str:
    return tag.split("}", 1)[-1]


@pytest.fixture(scope="module")
def root() -> ET.Element:
    return ET.fromstring(render_manifest(BASE, CLIENT))


def assert_order(parent: ET.Element, order: list[str]) -> None:
    names = [local(c.tag) for c in parent]
    unknown = [n for n in names if n not in order]
    assert not unknown, f"unexpected children of {local(parent.tag)}: {unknown}"
    positions = [order.index(n) for n in names]
    assert positions == sorted(positions), f"{local(parent.tag)} children out of order: {names}"


def overrides(root: ET.Element) -> tuple[ET.Element, ET.Element]:
    v10 = root.find("v10:VersionOverrides", NS)
    assert v10 is not None
    v11 = v10.find("v11:VersionOverrides", NS)
    assert v11 is not None
    return v10, v11


def test_namespaces_and_types_are_those_outlook_expects(root: ET.Element) -> None:
    assert root.tag == f"{{{NS['o']}}}OfficeApp"
    assert root.get(XSI_TYPE) == "MailApp"
    v10, v11 = overrides(root)
    assert v10.get(XSI_TYPE) == "VersionOverridesV1_0"
    assert v11.get(XSI_TYPE) == "VersionOverridesV1_1"
    # V1_1 is nested as the last child of V1_0.
    assert list(v10)[-1] is v11
    text = render_manifest(BASE, CLIENT)
    assert 'xmlns:bt="http://schemas.microsoft.com/office/officeappbasictypes/1.0"' in text
    assert 'xmlns:mailappor="http://schemas.microsoft.com/office/mailappversionoverrides/1.0"' in (
        text
    )


def test_elements_follow_the_schema_order(root: ET.Element) -> None:
    assert_order(root, OFFICEAPP_ORDER)
    for vo in overrides(root):
        assert_order(vo, VO_ORDER)
        for host in vo.iter():
            if local(host.tag) == "Host" and host.get(XSI_TYPE) == "MailHost":
                assert_order(host, HOST_ORDER)
            if local(host.tag) == "DesktopFormFactor":
                assert_order(host, DESKTOP_ORDER)
            if local(host.tag) == "Resources":
                assert_order(host, RESOURCES_ORDER)
            if local(host.tag) == "Control":
                assert_order(host, CONTROL_ORDER)


def test_required_values_are_present_and_well_formed(root: ET.Element) -> None:
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        root.findtext("o:Id", namespaces=NS) or "",
    )
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", root.findtext("o:Version", namespaces=NS) or "")
    assert root.findtext("o:Permissions", namespaces=NS) == "ReadWriteItem"
    assert root.find("o:SupportUrl", NS).get("DefaultValue") == f"{BASE}/support"  # type: ignore[union-attr]
    assert [d.text for d in root.iterfind("o:AppDomains/o:AppDomain", NS)] == [BASE]
    rules = {(r.get("ItemType"), r.get("FormType")) for r in root.iterfind("o:Rule/o:Rule", NS)}
    assert rules == {("Message", "Read"), ("Message", "Edit")}


def test_every_url_is_https_on_the_base_url(root: ET.Element) -> None:
    urls = [
        value
        for el in root.iter()
        for value in [el.get("DefaultValue"), el.text]
        if value and "://" in value
    ]
    assert len(urls) >= 10
    for url in urls:
        if url.startswith("api://"):  # WebApplicationInfo's Resource is an identifier
            assert url == f"api://addin.example.com/{CLIENT}"
            continue
        assert url.startswith(BASE + "/") or url == BASE, url


def test_every_resid_is_defined_in_the_same_overrides(root: ET.Element) -> None:
    for vo in overrides(root):
        (resources,) = [c for c in vo if local(c.tag) == "Resources"]
        defined = {el.get("id") for el in resources.iter() if el.get("id")}
        # Only this VersionOverrides' own elements, not the nested one's.
        own = [el for el in vo.iter() if el is not vo and not _inside_nested(vo, el)]
        used = {el.get("resid") for el in own if el.get("resid")}
        assert used, "no resid used"
        assert used <= defined, f"undefined resids: {used - defined}"


def _inside_nested(vo: ET.Element, target: ET.Element) -> bool:
    for child in vo:
        if local(child.tag) == "VersionOverrides":
            return any(el is target for el in child.iter())
    return False


def test_compose_and_read_buttons_open_the_task_pane(root: ET.Element) -> None:
    _, v11 = overrides(root)
    points = {
        p.get(XSI_TYPE): p for p in v11.iter(f"{{{NS['v11']}}}ExtensionPoint") if p.get(XSI_TYPE)
    }
    for surface in ("MessageComposeCommandSurface", "MessageReadCommandSurface"):
        action = points[surface].find(".//v11:Action", NS)
        assert action is not None and action.get(XSI_TYPE) == "ShowTaskpane"
        source = action.find("v11:SourceLocation", NS)
        assert source is not None and source.get("resid") == "Taskpane.Url"
        sizes = {img.get("size") for img in points[surface].iterfind(".//bt:Image", NS)}
        assert sizes == {"16", "32", "80"}


def launch_events(root: ET.Element) -> list[ET.Element]:
    _, v11 = overrides(root)
    return list(v11.iterfind(".//v11:LaunchEvent", NS))


def test_launch_events_use_the_runtime_and_soft_block_on_send(root: ET.Element) -> None:
    events = {e.get("Type"): e for e in launch_events(root)}
    assert set(events) == {"OnMessageSend", "OnMessageRecipientsChanged", "OnMessageFromChanged"}
    assert events["OnMessageSend"].get("SendMode") == "SoftBlock"
    assert all(e.get("SendMode") is None for t, e in events.items() if t != "OnMessageSend")
    _, v11 = overrides(root)
    runtime = v11.find(".//v11:Runtimes/v11:Runtime", NS)
    assert runtime is not None
    point = next(
        p for p in v11.iter(f"{{{NS['v11']}}}ExtensionPoint") if p.get(XSI_TYPE) == "LaunchEvent"
    )
    source = point.find("v11:SourceLocation", NS)
    assert source is not None and source.get("resid") == runtime.get("resid")
    override = runtime.find("v11:Override", NS)
    assert override is not None and override.get("type") == "javascript"
    urls = {u.get("id"): u.get("DefaultValue") for u in v11.iterfind(".//bt:Url", NS)}
    assert urls[override.get("resid")] == f"{BASE}/launchevent.js"
    assert urls[runtime.get("resid")] == f"{BASE}/commands.html"
    sets = v11.find("v11:Requirements/bt:Sets", NS)
    assert sets is not None and sets.get("DefaultMinVersion") == "1.12"


def test_every_launch_event_function_is_associated_in_launchevent_js(root: ET.Element) -> None:
    script = (ROOT / "taskpane" / "launchevent.js").read_text()
    associated = set(re.findall(r"Office\.actions\.associate\(\s*\"(\w+)\"", script))
    names = {e.get("FunctionName") for e in launch_events(root)}
    assert names and names <= associated, f"not associated: {names - associated}"
    # Self-contained: classic Outlook's runtime has no module loader.
    assert not re.search(r"^\s*(import|export)\b", script, re.MULTILINE)
    assert "require(" not in script


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_icon_files_have_the_sizes_the_manifest_claims(root: ET.Element) -> None:
    def file_of(url: str) -> Path:
        assert url.startswith(f"{BASE}/assets/")
        return ASSETS / url.rsplit("/", 1)[1]

    icon = root.find("o:IconUrl", NS)
    high = root.find("o:HighResolutionIconUrl", NS)
    assert icon is not None and high is not None
    assert png_size(file_of(icon.get("DefaultValue", ""))) == (64, 64)
    assert png_size(file_of(high.get("DefaultValue", ""))) == (128, 128)
    for vo in overrides(root):
        for image in vo.iterfind("*/bt:Images/bt:Image", NS):
            size = int(image.get("id", "").split(".")[1].split("x")[0])
            assert png_size(file_of(image.get("DefaultValue", ""))) == (size, size)


def test_web_application_info_names_the_api_on_the_add_in_host(root: ET.Element) -> None:
    _, v11 = overrides(root)
    info = v11.find("v11:WebApplicationInfo", NS)
    assert info is not None
    assert info.findtext("v11:Id", namespaces=NS) == CLIENT
    assert info.findtext("v11:Resource", namespaces=NS) == f"api://addin.example.com/{CLIENT}"
    without = ET.fromstring(render_manifest(BASE))
    assert not list(without.iter(f"{{{NS['v11']}}}WebApplicationInfo"))


def test_dev_and_production_manifests_install_side_by_side() -> None:
    prod = ET.fromstring(render_manifest(BASE))
    dev = ET.fromstring(render_manifest("https://127.0.0.1:8443"))
    assert prod.findtext("o:Id", namespaces=NS) != dev.findtext("o:Id", namespaces=NS)
    assert prod.find("o:DisplayName", NS).get("DefaultValue") == "SendReady"  # type: ignore[union-attr]
    assert "development" in dev.find("o:DisplayName", NS).get("DefaultValue", "")  # type: ignore[union-attr]
    # The same URL always gives the same Id, so an update replaces the installed add-in.
    assert render_manifest(BASE) == render_manifest(BASE + "/")


@pytest.mark.parametrize(
    ("base", "client"),
    [
        ("http://addin.example.com", None),
        ("https://", None),
        ("https://addin.example.com/?x=1", None),
        ('https://addin.example.com/"><x', None),
        (BASE, "not-a-guid"),
    ],
)
def test_bad_input_is_refused_with_a_reason(base: str, client: str | None) -> None:
    with pytest.raises(ManifestError) as info:
        render_manifest(base, client)
    assert str(info.value)


def test_the_cli_prints_the_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    out = io.StringIO()
    assert cli.main(["manifest", "--base-url", BASE, "--client-id", CLIENT], out) == 0
    assert ET.fromstring(out.getvalue()).findtext("o:Version", namespaces=NS)
    assert cli.main(["manifest", "--base-url", "http://insecure.example.com"], out) == 2
    assert "https" in capsys.readouterr().err


def test_the_service_serves_the_manifest_and_the_allowed_scripts_list() -> None:
    app = Flask("manifest-test")
    addin.register(app, Settings(public_base_url=BASE, client_id=CLIENT))
    client = app.test_client()
    served = client.get("/manifest.xml")
    assert served.status_code == 200
    assert served.mimetype == "application/xml"
    assert served.get_data(as_text=True) == render_manifest(BASE, CLIENT)
    allowed = client.get("/.well-known/microsoft-officeaddins-allowed.json")
    assert allowed.get_json() == {"allowed": [f"{BASE}/launchevent.js"]}
    icon = client.get("/assets/icon-80.png")
    assert icon.status_code == 200 and "no-cache" not in icon.headers.get("Cache-Control", "")
    script = client.get("/launchevent.js").get_data(as_text=True)
    assert f'apiBase: "{BASE}"' in script and f'clientId: "{CLIENT}"' in script
