"""docker-compose.yml runs the same stack as `modelog up`: same services, ports
and environment names. No Docker engine runs here, so we check the file."""

import json
import re
from pathlib import Path

import pytest
import yaml

from auditor.settings import AuditorSettings
from modelog_platform.adapters.postgres import OWNER_ROLE, SERVICE_ROLES
from modelog_platform.engines.kafka import CONTROLLER_PRINCIPAL, Kafka
from modelog_platform.engines.kafka import PRINCIPALS as KAFKA_PRINCIPALS
from modelog_platform.engines.layout import Layout
from modelog_platform.engines.postgres import PG_HBA, ROLES, grants
from modelog_platform.engines.seaweedfs import PRINCIPALS, SERVICE_PRINCIPALS, s3_identities
from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.services import MIGRATED, SERVICES
from modelog_platform.settings import (
    LOCAL_KAFKA_ADMIN,
    LOCAL_POSTGRES_ADMIN,
    LOCAL_S3_ADMIN,
    EngineEndpoints,
    LocalStack,
    ServicePorts,
)
from projector.settings import ProjectorSettings
from promoter.settings import PromoterSettings
from registrar.settings import RegistrarSettings
from sentinel.settings import SentinelSettings

ROOT = Path(__file__).parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SETTINGS = {"registrar": RegistrarSettings, "promoter": PromoterSettings,
            "projector": ProjectorSettings, "auditor": AuditorSettings, "sentinel": SentinelSettings}


def env_names(settings_class) -> set[str]:
    """What the service reads: its own settings, and what every service reads
    (whom to trust, where the stack home is)."""
    return {f"MODELOG_{field.upper()}" for cls in (settings_class, IdentitySettings, LocalStack)
            for field in cls.model_fields}


def test_compose_runs_the_engines_and_every_service():
    assert {"kafka", "postgres", "seaweedfs", *SERVICES} <= set(COMPOSE["services"])


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_runs_its_own_module(service):
    assert COMPOSE["services"][service]["command"] == ["python", "-m", service]


@pytest.mark.parametrize("service", SERVICES)
def test_every_compose_variable_is_one_the_service_reads(service):
    environment = set(COMPOSE["services"][service]["environment"])
    assert environment <= env_names(SETTINGS[service]), environment - env_names(SETTINGS[service])


@pytest.mark.parametrize("service", SERVICES)
def test_compose_ports_are_the_local_ports(service):
    port = ServicePorts.model_fields[f"{service}_port"].default  # the defaults, not the test env
    assert COMPOSE["services"][service]["ports"] == [f"{port}:{port}"]
    assert COMPOSE["services"][service]["environment"][f"MODELOG_{service.upper()}_PORT"] == str(port)


@pytest.mark.parametrize("engine, port_field", [("kafka", "kafka_bootstrap"),
                                                ("postgres", "postgres_dsn"),
                                                ("seaweedfs", "s3_endpoint")])
def test_engine_ports_published_where_the_local_defaults_expect_them(engine, port_field):
    default = str(RegistrarSettings.model_fields[port_field].default)
    published = COMPOSE["services"][engine]["ports"][0].split(":")[0]
    assert f"127.0.0.1:{published}" in default


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_trusts_the_key_pair_provision_makes(service):
    """Services refuse to start without an issuer to trust; the registrar signs commands."""
    public_key = COMPOSE["x-modelog-env"]["MODELOG_IDENTITY_PUBLIC_KEY_FILE"]
    mounts = COMPOSE["services"][service]["volumes"]
    assert [m for m in mounts if public_key.startswith(m.split(":")[1])], mounts
    assert COMPOSE["services"][service]["environment"]["MODELOG_IDENTITY_PUBLIC_KEY_FILE"] == public_key
    assert "modelog token init" in " ".join(COMPOSE["services"]["provision"]["command"])
    assert "MODELOG_REQUIRE_SIGNED_COMMANDS" not in COMPOSE["services"][service]["environment"]


def test_no_s3_secret_is_written_into_compose():
    """Secrets come from files; the shared environment names no S3 identity at all."""
    assert not {"MODELOG_S3_ACCESS_KEY", "MODELOG_S3_SECRET_KEY"} & set(COMPOSE["x-modelog-env"])
    for name, service in COMPOSE["services"].items():
        environment = service.get("environment", {})
        assert not [v for v in environment if v.startswith("MODELOG_S3") and v.endswith("SECRET_KEY")], name
    assert all(set(secret) == {"file"} for secret in COMPOSE["secrets"].values())


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_the_s3_identity_the_local_stack_gives_it(service):
    """The principals of SeaweedFS.service_env, each with its secret file mounted."""
    environment, mounted = COMPOSE["services"][service]["environment"], COMPOSE["services"][service].get("secrets", [])
    principals = SERVICE_PRINCIPALS.get(service, ())
    for principal in principals:
        prefix = "MODELOG_S3" if principal == service else f"MODELOG_S3_{principal.upper()}"
        assert environment[f"{prefix}_ACCESS_KEY"] == principal
        assert environment[f"{prefix}_SECRET_KEY_FILE"] == f"/run/secrets/s3-{principal}"
    assert sorted(m for m in mounted if m.startswith("s3-")) == sorted(f"s3-{principal}" for principal in principals)
    assert not [v for v in environment if v.startswith("MODELOG_S3_") and v.endswith("ACCESS_KEY")
                and environment[v] not in principals]


