"""Each service's settings class is where it reads all its configuration,
identity included; the registrar finds the projector where the stack put it."""

import pytest

from auditor.settings import AuditorSettings
from modelog_platform.identity.settings import IdentitySettings
from projector.settings import ProjectorSettings
from promoter.settings import PromoterSettings
from registrar.settings import RegistrarSettings

SERVICE_SETTINGS = (RegistrarSettings, PromoterSettings, ProjectorSettings, AuditorSettings)


@pytest.mark.parametrize("settings_class", SERVICE_SETTINGS)
def test_every_service_reads_its_identity_settings_with_the_rest(settings_class, monkeypatch, tmp_path):
    monkeypatch.setenv("MODELOG_IDENTITY_ISSUER", "https://idp.example.com")
    monkeypatch.setenv("MODELOG_IDENTITY_PUBLIC_KEY_FILE", str(tmp_path / "issuer.pem"))
    settings = settings_class()
    assert isinstance(settings, IdentitySettings)
    assert settings.identity_issuer == "https://idp.example.com"
    assert settings.identity_public_key_file == tmp_path / "issuer.pem"


@pytest.fixture
def no_service_addresses(monkeypatch):
    for name in ("MODELOG_HOST", "MODELOG_PROJECTOR_PORT", "MODELOG_PROJECTOR_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_registrar_finds_the_projector_at_its_moved_port(no_service_addresses):
    no_service_addresses.setenv("MODELOG_PROJECTOR_PORT", "9102")
    assert RegistrarSettings().url("projector") == "http://127.0.0.1:9102"


def test_the_registrar_finds_the_projector_on_the_stack_host(no_service_addresses):
    no_service_addresses.setenv("MODELOG_HOST", "10.1.2.3")
    assert RegistrarSettings().url("projector") == "http://10.1.2.3:8002"
    no_service_addresses.setenv("MODELOG_HOST", "0.0.0.0")  # where it listens is no address to call
    assert RegistrarSettings().url("projector") == "http://127.0.0.1:8002"


def test_an_explicit_projector_url_wins(no_service_addresses):
    no_service_addresses.setenv("MODELOG_PROJECTOR_PORT", "9102")
    no_service_addresses.setenv("MODELOG_PROJECTOR_URL", "https://projector.internal/")
    assert RegistrarSettings().url("projector") == "https://projector.internal"
