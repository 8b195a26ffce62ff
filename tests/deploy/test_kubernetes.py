"""deploy/kubernetes: the kustomize base validates against the Kubernetes
JSON schemas (kubernetes-validate bundles them, offline), with probes, ports,
variables and secrets that match the services' code, and network policies
that follow the engines' identities."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from auditor.settings import AuditorSettings
from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.settings import LocalStack, ServicePorts
from modelog_platform.web import health_router
from projector.settings import ProjectorSettings
from promoter.settings import PromoterSettings
from registrar.settings import RegistrarSettings
from sentinel.settings import SentinelSettings

ROOT = Path(__file__).parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.31"
SETTINGS: dict[str, type] = {"registrar": RegistrarSettings, "promoter": PromoterSettings,
                             "projector": ProjectorSettings, "auditor": AuditorSettings,
                             "sentinel": SentinelSettings}
SERVICES = tuple(SETTINGS)


def manifests() -> list[dict]:
    files = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"]
    return [doc for name in files for doc in yaml.safe_load_all((KUBERNETES / name).read_text()) if doc]


def test_kustomization_lists_every_manifest():
    listed = set(yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize("resource", manifests(), ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_each_manifest_validates_against_the_kubernetes_schemas(resource):
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def deployment(service: str) -> dict:
    return next(r for r in manifests() if r["kind"] == "Deployment" and r["metadata"]["name"] == service)


def container(service: str) -> dict:
    return deployment(service)["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("service", SERVICES)
def test_probes_ask_the_health_routes_at_the_port_the_service_listens_on(service):
    served = {route.path for route in health_router(lambda: None).routes}  # type: ignore[arg-type, return-value]
    spec = container(service)
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz" and "/readyz" in served
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz" and "/healthz" in served
    SETTINGS[service]
    port = ServicePorts.model_fields[f"{service}_port"].default
    assert spec["ports"] == [{"name": "http", "containerPort": port}]
    assert {"name": f"MODELOG_{service.upper()}_PORT", "value": str(port)} in spec["env"]
    assert spec["command"] == ["python", "-m", service]


def config_map(name: str) -> dict:
    return next(r for r in manifests() if r["kind"] == "ConfigMap" and r["metadata"]["name"] == name)["data"]


@pytest.mark.parametrize("service", SERVICES)
def test_every_variable_a_deployment_sets_is_one_the_service_reads(service):
    reads = {f"MODELOG_{field.upper()}" for cls in (SETTINGS[service], IdentitySettings, LocalStack)
             for field in cls.model_fields}
    spec = container(service)
    names = {e["name"] for e in spec["env"]}
    names |= {key for source in spec["envFrom"] for key in config_map(source["configMapRef"]["name"])}
    assert names - reads == set()


@pytest.mark.parametrize("service", SERVICES)
def test_every_file_a_deployment_names_is_in_a_mounted_secret(service):
    spec, pod = container(service), deployment(service)["spec"]["template"]["spec"]
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    mounts = {m["mountPath"]: secrets[m["name"]] for m in spec["volumeMounts"] if m["name"] in secrets}
    held = {r["metadata"]["name"]: set(r["stringData"]) for r in manifests() if r["kind"] == "Secret"}
    for variable in (e for e in spec["env"] if e["name"].endswith("_FILE")):
        directory, file = variable["value"].rsplit("/", 1)
        assert file in held[mounts[directory]], variable


def test_the_promoter_and_the_projector_have_disruption_budgets_and_more_than_one_replica():
    budgets = {r["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
               for r in manifests() if r["kind"] == "PodDisruptionBudget"}
    assert budgets == {"promoter", "projector"}
    assert all(deployment(s)["spec"]["replicas"] >= 2 for s in budgets)


def test_only_services_with_an_engine_identity_may_reach_that_engine():
    """PostgreSQL: the projector, the auditor (and the migration's owner role);
    the registrar and the promoter have no role there, so no way there."""
    labels = {s: deployment(s)["spec"]["template"]["metadata"]["labels"] for s in SERVICES}
    reaches = {engine: {s for s, found in labels.items() if found.get(f"modelog.dev/{engine}-client") == "true"}
               for engine in ("kafka", "postgres", "s3")}
    assert reaches == {"kafka": set(SERVICES), "postgres": {"projector", "auditor"},
                       "s3": set(SERVICES) - {"sentinel"}}
    policies = {r["metadata"]["name"]: r for r in manifests() if r["kind"] == "NetworkPolicy"}
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
