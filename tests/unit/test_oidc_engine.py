"""The local OIDC provider's configuration, as the stack writes it, without
starting it: what the registrar is told, who may sign in with which role,
and that Hydra's admin API is on no port. The running provider is
tests/integration/test_oidc_sign_in.py."""

import pytest

from modelog_platform import engines
from modelog_platform.engines.layout import Layout
from modelog_platform.engines.oidc import CONSOLE_CLIENT, Oidc
from modelog_platform.settings import EngineEndpoints, LocalStack
from registrar.console.oidc import ClaimMapping, config_from_settings, identity_from_claims
from registrar.settings import RegistrarSettings

OIDC = Oidc()


@pytest.fixture
def lay(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELOG_REGISTRAR_PORT", "9100")
    monkeypatch.delenv("MODELOG_REGISTRAR_URL", raising=False)
    return Layout(EngineEndpoints(), LocalStack(home=tmp_path / "home", oidc_port=9144), lambda _: None)


def test_the_registrar_is_told_the_providers_issuer_its_client_and_its_callback(lay, monkeypatch):
    # A secret in the caller's environment: the service's environment blanks it, as `modelog up` starts it.
    monkeypatch.setenv("MODELOG_OIDC_CLIENT_SECRET", "the caller's own")
    for name, value in engines.service_env(lay.endpoints, lay.stack, "registrar").items():
        monkeypatch.setenv(name, value)
    config = config_from_settings(RegistrarSettings())
    assert config is not None
    assert (config.issuer, config.client_id) == ("http://127.0.0.1:9144", CONSOLE_CLIENT)
    assert config.redirect_uri == "http://127.0.0.1:9100/console/callback"
    assert config.client_secret == OIDC.client_secret_file(lay).read_text().strip()


@pytest.mark.parametrize("service", ["promoter", "projector", "auditor"])
def test_no_other_service_is_told_anything_about_sign_in(lay, service):
    assert not [name for name in engines.service_env(lay.endpoints, lay.stack, service) if "OIDC" in name]


def test_each_person_of_the_story_signs_in_with_their_role_under_the_default_mapping(lay):
    roles = {}
    for user in OIDC.users(lay)["users"]:
        claims = {"iss": OIDC.issuer(lay), "sub": user["username"], "exp": 2_000_000_000, "jti": "j",
                  **user["claims"]}
        roles[user["username"]] = identity_from_claims(claims, ClaimMapping(), "token").roles
        assert OIDC.password_file(lay, user["username"]).read_text().strip()  # a password of its own
    assert roles == {"alice": ("publisher",), "bob": ("approver",), "carol": ("operator",), "dave": ("auditor",)}


def test_hydras_apis_listen_on_private_unix_sockets_and_its_pages_on_the_issuers_port(lay):
    config = OIDC.hydra_config(lay)
    for api in ("public", "admin"):
        assert config["serve"][api]["host"].startswith(f"unix:{lay.data('oidc')}/")
        assert config["serve"][api]["socket"]["mode"] == 0o600
    issuer = OIDC.issuer(lay)
    assert config["urls"]["self"]["issuer"] == issuer
    assert (config["urls"]["login"], config["urls"]["consent"]) == (f"{issuer}/login", f"{issuer}/consent")
    assert len(config["secrets"]["system"][0]) >= 16  # Hydra refuses a shorter one