def test_only_provisioning_is_the_s3_admin():
    provision = COMPOSE["services"]["provision"]
    assert provision["environment"]["MODELOG_S3_ACCESS_KEY"] == LOCAL_S3_ADMIN
    assert [m for m in provision["secrets"] if m.startswith("s3-")] == [f"s3-{LOCAL_S3_ADMIN}"]


def test_seaweedfs_in_compose_has_the_identities_of_the_local_stack():
    """deploy/seaweedfs/s3.json is what the local stack writes, each secret a
    reference SeaweedFS expands from the variable its shell reads from the file."""
    bucket = COMPOSE["x-modelog-env"]["MODELOG_ARTIFACT_BUCKET"]
    expected = s3_identities(bucket, lambda who: f"${{MODELOG_S3_{who.upper()}_SECRET}}")
    assert json.loads((ROOT / "deploy" / "seaweedfs" / "s3.json").read_text()) == expected
    seaweedfs = COMPOSE["services"]["seaweedfs"]
    script = seaweedfs["command"][0]
    assert f"for who in {' '.join(PRINCIPALS)};" in script and "-s3.iam=false" in script
    assert "MODELOG_S3_$$(echo $$who | tr a-z A-Z)_SECRET=$$(cat /run/secrets/s3-$$who)" in script
    assert sorted(seaweedfs["secrets"]) == sorted(f"s3-{who}" for who in PRINCIPALS) \
        == sorted(name for name in COMPOSE["secrets"] if name.startswith("s3-"))
    assert COMPOSE["secrets"][f"s3-{LOCAL_S3_ADMIN}"]["file"] == f"./deploy/seaweedfs/secrets/{LOCAL_S3_ADMIN}"


