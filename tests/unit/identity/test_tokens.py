"""Issuing and verifying bearer tokens: signature, issuer, audience, time."""

from datetime import datetime, timedelta, timezone

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_platform.identity.dev import DevIssuer, sign_for, signed
from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.identity.tokens import (
    InvalidToken,
    StaticKey,
    TokenVerifier,
    claims_for,
    sign,
    verifier_from_settings,
)
from tests.unit.builders import ALICE, register

NOW = datetime(2026, 11, 2, 9, 14, tzinfo=timezone.utc)


@pytest.fixture
def issuer(tmp_path):
    return DevIssuer(tmp_path / "identity", IdentitySettings())


def claims(**overrides):
    return {**claims_for(issuer="modelog-dev", audience="modelog", subject="alice", roles=["approver"],
                         now=NOW, ttl_s=600), **overrides}


def test_a_dev_token_verifies_into_the_identity_it_was_issued_for(issuer):
    identity, token = issuer.issue("alice", ["approver"], ["team-a.*"], ttl_s=600, now=NOW)
    verified = issuer.verifier().verify(token, now=NOW + timedelta(seconds=10))
    assert verified == identity
    assert (verified.subject, verified.roles, verified.grants, verified.issuer) == (
        "alice", ("approver",), ("team-a.*",), "modelog-dev")
    assert verified.expires_at == NOW + timedelta(seconds=600)
    assert verified.actor.token_id == verified.token_id and len(verified.token_id) == 36
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"


def test_every_token_has_its_own_id(issuer):
    assert issuer.issue("alice", now=NOW)[0].token_id != issuer.issue("alice", now=NOW)[0].token_id


def test_the_key_pair_is_made_once_and_the_private_key_is_ours_alone(issuer):
    issuer.ensure()
    first = issuer.private_key_file.read_bytes()
    assert issuer.private_key_file.stat().st_mode & 0o077 == 0
    assert DevIssuer(issuer.directory).ensure().private_key_file.read_bytes() == first


