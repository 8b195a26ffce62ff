"""Authentication on the read side, against the real stack: the projector and
the auditor answer only callers with a valid token (health stays open), a
model's reads need `reader` on it, lists and the change feed show only the
models a token's grants cover, and the audit trail's cross-model questions
need the `auditor` role. The registrar's own calls (outcomes, artifact
references) keep working on its service token."""

import json
from uuid import uuid4

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog.client import Client, Forbidden
from modelog_platform.identity.tokens import claims_for, sign
from tests.e2e.helpers import bearer, token_for, wait_for_timeline

pytestmark = pytest.mark.engines

PROJECTOR_ROUTES = ["/v1/models", "/v1/models/{a}", "/v1/models/{a}/versions", "/v1/models/{a}/versions/1",
                    "/v1/models/{a}/transitions", "/v1/models/{a}/history", "/v1/models/{a}/stages/None",
                    "/v1/models/{a}/aliases/champion", f"/v1/artifacts/{'0' * 64}",
                    f"/v1/commands/{uuid4()}", "/v1/changes"]
AUDITOR_ROUTES = ["/v1/audit/models/{a}/timeline", "/v1/audit/models/{a}/state?seq=1",
                  "/v1/audit/models/{a}/diff?from=1&to=2", "/v1/audit/models/{a}/versions/1/why",
                  "/v1/audit/models/{a}/versions/1/approvals", "/v1/audit/actors/ci-pipeline/events",
                  "/v1/audit/events", "/v1/audit/alerts"]


@pytest.fixture(scope="module")
def teams(stack, tmp_path_factory):
    """Two teams' models, each with one version, registered through the registrar
    (whose read-your-writes wait asks the projector on its own service token)."""
    run = uuid4().hex[:6]
    a, b = f"team-a-{run}.fraud", f"team-b-{run}.churn"
    artifact = tmp_path_factory.mktemp("read-auth") / "m.bin"
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("ci-pipeline", "publisher")) as ci:
        for model in (a, b):
            artifact.write_bytes(uuid4().bytes)
            registered = ci.register_version(model, artifact)
            assert registered["state"]["version"]["version"] == 1, registered  # read back by the registrar
    wait_for_timeline(stack.url("auditor"), b, 2)
    return {"a": a, "b": b, "run": run, "grants": (f"team-a-{run}.*",)}


def urls(stack, teams):
    return ([stack.url("projector") + r.format(a=teams["a"]) for r in PROJECTOR_ROUTES]
            + [stack.url("auditor") + r.format(a=teams["a"]) for r in AUDITOR_ROUTES])


def forged() -> str:
    return sign(claims_for(issuer="modelog-dev", audience="modelog", subject="mallory", roles=["admin"]),
                Ed25519PrivateKey.generate())


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not.a.token"}, "forged"],
                         ids=["no-token", "garbage", "forged"])
def test_without_a_valid_token_every_read_is_401_and_health_stays_open(stack, teams, headers):
    headers = {"Authorization": f"Bearer {forged()}"} if headers == "forged" else headers
    for url in urls(stack, teams):
        response = httpx.get(url, headers=headers, timeout=10)
        assert response.status_code == 401, (url, response.text)
        assert response.json()["error"]["code"] == "unauthenticated"
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="modelog"')
    for service in ("projector", "auditor"):
        for path in ("/healthz", "/readyz"):
            assert httpx.get(stack.url(service) + path, timeout=10).status_code == 200
    # Refused reads wrote nothing: each model still has its two events.
    for model in (teams["a"], teams["b"]):
        assert len(wait_for_timeline(stack.url("auditor"), model, 2)) == 2


