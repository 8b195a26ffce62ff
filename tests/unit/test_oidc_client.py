"""The console's OpenID Connect client, its pure parts: PKCE, the authorization
URL, the callback's state, the ID token's checks and the mapping of its claims
to an Identity. The whole flow against a real provider is
tests/integration/test_oidc_sign_in.py."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from modelog_platform.identity.oidc import KeySet
from registrar.console.oidc import (
    ClaimMapping,
    ClientConfig,
    PendingSignIn,
    ProviderMetadata,
    SignInRefused,
    authorization_url,
    code_challenge,
    code_from_callback,
    config_from_settings,
    identity_from_claims,
    new_sign_in,
    verify_id_token,
)
from registrar.settings import RegistrarSettings

ISSUER = "https://login.example.com"
CLIENT = "modelog-console"
NOW = 1_800_000_000
METADATA = ProviderMetadata(ISSUER, f"{ISSUER}/oauth2/auth", f"{ISSUER}/oauth2/token", f"{ISSUER}/jwks")
CONFIG = ClientConfig(issuer=ISSUER, client_id=CLIENT, redirect_uri="http://127.0.0.1:8000/console/callback")
PENDING = PendingSignIn(state="the-state", nonce="the-nonce", code_verifier="v" * 64)


@contextmanager
def refused(code: str) -> Iterator[None]:
    """Then: refused with this reason code."""
    with pytest.raises(SignInRefused) as refusal:
        yield
    assert refusal.value.code == code, refusal.value


# -- PKCE and the way out -------------------------------------------------------

def test_the_s256_challenge_is_rfc_7636s_example():
    assert code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_every_sign_in_gets_its_own_state_nonce_and_a_verifier_of_rfc_length():
    first, second = new_sign_in(), new_sign_in()
    assert len({first.state, first.nonce, second.state, second.nonce}) == 4
    assert first.code_verifier != second.code_verifier
    assert 43 <= len(first.code_verifier) <= 128


def test_the_authorization_url_asks_for_a_code_with_state_nonce_and_the_s256_challenge():
    url = urlsplit(authorization_url(METADATA, CONFIG, PENDING))
    params = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == METADATA.authorization_endpoint
    assert params == {"response_type": "code", "client_id": CLIENT, "redirect_uri": CONFIG.redirect_uri,
                      "scope": "openid profile email", "state": "the-state", "nonce": "the-nonce",
                      "code_challenge": code_challenge(PENDING.code_verifier), "code_challenge_method": "S256"}
    assert PENDING.code_verifier not in url.query  # only its challenge leaves the console


def test_a_pending_sign_in_survives_its_cookie():
    assert PendingSignIn.from_dict(json.loads(json.dumps(PENDING.as_dict()))) == PENDING


# -- discovery ------------------------------------------------------------------

def discovery(**changes) -> dict:
    document = {"issuer": ISSUER, "authorization_endpoint": METADATA.authorization_endpoint,
                "token_endpoint": METADATA.token_endpoint, "jwks_uri": METADATA.jwks_uri,
                "code_challenge_methods_supported": ["plain", "S256"]}
    return {**document, **changes}


def test_a_discovery_document_gives_the_endpoints():
    assert ProviderMetadata.from_document(ISSUER, discovery()) == METADATA


@pytest.mark.parametrize("document", [discovery(issuer="https://evil.example.com"),
                                      discovery(jwks_uri=None),
                                      discovery(code_challenge_methods_supported=["plain"])])
def test_a_discovery_document_for_another_issuer_incomplete_or_without_s256_is_refused(document):
    with refused("discovery_invalid"):
        ProviderMetadata.from_document(ISSUER, document)


# -- the way back ---------------------------------------------------------------

def test_the_callback_gives_its_code_when_the_state_is_ours():
    assert code_from_callback(PENDING, {"state": "the-state", "code": "abc", "iss": ISSUER}, ISSUER) == "abc"


@pytest.mark.parametrize("params", [{"code": "abc"}, {"state": "another", "code": "abc"},
                                    {"state": "the-state-", "code": "abc"},
                                    {"state": "another", "error": "access_denied"}])
def test_a_callback_without_our_state_is_refused_before_anything_in_it_is_believed(params):
    with refused("state_mismatch"):
        code_from_callback(PENDING, params, ISSUER)


def test_a_callback_naming_another_issuer_is_refused():
    with refused("issuer_mismatch"):
        code_from_callback(PENDING, {"state": "the-state", "code": "abc", "iss": "https://evil.example.com"}, ISSUER)


def test_the_issuers_refusal_is_told_in_its_words():
    with refused("issuer_refused"):
        code_from_callback(PENDING, {"state": "the-state", "error": "access_denied",
                                     "error_description": "the person said no"}, ISSUER)


# -- the ID token ---------------------------------------------------------------

@pytest.fixture(scope="module")
def signer():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return key, KeySet.from_document({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]})


def id_token(signer, **changes) -> str:
    claims = {"iss": ISSUER, "sub": "bob", "aud": [CLIENT], "exp": NOW + 3600, "iat": NOW, "nonce": "the-nonce",
              "jti": "id-1", "groups": ["modelog-approver"]}
    claims = {name: value for name, value in {**claims, **changes}.items() if value is not None}
    return jwt.encode(claims, signer[0], algorithm="RS256", headers={"kid": "k1"})


def verify(signer, token: str, now: float = NOW) -> dict:
    return verify_id_token(token, signer[1], issuer=ISSUER, client_id=CLIENT, nonce="the-nonce", now=now)


def test_a_token_from_our_issuer_for_us_with_our_nonce_verifies(signer):
    assert verify(signer, id_token(signer))["sub"] == "bob"


@pytest.mark.parametrize("changes, code", [
    ({"aud": ["another-app"]}, "id_token_invalid"),
    ({"aud": [CLIENT, "another-app"]}, "id_token_invalid"),  # several audiences and no azp naming us
    ({"iss": "https://evil.example.com"}, "id_token_invalid"),
    ({"nonce": "another-sign-in"}, "nonce_mismatch"),
    ({"nonce": None}, "id_token_invalid"),
    ({"exp": NOW - 31}, "id_token_expired"),
    ({"iat": NOW + 31}, "id_token_invalid"),
])
def test_a_token_for_another_client_issuer_sign_in_or_time_is_refused(signer, changes, code):
    with refused(code):
        verify(signer, id_token(signer, **changes))


def test_a_token_for_several_audiences_is_taken_when_it_was_issued_to_us(signer):
    assert verify(signer, id_token(signer, aud=[CLIENT, "another-app"], azp=CLIENT))["azp"] == CLIENT


def test_a_token_signed_by_another_key_or_with_a_shared_secret_is_refused(signer):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(jwt.decode(id_token(signer), options={"verify_signature": False}), stranger,
                        algorithm="RS256", headers={"kid": "k1"})
    with refused("id_token_invalid"):
        verify(signer, forged)
    hmac_token = jwt.encode({"iss": ISSUER}, "a-shared-secret-of-enough-length-for-hs256", algorithm="HS256",
                            headers={"kid": "k1"})
    with refused("id_token_invalid"):
        verify(signer, hmac_token)


# -- claims to an Identity ------------------------------------------------------

def claims(**changes) -> dict:
    return {"iss": ISSUER, "sub": "alice", "exp": NOW + 3600, "jti": "id-1", **changes}


def test_groups_with_the_prefix_are_roles_and_other_groups_are_ignored():
    identity = identity_from_claims(claims(groups=["data-science", "modelog-publisher", "modelog-approver"]),
                                    ClaimMapping(), "token")
    assert (identity.subject, identity.roles, identity.grants) == ("alice", ("publisher", "approver"), ())
    assert (identity.issuer, identity.token_id, identity.expires_at.timestamp()) == (ISSUER, "id-1", NOW + 3600)


def test_a_group_naming_a_role_modelog_does_not_know_is_refused():
    with refused("unknown_role"):
        identity_from_claims(claims(groups=["modelog-aprover"]), ClaimMapping(), "token")


def test_without_a_prefix_every_entry_of_the_claim_is_a_role():
    mapping = ClaimMapping(roles_claim="roles", role_prefix="")
    assert identity_from_claims(claims(roles=["auditor"]), mapping, "token").roles == ("auditor",)
    with refused("unknown_role"):
        identity_from_claims(claims(roles=["auditor", "Everyone"]), mapping, "token")


def test_grants_narrow_the_models_as_an_api_tokens_grants_do():
    identity = identity_from_claims(claims(groups=["modelog-operator"], modelog_grants=["team-a.*", "fraud"]),
                                    ClaimMapping(), "token")
    assert identity.grants == ("team-a.*", "fraud")


@pytest.mark.parametrize("bad", [{"groups": "modelog-admin"}, {"modelog_grants": "fraud"},
                                 {"modelog_grants": [""]}, {"sub": ""}])
def test_claims_of_the_wrong_shape_are_refused(bad):
    with refused("claims_invalid"):
        identity_from_claims(claims(**bad), ClaimMapping(), "token")


def test_a_person_without_modelog_groups_signs_in_with_no_role():
    assert identity_from_claims(claims(groups=["everyone"]), ClaimMapping(), "token").roles == ()


def test_an_id_token_without_jti_is_named_by_its_digest():
    first = identity_from_claims(claims(jti=None), ClaimMapping(), "token-one")
    assert first.token_id.startswith("sha256:")
    assert first.token_id != identity_from_claims(claims(jti=None), ClaimMapping(), "token-two").token_id


# -- settings -------------------------------------------------------------------

def test_without_an_issuer_the_console_offers_no_oidc_sign_in(monkeypatch):
    monkeypatch.delenv("MODELOG_OIDC_ISSUER", raising=False)
    assert config_from_settings(RegistrarSettings()) is None


def test_settings_make_the_client_its_secret_from_a_file_and_the_callback_at_the_registrar(monkeypatch, tmp_path):
    (tmp_path / "secret").write_text("s3cret\n")
    for name, value in {"MODELOG_OIDC_ISSUER": ISSUER, "MODELOG_OIDC_CLIENT_SECRET_FILE": str(tmp_path / "secret"),
                        "MODELOG_OIDC_CLIENT_SECRET": "", "MODELOG_OIDC_ROLES_CLAIM": "roles",
                        "MODELOG_OIDC_ROLE_PREFIX": "", "MODELOG_REGISTRAR_URL": "https://modelog.example.com/"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MODELOG_OIDC_REDIRECT_URI", raising=False)
    config = config_from_settings(RegistrarSettings())
    assert config is not None
    assert (config.client_secret, config.redirect_uri) == ("s3cret", "https://modelog.example.com/console/callback")
    assert config.mapping == ClaimMapping(roles_claim="roles", role_prefix="", grants_claim="modelog_grants")
    assert "s3cret" not in repr(config)


def test_a_secret_given_both_inline_and_in_a_file_is_refused(monkeypatch, tmp_path):
    (tmp_path / "secret").write_text("one")
    monkeypatch.setenv("MODELOG_OIDC_ISSUER", ISSUER)
    monkeypatch.setenv("MODELOG_OIDC_CLIENT_SECRET", "two")
    monkeypatch.setenv("MODELOG_OIDC_CLIENT_SECRET_FILE", str(tmp_path / "secret"))
    with pytest.raises(ValueError, match="not both"):
        config_from_settings(RegistrarSettings())
