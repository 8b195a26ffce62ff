"""docker-compose.yml runs the same stack as `modelog up`: same services, ports
and environment names. No Docker engine runs here, so we check the file."""

from pathlib import Path

import pytest
import yaml

from auditor.settings import AuditorSettings
from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.services import SERVICES
from modelog_platform.settings import LocalStack, ServicePorts
from projector.settings import ProjectorSettings
from promoter.settings import PromoterSettings
from registrar.settings import RegistrarSettings

COMPOSE = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())
SETTINGS = {"registrar": RegistrarSettings, "promoter": PromoterSettings,
            "projector": ProjectorSettings, "auditor": AuditorSettings}


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