def test_another_teams_model_is_403_on_the_projector_the_auditor_and_the_registrar(stack, teams):
    team_a = bearer("anna", "reader", grants=teams["grants"])
    b = teams["b"]
    for url in [f"{stack.url('projector')}/v1/models/{b}", f"{stack.url('projector')}/v1/models/{b}/stages/None",
                f"{stack.url('auditor')}/v1/audit/models/{b}/timeline",
                f"{stack.url('auditor')}/v1/audit/models/{b}/versions/1/why",
                f"{stack.url('auditor')}/v1/audit/events?model={b}",
                f"{stack.url('registrar')}/v1/models/{b}"]:
        response = httpx.get(url, headers=team_a, timeout=10)
        assert response.status_code == 403, (url, response.text)
        assert response.json()["error"] == {**response.json()["error"], "code": "forbidden",
                                            "missing": f"reader on {b}"}
    a = teams["a"]
    assert httpx.get(f"{stack.url('projector')}/v1/models/{a}", headers=team_a).json()["name"] == a
    assert httpx.get(f"{stack.url('registrar')}/v1/models/{a}", headers=team_a).json()["name"] == a
    timeline = httpx.get(f"{stack.url('auditor')}/v1/audit/models/{a}/timeline", headers=team_a).json()
    assert [e["type"] for e in timeline["events"]] == ["ModelCreated", "VersionRegistered"]
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("nobody")) as no_role, \
            pytest.raises(Forbidden):
        no_role.get_model(a)


def test_a_list_shows_only_the_models_the_grants_cover(stack, teams):
    pattern = f"team-?-{teams['run']}.*"
    for base in (stack.url("projector"), stack.url("registrar")):  # the registrar passes the caller's token on
        def names(headers) -> list[str]:
            response = httpx.get(f"{base}/v1/models", params={"name": pattern}, headers=headers, timeout=10)
            assert response.status_code == 200, response.text
            return [m["name"] for m in response.json()["models"]]
        assert names(bearer("rita", "reader")) == [teams["a"], teams["b"]]
        assert names(bearer("anna", "reader", grants=teams["grants"])) == [teams["a"]]
        assert names(bearer("bert", "reader", grants=(teams["b"],))) == [teams["b"]]
        assert names(bearer("zed", "reader", grants=("team-z.*",))) == []
        assert httpx.get(f"{base}/v1/models", headers=bearer("nobody")).status_code == 403
    with Client(stack.url("registrar"), stack.url("projector"),
                token=token_for("anna", "reader", grants=teams["grants"])) as anna:
        assert [m["name"] for m in anna.list_models(name=pattern)] == [teams["a"]]


def test_the_audit_trails_cross_model_questions_need_the_auditor_role(stack, teams):
    auditor = stack.url("auditor")
    for path in ("/v1/audit/actors/ci-pipeline/events", "/v1/audit/events?limit=1", "/v1/audit/alerts"):
        for headers in (bearer("rita", "reader"), bearer("olga", "operator"),
                        bearer("ines", "auditor", grants=teams["grants"])):
            response = httpx.get(auditor + path, headers=headers, timeout=10)
            assert response.status_code == 403 and response.json()["error"]["missing"] == "auditor on every model"
        for headers in (bearer("ines", "auditor"), bearer("root", "admin")):
            assert httpx.get(auditor + path, headers=headers, timeout=10).status_code == 200


def changes(stack, headers, **params) -> httpx.Response:
    return httpx.get(f"{stack.url('projector')}/v1/changes", params=params, headers=headers, timeout=10)


def test_the_change_feed_refuses_without_a_token_and_shows_only_granted_models(stack, teams):
    assert changes(stack, {}).status_code == 401
    assert changes(stack, {"Authorization": "Bearer x"}, model=teams["a"]).status_code == 401
    team_a = bearer("anna", "reader", grants=teams["grants"])
    refused = changes(stack, team_a, model=teams["b"])
    assert (refused.status_code, refused.json()["error"]["missing"]) == (403, f"reader on {teams['b']}")

    # No model named: the whole log from its start, up to the first keep-alive
    # (sent once the feed has caught up): anna sees team a's events, no other.
    seen = []
    with httpx.stream("GET", f"{stack.url('projector')}/v1/changes", params={"from_start": "true"},
                      headers=team_a, timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:"):
                seen.append(json.loads(line[5:])["subject"])
            elif line == ": keep-alive":
                break
    assert seen == [teams["a"], teams["a"]], seen