def test_a_signing_key_from_the_environment_is_used_and_never_shown(tmp_path, monkeypatch):
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    monkeypatch.setenv("MODELOG_IDENTITY_SIGNING_KEY", pem)
    settings = IdentitySettings()
    assert "PRIVATE KEY" not in repr(settings) and "PRIVATE KEY" not in str(settings.model_dump())
    _, token = DevIssuer(tmp_path, settings).issue("alice", now=NOW)
    public = StaticKey(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    assert TokenVerifier(public, "modelog-dev", "modelog").verify(token, now=NOW).subject == "alice"
    assert not (tmp_path / "private.pem").exists()  # no local pair was made


@pytest.mark.parametrize("offset_s, accepted", [(599, True), (600 + 29, True), (600 + 31, False),
                                                (-29, True), (-31, False)])
def test_time_is_checked_with_a_small_leeway(issuer, offset_s, accepted):
    _, token = issuer.issue("alice", ttl_s=600, now=NOW)
    verifier = issuer.verifier()  # leeway 30 s
    at = NOW + timedelta(seconds=offset_s)
    if accepted:
        assert verifier.verify(token, now=at).subject == "alice"
    else:
        with pytest.raises(InvalidToken, match=r"expired|not valid yet"):
            verifier.verify(token, now=at)


def test_a_token_signed_by_another_key_is_refused(issuer):
    forged = sign(claims(), Ed25519PrivateKey.generate())
    with pytest.raises(InvalidToken, match="signature does not verify"):
        issuer.verifier().verify(forged, now=NOW)


@pytest.mark.parametrize("wrong", [{"iss": "someone-else"}, {"aud": "another-service"}])
def test_a_token_for_another_issuer_or_audience_is_refused(issuer, wrong):
    token = sign(claims(**wrong), issuer.signing_key())
    with pytest.raises(InvalidToken):
        issuer.verifier().verify(token, now=NOW)


@pytest.mark.parametrize("missing", ["exp", "iat", "jti", "sub", "iss", "aud"])
def test_a_token_without_a_required_claim_is_refused(issuer, missing):
    incomplete = {k: v for k, v in claims().items() if k != missing}
    with pytest.raises(InvalidToken, match=missing):
        issuer.verifier().verify(sign(incomplete, issuer.signing_key()), now=NOW)


@pytest.mark.parametrize("bad", [{"roles": "admin"}, {"roles": [1]}, {"grants": "team-a.*"}, {"exp": "soon"}])
def test_malformed_claims_are_refused(issuer, bad):
    with pytest.raises(InvalidToken):
        issuer.verifier().verify(sign(claims(**bad), issuer.signing_key()), now=NOW)


def test_an_unsigned_or_shared_secret_token_is_refused(issuer):
    for token in (jwt.encode(claims(), None, algorithm="none"),
                  jwt.encode(claims(), "a shared secret that is long enough", algorithm="HS256")):
        with pytest.raises(InvalidToken):
            issuer.verifier().verify(token, now=NOW)
    with pytest.raises(InvalidToken):
        issuer.verifier().verify("not a token", now=NOW)


@pytest.mark.parametrize("private_key, algorithm", [
    (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
    (ec.generate_private_key(ec.SECP256R1()), "ES256"),
])
def test_production_issuers_may_sign_with_rs256_or_es256(tmp_path, monkeypatch, private_key, algorithm):
    pem = tmp_path / "issuer.pem"
    pem.write_bytes(private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    monkeypatch.setenv("MODELOG_IDENTITY_PUBLIC_KEY_FILE", str(pem))
    monkeypatch.setenv("MODELOG_IDENTITY_ISSUER", "https://idp.example.com")
    verifier = verifier_from_settings(IdentitySettings())
    token = sign({**claims(), "iss": "https://idp.example.com"}, private_key, algorithm)
    assert verifier.verify(token, now=NOW).issuer == "https://idp.example.com"


def test_a_service_without_a_configured_issuer_refuses_to_start(monkeypatch):
    monkeypatch.delenv("MODELOG_IDENTITY_PUBLIC_KEY_FILE", raising=False)
    monkeypatch.delenv("MODELOG_IDENTITY_JWKS_URL", raising=False)
    with pytest.raises(ValueError, match="no token issuer configured"):
        verifier_from_settings(IdentitySettings())


def test_sign_for_binds_the_actor_to_a_fresh_token(issuer):
    actor, token = sign_for(ALICE, issuer=issuer)
    proven = issuer.verifier().verify(token).actor
    assert actor == proven and (actor.subject, actor.roles) == (ALICE.subject, ALICE.roles)
    command, token = signed(register(n=1), issuer=issuer)
    assert command.actor == issuer.verifier().verify(token).actor


def test_keys_can_come_from_the_issuers_jwks_url(monkeypatch):
    """A real HTTP server on localhost publishes the issuer's keys."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), "kid": "k1", "use": "sig"}

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"keys": [jwk]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("MODELOG_IDENTITY_JWKS_URL", f"http://127.0.0.1:{server.server_port}/jwks.json")
        verifier = verifier_from_settings(IdentitySettings())
        token = jwt.encode(claims(), key, algorithm="RS256", headers={"kid": "k1"})
        assert verifier.verify(token, now=NOW).subject == "alice"
        unknown_kid = jwt.encode(claims(), key, algorithm="RS256", headers={"kid": "k2"})
        with pytest.raises(InvalidToken, match=r"k2|kid|matching"):
            verifier.verify(unknown_kid, now=NOW)
    finally:
        server.shutdown()


def test_the_cli_prints_a_dev_token_with_roles_and_grants(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from modelog.cli import with_installed_commands

    monkeypatch.setenv("MODELOG_HOME", str(tmp_path / "home"))
    assert CliRunner().invoke(with_installed_commands(), ["token", "init"]).exit_code == 0
    result = CliRunner().invoke(with_installed_commands(), ["token", "issue", "--sub", "alice", "--roles", "approver,publisher",
                                      "--grant", "prefix:team-a.", "--ttl", "60"])
    assert result.exit_code == 0, result.output
    identity = DevIssuer.local().verifier().verify(result.output.strip())
    assert (identity.subject, identity.roles, identity.grants) == ("alice", ("approver", "publisher"), ("team-a.*",))
    assert identity.expires_at - datetime.now(timezone.utc) <= timedelta(seconds=60)
    assert (tmp_path / "home" / "identity" / "public.pem").exists()