def postgres_env(service: dict) -> dict[str, str]:
    return {k: v for k, v in service.get("environment", {}).items() if k.startswith("MODELOG_POSTGRES")}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_the_postgres_role_the_local_stack_gives_it(service):
    """Postgres.service_env's role, its password in a mounted file, never in the
    DSN; the registrar and the promoter have no role and no DSN at all."""
    compose = COMPOSE["services"][service]
    environment, mounted = postgres_env(compose), compose.get("secrets", [])
    role = SERVICE_ROLES.get(service)
    if role is None:
        assert environment == {} and not [m for m in mounted if m.startswith("postgres-")]
        return
    assert environment == {"MODELOG_POSTGRES_DSN": f"postgresql://{role}@postgres:5432/modelog",
                           "MODELOG_POSTGRES_PASSWORD_FILE": f"/run/secrets/postgres-{role}",
                           "MODELOG_POSTGRES_CA_FILE": "/run/secrets/postgres-ca"}
    assert sorted(m for m in mounted if m.startswith("postgres-")) == sorted([f"postgres-{role}", "postgres-ca"])
    assert compose["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_no_postgres_secret_is_written_into_compose():
    assert not [k for k in COMPOSE["x-modelog-env"] if k.startswith("MODELOG_POSTGRES")]
    for name, service in COMPOSE["services"].items():
        environment = service.get("environment", {})
        assert "MODELOG_POSTGRES_PASSWORD" not in environment, name
        dsn = environment.get("MODELOG_POSTGRES_DSN", "postgresql://")
        assert ":" not in dsn.removeprefix("postgresql://").split("@")[0], name  # no password in a DSN


def test_the_schema_is_migrated_by_its_owner_before_the_services_start():
    """A one-shot as the owner role, each migrated service's `migrate` entry point;
    its variables are ones the migration step reads."""
    migrate = COMPOSE["services"]["migrate"]
    assert migrate["command"] == ["sh", "-c", " && ".join(f"python -m {s} migrate" for s in MIGRATED)]
    assert postgres_env(migrate) == {"MODELOG_POSTGRES_DSN": f"postgresql://{OWNER_ROLE}@postgres:5432/modelog",
                                     "MODELOG_POSTGRES_PASSWORD_FILE": f"/run/secrets/postgres-{OWNER_ROLE}",
                                     "MODELOG_POSTGRES_CA_FILE": "/run/secrets/postgres-ca"}
    assert set(migrate["environment"]) <= {f"MODELOG_{f.upper()}" for f in EngineEndpoints.model_fields}
    assert sorted(migrate["secrets"]) == sorted([f"postgres-{OWNER_ROLE}", "postgres-ca"])
    assert migrate["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_postgres_in_compose_has_the_roles_grants_and_tls_of_the_local_stack():
    postgres = COMPOSE["services"]["postgres"]
    assert postgres["environment"]["POSTGRES_USER"] == LOCAL_POSTGRES_ADMIN
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == f"/run/secrets/postgres-{LOCAL_POSTGRES_ADMIN}"
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    assert "--auth-local=scram-sha-256 --auth-host=scram-sha-256" in postgres["environment"]["POSTGRES_INITDB_ARGS"]
    command = postgres["command"][0]
    for setting in ("ssl=on", "password_encryption=scram-sha-256", "hba_file=/etc/postgresql/pg_hba.conf"):
        assert f"-c {setting}" in command
    assert "install -o postgres -g postgres -m 0600 /run/secrets/postgres-server-key" in command
    assert set(postgres["secrets"]) == {f"postgres-{role}" for role in (LOCAL_POSTGRES_ADMIN, *ROLES)} \
        | {"postgres-server-cert", "postgres-server-key"}

    def rules(text: str) -> list[list[str]]:
        return [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]

    hba = rules((ROOT / "deploy/postgres/pg_hba.conf").read_text())
    assert ["hostnossl", "all", "all", "all", "reject"] in hba
    assert {rule[-1] for rule in hba} == {rule[-1] for rule in rules(PG_HBA)} == {"scram-sha-256", "reject"}
    script = (ROOT / "deploy/postgres/modelog-roles.sh").read_text()
    for role in ROLES:
        assert f"CREATE ROLE {role} LOGIN PASSWORD" in script
        assert f'secret {role})"' in script
    statements = [line.strip().replace('"', "") for line in grants("modelog").splitlines()
                  if line.strip() and not line.strip().startswith("--")]
    assert statements and all(statement in script for statement in statements)


def kafka_env(service: dict) -> dict[str, str]:
    return {k: v for k, v in service.get("environment", {}).items()
            if k.startswith("MODELOG_KAFKA_") and k != "MODELOG_KAFKA_BOOTSTRAP"}


def local_kafka(tmp_path: Path) -> tuple[Kafka, Layout]:
    lay = Layout(EngineEndpoints(), LocalStack(home=tmp_path / "home"), lambda _: None)
    lay.data("kafka").mkdir(parents=True)
    return Kafka(), lay


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_the_kafka_principal_the_local_stack_makes_it(service, tmp_path):
    """Kafka.service_env's principal, its password in a mounted file, the CA beside it."""
    compose = COMPOSE["services"][service]
    kafka, lay = local_kafka(tmp_path)
    local = kafka.service_env(lay, service)
    assert kafka_env(compose) == {"MODELOG_KAFKA_USERNAME": local["MODELOG_KAFKA_USERNAME"],
                                  "MODELOG_KAFKA_PASSWORD_FILE": f"/run/secrets/kafka-{service}",
                                  "MODELOG_KAFKA_CA_FILE": "/run/secrets/kafka-ca"}
    assert local["MODELOG_KAFKA_USERNAME"] == service
    assert sorted(m for m in compose.get("secrets", []) if m.startswith("kafka-")) == sorted([f"kafka-{service}",
                                                                                             "kafka-ca"])


def test_only_provisioning_is_the_kafka_admin():
    admins = [name for name, service in COMPOSE["services"].items()
              if kafka_env(service).get("MODELOG_KAFKA_USERNAME") == LOCAL_KAFKA_ADMIN]
    assert admins == ["provision"]
    assert "modelog engines provision" in " ".join(COMPOSE["services"]["provision"]["command"])


def test_kafka_in_compose_is_secured_as_the_local_broker(tmp_path):
    """The same listeners' security, mechanisms, authorizer and super users as
    the local broker; SCRAM users for the same principals; no password in the file."""
    script = COMPOSE["services"]["kafka"]["command"][0]
    properties = dict(line.split("=", 1) for line in script.split("cat > /tmp/server.properties <<EOF\n")[1]
                      .split("\nEOF\n")[0].splitlines())
    kafka, lay = local_kafka(tmp_path)
    local = kafka._security(lay, 9092, 9093)
    assert set(local) <= set(properties)
    for key, value in local.items():
        if "jaas" in key:
            continue  # holds the local passwords: checked below for file references
        if key.startswith("ssl.") and key.endswith(".location"):
            assert properties[key].startswith("/run/secrets/kafka-"), key
        elif "listeners" not in key:
            assert properties[key] == value, key
    for key in (k for k in local if "jaas" in k):
        secrets = re.findall(r'(?:password|user_\w+)="([^"]*)"', properties[key])
        assert secrets and all(re.fullmatch(r"\$\$\(pw \w+\)", s) for s in secrets), properties[key]
    assert f"for who in {' '.join(KAFKA_PRINCIPALS)}; do" in script
    assert "--add-scram SCRAM-SHA-512=[name=$$who,password=$$(pw $$who)]" in script
    mounted = COMPOSE["services"]["kafka"]["secrets"]
    assert sorted(mounted) == sorted(name for name in COMPOSE["secrets"] if name.startswith("kafka-"))
    assert {f"kafka-{who}" for who in (*KAFKA_PRINCIPALS, CONTROLLER_PRINCIPAL)} <= set(mounted)
