"""docker-compose.yml against the code, beyond tests/unit/test_compose.py's
names and ports: each service's health check asks its own /healthz, it starts
after what it needs, and the keys its code looks for are where compose puts
them (no Docker engine here: the file is what is checked)."""

from pathlib import Path, PurePosixPath

import pytest
import yaml

from modelog_platform.services import MIGRATED
from modelog_platform.settings import ServicePorts
from modelog_platform.web import health_router

ROOT = Path(__file__).parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
HOME = PurePosixPath(COMPOSE["x-modelog-env"]["MODELOG_HOME"])
SERVICES = ("registrar", "promoter", "projector", "auditor")
READERS = ("promoter", "projector", "auditor")  # every service that proves events against the writer's key


def service(name: str) -> dict:
    return COMPOSE["services"][name]


def mounts(name: str) -> dict[PurePosixPath, str]:
    """Mount point -> volume name."""
    return {PurePosixPath(m.split(":")[1]): m.split(":")[0] for m in service(name).get("volumes", [])}


@pytest.mark.parametrize("name", SERVICES)
def test_each_health_check_asks_the_service_s_own_healthz(name):
    port = ServicePorts.model_fields[f"{name}_port"].default
    assert "/healthz" in {route.path for route in health_router(lambda: None).routes}  # type: ignore[arg-type, return-value]
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(service(name)["healthcheck"]["test"])


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_waits_for_provisioning_and_its_schema(name):
    needs = service(name)["depends_on"]
    assert needs["provision"] == {"condition": "service_completed_successfully"}
    if name in MIGRATED:
        assert needs["migrate"] == {"condition": "service_completed_successfully"}


def test_the_registrar_waits_for_a_healthy_projector():
    """Its readiness and every write's answer ask the projector."""
    assert service("registrar")["depends_on"]["projector"] == {"condition": "service_healthy"}


def test_the_promoter_signs_with_the_key_provision_makes_on_a_volume_no_reader_mounts():
    key = PurePosixPath(service("promoter")["environment"]["MODELOG_LOG_SIGNING_KEY_FILE"])
    volume = mounts("promoter")[key.parent]
    assert mounts("provision")[key.parent] == volume
    assert str(key.parent) in " ".join(service("provision")["command"])
    assert all(volume not in mounts(other).values() for other in SERVICES if other != "promoter")


@pytest.mark.parametrize("name", READERS)
def test_every_reader_trusts_the_public_half_provision_copies_beside_the_issuer(name):
    trusted = PurePosixPath(service(name)["environment"]["MODELOG_LOG_TRUSTED_KEYS_FILE"])
    assert mounts(name)[trusted.parent] == mounts("provision")[trusted.parent] == "identity"
    assert f"'{trusted}'" in " ".join(service("provision")["command"])


def test_the_auditor_keeps_its_seal_key_on_a_volume():
    """Without MODELOG_AUDIT_SEAL_KEY[_FILE] the auditor makes its pair under
    <home>/seals (seal_store.local_key_directory): a container's own disk would
    give every restart a new key."""
    assert "MODELOG_AUDIT_SEAL_KEY_FILE" not in service("auditor")["environment"]
    assert HOME / "seals" in mounts("auditor")
    assert mounts("auditor")[HOME / "seals"] in COMPOSE["volumes"]


def test_the_sentinel_keeps_its_book_on_a_volume():
    """The book is written under <home>/sentinel (the Faust app's directory):
    on a container's own disk, every restart would fold the whole log."""
    assert mounts("sentinel")[HOME / "sentinel"] in COMPOSE["volumes"]
