"""deploy/: the Dockerfile, compose file and Kubernetes manifests say what the operations
guide promises, name only real settings and commands, and the guide's generated parts are
current."""

from __future__ import annotations

import re
import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from sendready import healthcheck, ops_doc
from sendready.cli import build_parser
from sendready.config import PREFIX, Settings
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SETTINGS = {PREFIX + f.name.upper() for f in fields(Settings)}


def k8s_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in of_kind(kind) if d["metadata"]["name"] == name]
    return doc


def assert_real_command(argv: list[str]) -> None:
    """``argv`` is a `sendready` command line the CLI accepts."""
    assert argv[0] == "sendready", argv
    build_parser().parse_args(argv[1:])


# -- Dockerfile --------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_the_image_is_multi_stage_slim_non_root_and_has_a_healthcheck() -> None:
    steps = dockerfile()
    bases = [rest.split()[0] for op, rest in steps if op == "FROM"]
    assert len(bases) >= 2 and bases[-1].startswith("python:3.11-slim")
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    users = [rest for op, rest in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert int(users[-1].split(":")[0]) >= 1000
    (check,) = [rest for op, rest in final if op == "HEALTHCHECK"]
    assert "python -m sendready.healthcheck" in " ".join(re.findall(r'"([^"]+)"', check))
    (cmd,) = [rest for op, rest in final if op == "CMD"]
    assert "deploy/gunicorn.conf.py" in cmd
    # The final stage has no compilers or package-manager caches added.
    assert not any(op == "RUN" and "apt-get install" in rest for op, rest in final)


def test_the_image_copies_what_the_service_serves_and_dockerignore_keeps_secrets_out() -> None:
    copied = " ".join(rest for op, rest in dockerfile() if op == "COPY")
    for needed in ("taskpane", "addin-manifest", "node_modules", "backend", "gunicorn.conf.py"):
        assert needed in copied, needed
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line for line in lines if line and not line.startswith("#")]
    # An allow-list: everything is left out unless named.
    assert rules[0] == "*" and all(r.startswith(("!", "**/")) for r in rules[1:])
    assert "**/.env" in rules


def test_the_listen_default_of_the_image_is_what_the_healthcheck_asks() -> None:
    env = {
        k: v
        for op, rest in dockerfile()
        if op == "ENV"
        for k, v in (pair.split("=", 1) for pair in shlex.split(rest))
    }
    assert env["SENDREADY_LISTEN"] == "0.0.0.0:8000"
    assert healthcheck.target(env["SENDREADY_LISTEN"]) == ("127.0.0.1", 8000)
    assert healthcheck.target("[::]:8000") == ("::1", 8000)
    assert set(k for k in env if k.startswith(PREFIX)) <= SETTINGS


# -- compose -----------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def test_compose_runs_web_worker_redis_and_postgres_with_a_migration_first() -> None:
    services = compose()["services"]
    assert {"web", "worker", "redis", "postgres", "migrate"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["web"]["deploy"]["replicas"] == 2
    for name in ("web", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("redis", "postgres"):
        assert services[name]["healthcheck"]["test"]
    for name in ("migrate", "worker"):
        assert_real_command(services[name]["command"])
    env = services["web"]["environment"]
    assert set(env) <= SETTINGS
    assert env["SENDREADY_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_the_example_env_file_names_only_settings() -> None:
    lines = (DEPLOY / "sendready.env.example").read_text().splitlines()
    names = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    assert names and names <= SETTINGS
    Settings.from_mapping(
        {k: v for k, v in (line.split("=", 1) for line in lines if "=" in line and line[0] != "#")}
    )


# -- Kubernetes --------------------------------------------------------------------------


def test_the_manifests_hold_every_kind_the_guide_lists() -> None:
    kinds = {d["kind"] for d in k8s_documents()}
    expected = {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "ConfigMap"}
    assert expected | {"Secret", "Job", "Namespace"} <= kinds
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.stem != "kustomization")


def test_web_pods_probe_healthz_and_readyz_on_the_containers_port() -> None:
    web = named("Deployment", "sendready-web")["spec"]["template"]["spec"]
    (container,) = web["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


@pytest.mark.parametrize("workload", ["sendready-web", "sendready-worker"])
def test_every_pod_runs_non_root_read_only_without_capabilities(workload: str) -> None:
    pod = named("Deployment", workload)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] >= 1000
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert "limits" in container["resources"]
        sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"sendready"}


def test_selectors_services_ingress_and_autoscalers_fit_together() -> None:
    for deployment in of_kind("Deployment"):
        spec = deployment["spec"]
        assert (
            spec["selector"]["matchLabels"].items()
            <= spec["template"]["metadata"]["labels"].items()
        )
    service = named("Service", "sendready-web")
    web_labels = named("Deployment", "sendready-web")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= web_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    backend = named("Ingress", "sendready")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "sendready-web"
    assert named("Ingress", "sendready")["spec"]["tls"]
    deployments = {d["metadata"]["name"] for d in of_kind("Deployment")}
    for hpa in of_kind("HorizontalPodAutoscaler"):
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
        assert hpa["spec"]["minReplicas"] >= 2


def test_config_and_secret_name_only_settings_and_secrets_stay_out_of_the_configmap() -> None:
    config = named("ConfigMap", "sendready")["data"]
    secret = named("Secret", "sendready")["stringData"]
    assert set(config) <= SETTINGS and set(secret) <= SETTINGS
    secret_settings = {PREFIX + f.name.upper() for f in fields(Settings) if f.metadata["secret"]}
    assert not secret_settings & set(config)
    assert "SENDREADY_DATABASE_URL" in secret  # it holds the password
    Settings.from_mapping({**config, **secret})


def test_worker_and_migration_run_real_commands() -> None:
    worker = named("Deployment", "sendready-worker")["spec"]["template"]["spec"]
    assert_real_command(worker["containers"][0]["command"])
    job = named("Job", "sendready-migrate")["spec"]["template"]["spec"]
    assert_real_command(job["containers"][0]["command"])


# -- the operations guide ----------------------------------------------------------------


def test_the_operations_guide_is_generated_from_the_current_code() -> None:
    assert ops_doc.main(["--check"]) == 0, "run: python -m sendready.ops_doc"
    text = (ROOT / "docs" / "operations.md").read_text()
    for name in SETTINGS:
        assert f"`{name}`" in text, name
    for needed in ("## Metrics", "## Logs", "## History, backup and restore", "pg_dump"):
        assert needed in text


def test_a_stale_guide_is_caught_and_rewritten(tmp_path: Path) -> None:
    stale = tmp_path / "operations.md"
    stale.write_text(
        "# x\n<!-- BEGIN GENERATED: settings -->\nold\n<!-- END GENERATED: settings -->\n"
    )
    assert ops_doc.main(["--check", str(stale)]) == 1
    assert ops_doc.main([str(stale)]) == 0
    assert ops_doc.main(["--check", str(stale)]) == 0
    assert "`SENDREADY_DNS_SERVERS`" in stale.read_text()
