"""The HTTP dependencies on a real FastAPI app: 401, 403 and 429 with their
codes and headers."""

from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from modelog_platform.identity import ratelimit
from modelog_platform.identity.http import (
    Caller,
    ModelReader,
    WriteRateLimit,
    authenticated,
    authorize,
    authorize_every_model,
    install_verifier,
)
from modelog_platform.identity.service import ServiceToken
from modelog_platform.identity.tokens import Identity, claims_for, sign
from modelog_platform.web import install_error_handlers


@pytest.fixture
def client(issuer, clock):
    app = FastAPI()
    install_verifier(app, issuer.verifier())
    install_error_handlers(app)
    limit = WriteRateLimit(ratelimit.Limit(rate_per_s=1, burst=2), clock=clock)

    @app.get("/me")
    def me(identity: Identity = Depends(authenticated)):
        return {"subject": identity.subject, "roles": list(identity.roles)}

    @app.post("/models/{name}/approvals")
    def approve(name: str, identity: Identity = Depends(limit)):
        authorize(identity, "approver", name)
        return {"ok": True}

    @app.get("/models/{name}")
    def read(name: str, reader: ModelReader):
        return {"model": name, "reader": reader.subject}

    @app.get("/actors/{subject}")
    def across_models(subject: str, caller: Caller):
        authorize_every_model(caller, "auditor")
        return {"actor": subject}

    return TestClient(app)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_valid_token_names_the_caller(client, issuer):
    _, token = issuer.issue("alice", ["approver"])
    assert client.get("/me", headers=bearer(token)).json() == {"subject": "alice", "roles": ["approver"]}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic YWxpY2U6eA=="}, {"Authorization": "Bearer "},
                                     {"Authorization": "Bearer not.a.token"}])
def test_no_or_bad_token_is_401_unauthenticated_with_a_challenge(client, headers):
    response = client.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="modelog"')


def test_an_expired_or_forged_token_is_401_and_the_token_is_not_echoed(client, issuer):
    _, expired = issuer.issue("alice", ["approver"], ttl_s=60, now=datetime.now(timezone.utc) - timedelta(hours=1))
    forged = sign(claims_for(issuer="modelog-dev", audience="modelog", subject="mallory", roles=["admin"]),
                  Ed25519PrivateKey.generate())
    for token in (expired, forged):
        response = client.get("/me", headers=bearer(token))
        assert response.status_code == 401 and 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert token not in response.text
    assert "expired" in client.get("/me", headers=bearer(expired)).json()["error"]["message"]


def test_a_missing_permission_is_403_forbidden_naming_it(client, issuer):
    _, token = issuer.issue("alice", ["publisher"])
    response = client.post("/models/fraud/approvals", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert response.json()["error"]["missing"] == "approver on fraud"
    _, granted_elsewhere = issuer.issue("bob", ["approver"], grants=["team-a.*"])
    assert client.post("/models/fraud/approvals", headers=bearer(granted_elsewhere)).status_code == 403
    _, reviewer = issuer.issue("bob", ["approver"], grants=["fraud"])
    assert client.post("/models/fraud/approvals", headers=bearer(reviewer)).status_code == 200


def test_writes_beyond_the_burst_are_429_with_retry_after_per_subject(client, issuer, clock):
    _, alice = issuer.issue("alice", ["approver"])
    _, bob = issuer.issue("bob", ["approver"])
    assert [client.post("/models/m/approvals", headers=bearer(alice)).status_code for _ in range(2)] == [200, 200]
    limited = client.post("/models/m/approvals", headers=bearer(alice))
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert limited.headers["Retry-After"] == "1"
    assert client.post("/models/m/approvals", headers=bearer(bob)).status_code == 200  # bob has his own bucket
    clock.now += 1.0
    assert client.post("/models/m/approvals", headers=bearer(alice)).status_code == 200


def test_a_model_reader_needs_reader_on_the_model_in_the_path(client, issuer):
    assert client.get("/models/team-a.fraud").status_code == 401
    for roles, grants, status in [(["reader"], [], 200), (["operator"], ["team-a.*"], 200),
                                  (["reader"], ["team-b.*"], 403), ([], [], 403), (["superuser"], [], 403)]:
        _, token = issuer.issue("carol", roles, grants=grants)
        response = client.get("/models/team-a.fraud", headers=bearer(token))
        assert response.status_code == status, (roles, grants, response.text)
        if status == 403:
            assert response.json()["error"]["missing"] == "reader on team-a.fraud"


def test_a_question_across_models_is_403_for_a_token_narrowed_by_grants(client, issuer):
    _, narrowed = issuer.issue("ines", ["auditor"], grants=["team-a.*"])
    _, reader = issuer.issue("rita", ["reader"])
    _, auditor = issuer.issue("ines", ["auditor"])
    assert client.get("/actors/bob", headers=bearer(narrowed)).json()["error"]["missing"] == "auditor on every model"
    assert client.get("/actors/bob", headers=bearer(reader)).status_code == 403
    assert client.get("/actors/bob", headers=bearer(auditor)).json() == {"actor": "bob"}


def test_a_service_token_is_renewed_before_it_expires_and_a_callers_own_token_passes_through(client, issuer):
    now = [datetime.now(timezone.utc).timestamp()]
    service = ServiceToken(issuer, "modelog-registrar", ("reader",), ttl_s=600, renew_before_s=60,
                           clock=lambda: now[0])
    first = service.token()
    assert service.token() == first
    assert issuer.verifier().verify(first).subject == "modelog-registrar"
    now[0] += 539
    assert service.token() == first
    now[0] += 2  # within a minute of expiry: a fresh one
    assert service.token() != first

    import httpx
    seen = []
    transport = httpx.MockTransport(lambda request: seen.append(request.headers["authorization"])
                                    or httpx.Response(200))
    with httpx.Client(transport=transport, auth=service, base_url="http://projector") as http:
        http.get("/v1/commands/x")
        http.get("/v1/models/m", headers={"Authorization": "Bearer callers-own"})
    assert seen == [f"Bearer {service.token()}", "Bearer callers-own"]


def test_no_token_says_where_one_goes_and_how_to_get_one(client):
    message = client.get("/me").json()["error"]["message"]
    assert "MODELOG_TOKEN" in message and "modelog token issue --sub you --roles" in message


@pytest.mark.parametrize("token, says", [("not-a-token", "the bearer token is not a JWT"),
                                         ("a.b.c", "the bearer token is not a JWT")])
def test_a_token_that_is_no_jwt_is_said_so_plainly(client, token, says):
    response = client.get("/me", headers=bearer(token))
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"
    assert response.json()["error"]["message"].startswith(says)


def test_a_token_of_another_issuer_names_the_key_it_failed_against(client):
    forged = sign(claims_for(issuer="modelog-dev", audience="modelog", subject="mallory"), Ed25519PrivateKey.generate())
    error = client.get("/me", headers=bearer(forged)).json()["error"]
    assert error["code"] == "unauthenticated"
    assert "does not verify against the configured issuer's key" in error["message"] and "MODELOG_HOME" in error["message"]
