"""The registrar's whole /v1 API against the running stack: every write answers
with its committed outcome and the resulting state; refusals carry the
decider's code; retries and stale writes are safe; bad input writes nothing."""

import asyncio
import base64
import hashlib
import io
import socket
from uuid import uuid4

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from modelog.client import Conflict, Forbidden, ModelogError, NotFound
from modelog_contract.codec import decode_event
from modelog_contract.schemas import REPOSITORY_COPY, as_text, contract
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import read_committed
from modelog_platform.adapters.s3 import ArtifactStore, artifact_key
from modelog_platform.settings import COMMANDS_TOPIC, DEAD_LETTERS_TOPIC, EVENTS_TOPIC
from registrar.reconciler import projector_references, reconcile
from tests.e2e.helpers import assert_nothing_written, bearer, token_for, unique, wait_for_timeline

pytestmark = pytest.mark.engines


@pytest.fixture
def api(stack):
    with httpx.Client(base_url=stack.url("registrar"), timeout=30, headers=bearer("ci-pipeline", "publisher")) as http:
        yield http


def upload(api, model: str, data: bytes, **form) -> httpx.Response:
    return api.post(f"/v1/models/{model}/versions", data=form, files={"file": ("model.bin", data)})


def bucket_keys(engines) -> set[str]:
    store = ArtifactStore(engines)
    return {o.object_name for o in store.client.list_objects(store.bucket, recursive=True)}


def test_a_model_is_created_described_tagged_and_found_by_search(api, client):
    team = unique("search")
    created = api.post("/v1/models", json={"name": f"{team}.churn", "description": "who leaves",
                                           "tags": {"team": team}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "accepted" and body["events"] == ["ModelCreated"]
    assert body["state"]["model"]["description"] == "who leaves"
    assert created.headers["ETag"] == f'"{body["state"]["model"]["seq"]}"'

    again = api.post("/v1/models", json={"name": f"{team}.churn"})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "model_exists")

    for suffix in ("fraud", "ranker", "spam"):
        client.create_model(f"{team}.{suffix}", tags={"team": team})
    client.update_model(f"{team}.churn", "who leaves, and when")
    client.set_tag(f"{team}.spam", "tier", "gold")
    client.delete_tag(f"{team}.spam", "team")

    names = [m["name"] for m in client.list_models(name=f"{team}.*", page_size=2)]
    assert names == [f"{team}.churn", f"{team}.fraud", f"{team}.ranker", f"{team}.spam"]
    assert [m["name"] for m in client.list_models(tag=f"team={team}")] == names[:3]
    assert client.get_model(f"{team}.churn")["description"] == "who leaves, and when"
    assert client.get_model(f"{team}.spam")["tags"] == {"tier": "gold"}
    # Through the front door too, paginated by cursor.
    page = api.get("/v1/models", params={"name": f"{team}.*", "limit": 3}).json()
    assert [m["name"] for m in page["models"]] == names[:3] and page["next"] == names[2]


def test_a_real_model_uploaded_downloads_byte_identical_with_its_digest(client, trained_model, tmp_path, api):
    model = unique("fraud")
    sent = []
    result = client.register_version(model, trained_model, metrics={"auc": 0.93},
                                     progress=lambda done, total: sent.append((done, total)))
    assert result["version"] == 1 and result["state"]["version"]["metrics"] == {"auc": 0.93}
    size = trained_model.stat().st_size
    assert sent and sent[-1] == (size, size)

    downloaded = client.download(model, 1, tmp_path / "copy.pkl")
    assert downloaded.read_bytes() == trained_model.read_bytes()
    streamed = api.get(f"/v1/models/{model}/versions/1/artifact")
    digest = hashlib.sha256(trained_model.read_bytes()).digest()
    assert streamed.headers["Repr-Digest"] == f"sha-256=:{base64.b64encode(digest).decode()}:"

    presigned = api.get(f"/v1/models/{model}/versions/1/artifact", params={"presigned": "true"}).json()
    assert httpx.get(presigned["url"]).content == trained_model.read_bytes()


def test_a_download_whose_stored_bytes_were_corrupted_is_refused(client, engines, tmp_path):
    model, data = unique("corrupt"), b"original bytes " + uuid4().bytes
    artifact = tmp_path / "m.bin"
    artifact.write_bytes(data)
    client.register_version(model, artifact)
    store = ArtifactStore(engines)
    sha = hashlib.sha256(data).hexdigest()
    tampered = b"tampered bytes " + uuid4().bytes  # same length: only the digest can tell
    store.client.put_object(store.bucket, artifact_key(sha), io.BytesIO(tampered), len(tampered))
    with pytest.raises(ModelogError) as refused:
        client.download(model, 1, tmp_path / "copy.bin")
    assert refused.value.code == "artifact_corrupt"
    assert not (tmp_path / "copy.bin").exists()


def test_registering_by_reference_reads_verifies_and_keeps_its_own_copy(client, engines, api):
    store = ArtifactStore(engines)
    data, key = b"weights " + uuid4().bytes, f"training-runs/{uuid4().hex}/model.bin"
    store.client.put_object(store.bucket, key, io.BytesIO(data), len(data))
    model, sha = unique("byref"), hashlib.sha256(data).hexdigest()

    wrong = api.post(f"/v1/models/{model}/versions/by-reference",
                     json={"uri": f"s3://{store.bucket}/{key}", "sha256": "0" * 64})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "digest_mismatch")
    missing = api.post(f"/v1/models/{model}/versions/by-reference",
                       json={"uri": f"s3://{store.bucket}/no/such/object"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "artifact_not_found")
    bad_uri = api.post(f"/v1/models/{model}/versions/by-reference", json={"uri": "https://x/y"})
    assert (bad_uri.status_code, bad_uri.json()["error"]["code"]) == (400, "invalid_artifact_uri")

    result = client.register_version_by_reference(model, f"s3://{store.bucket}/{key}", sha256=sha,
                                                  run_id="run-7")
    version = result["state"]["version"]
    assert version["artifact_sha256"] == sha and version["artifact_uri"] == store.uri(sha)
    # The source changes later; the registered version's bytes do not.
    store.client.put_object(store.bucket, key, io.BytesIO(b"overwritten"), len(b"overwritten"))
    assert asyncio.run(store.read_verified(sha)) == data


def test_the_lifecycle_through_the_api_with_refusals_carrying_the_deciders_codes(client, admin_client, api, tmp_path):
    model = unique("lifecycle")
    for n in (1, 2):
        artifact = tmp_path / f"v{n}.bin"
        artifact.write_bytes(f"version {n} ".encode() + uuid4().bytes)
        client.register_version(model, artifact)
    client.report_metrics(model, 1, {"auc": 0.9})
    client.update_version(model, 1, "the baseline")
    client.set_tag(model, "owner", "risk-team", version=1)
    assert client.get_version(model, 1)["tags"] == {"owner": "risk-team"}

    staged = client.request_transition(model, 1, "Staging")
    assert staged["events"] == ["StageChanged"] and staged["state"]["version"]["stage"] == "Staging"
    with pytest.raises(Conflict) as unchanged:
        client.request_transition(model, 1, "Staging")
    assert unchanged.value.code == "stage_unchanged"

    # Production needs an approval under the default policy: the request waits.
    requested = client.request_transition(model, 1, "Production", comment="beats v0")
    assert requested["events"] == ["TransitionRequested"]
    pending = client.pending_transitions(model)
    assert [p["request_id"] for p in pending] == [requested["request_id"]]
    assert client.get_version(model, 1)["stage"] == "Staging"
    # A pipeline's token holds no approver role: refused, the permission named.
    with pytest.raises(Forbidden) as refused:
        client.approve(model, requested["request_id"])
    assert refused.value.code == "forbidden" and "approver" in refused.value.message
    with pytest.raises(Forbidden):
        client.rollback(model, 1)

    client.set_alias(model, "challenger", 2)
    assert client.by_alias(model, "challenger")["version"] == 2
    client.delete_alias(model, "challenger")
    with pytest.raises(NotFound):
        client.by_alias(model, "challenger")

    with pytest.raises(Forbidden):
        client.delete_version(model, 2)  # deletes are an admin's
    admin_client.delete_version(model, 2)
    with pytest.raises(NotFound) as gone:
        client.report_metrics(model, 2, {"auc": 0.5})
    assert gone.value.code == "version_deleted"
    history = client.stage_history(model)
    assert [(h["version"], h["to_stage"]) for h in history] == [(1, "Staging")]


def test_a_gate_failure_answers_422_with_the_rule_results(client, admin_client, api, tmp_path):
    model = unique("gated")
    artifact = tmp_path / "m.bin"
    artifact.write_bytes(uuid4().bytes)
    client.register_version(model, artifact)
    admin_client.set_policy(model, {"metric_thresholds": {"Staging": [{"metric": "auc", "op": ">=", "value": 0.8}]}})
    response = api.post(f"/v1/models/{model}/versions/1/transitions", json={"to_stage": "Staging"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "gate_failed"
    assert any(r["rule"] == "metric_thresholds" and not r["passed"] for r in error["rule_results"]), error


def test_an_idempotency_key_makes_a_retry_answer_the_same_and_act_once(api, client, tmp_path):
    model = unique("idempotent")
    artifact = tmp_path / "m.bin"
    artifact.write_bytes(uuid4().bytes)
    client.register_version(model, artifact)
    key = {"Idempotency-Key": uuid4().hex}
    first = api.post(f"/v1/models/{model}/versions/1/metrics", json={"metrics": {"auc": 0.7}}, headers=key)
    retry = api.post(f"/v1/models/{model}/versions/1/metrics", json={"metrics": {"auc": 0.7}}, headers=key)
    assert first.status_code == retry.status_code == 200
    assert first.json()["command_id"] == retry.json()["command_id"]
    assert first.json()["seq"] == retry.json()["seq"]
    assert client.get_model(model)["seq"] == first.json()["seq"]  # the retry appended nothing

    again = upload(api, model, artifact.read_bytes(), sha256=hashlib.sha256(artifact.read_bytes()).hexdigest())
    key2 = {"Idempotency-Key": uuid4().hex}
    data = uuid4().bytes
    one = api.post(f"/v1/models/{model}/versions", files={"file": ("m.bin", data)}, headers=key2)
    two = api.post(f"/v1/models/{model}/versions", files={"file": ("m.bin", data)}, headers=key2)
    assert again.status_code == 201 and one.status_code == 201 and two.status_code == 201
    assert one.json()["version"] == two.json()["version"] == 3
    assert len(client.list_versions(model)) == 3


def test_if_match_applies_a_write_only_at_the_seq_the_caller_read(api, client):
    model = unique("cas")
    created = client.create_model(model)
    seq = created["state"]["model"]["seq"]
    client.set_tag(model, "a", "1")  # someone else writes in between
    stale = api.patch(f"/v1/models/{model}", json={"description": "mine"}, headers={"If-Match": f'"{seq}"'})
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "version_conflict")
    assert client.get_model(model)["description"] == ""
    current = client.get_model(model)["seq"]
    fresh = api.patch(f"/v1/models/{model}", json={"description": "mine"}, headers={"If-Match": f'"{current}"'})
    assert fresh.status_code == 200 and fresh.json()["state"]["model"]["description"] == "mine"
    garbage = api.patch(f"/v1/models/{model}", json={"description": "x"}, headers={"If-Match": "soon"})
    assert (garbage.status_code, garbage.json()["error"]["code"]) == (400, "invalid_if_match")


@pytest.mark.parametrize("method, path, body, status, code", [
    ("post", "/v1/models", {"name": "ok-name", "colour": "red"}, 422, "invalid_request"),
    ("post", "/v1/models", {"name": 42}, 422, "invalid_request"),
    ("post", "/v1/models", {"name": "-bad"}, 400, "invalid_model_name"),
    ("patch", "/v1/models/{model}", {"description": ["not", "text"]}, 422, "invalid_request"),
    ("post", "/v1/models/{model}/versions/1/metrics", {"metrics": {}}, 422, "invalid_request"),
    ("post", "/v1/models/{model}/versions/1/metrics", {"metrics": {"auc": "high"}}, 422, "invalid_request"),
    ("post", "/v1/models/{model}/versions/1/transitions", {"to_stage": "Prod"}, 422, "invalid_request"),
    ("post", "/v1/models/{model}/versions/1/metrics", {"metrics": {"auc": 0.5}}, 404, "model_not_found"),
    ("put", "/v1/models/{model}/aliases/champion", {"version": 1}, 404, "model_not_found"),
])
def test_bad_input_is_refused_with_a_code_and_writes_nothing(api, engines, method, path, body, status, code):
    model = unique("never")
    response = api.request(method, path.format(model=model), json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
    if status != 404:  # a 404 comes from the decider: the refusal is in the log, as all refusals are
        assert_nothing_written(engines, model)


def test_malformed_json_is_refused_with_a_code(api):
    response = api.post("/v1/models", content=b'{"name": ', headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_request")


def test_an_oversized_upload_is_refused_and_leaves_no_object(api, engines):
    model, keys_before = unique("huge"), bucket_keys(engines)
    too_big = b"\0" * (8 * 1024 * 1024 + 1)
    response = upload(api, model, too_big)
    assert (response.status_code, response.json()["error"]["code"]) == (413, "artifact_too_large")
    assert bucket_keys(engines) == keys_before
    assert_nothing_written(engines, model, too_big)


def test_a_truncated_upload_writes_nothing(stack, engines):
    """The client promises more bytes than it sends and hangs up."""
    model, keys_before = unique("cut"), bucket_keys(engines)
    body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.bin\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" + b"x" * 10_000)
    head = (f"POST /v1/models/{model}/versions HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len(body) + 50_000}\r\n\r\n")
    head = head.replace("\r\n\r\n", f"\r\nAuthorization: {bearer('ci', 'publisher')['Authorization']}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", stack.registrar_port)) as raw:
        raw.sendall(head.encode() + body)
    # The registrar still answers, and nothing of the cut upload was kept.
    assert httpx.get(stack.url("registrar") + "/healthz").status_code == 200
    assert bucket_keys(engines) == keys_before
    assert_nothing_written(engines, model)


def test_orphaned_artifacts_are_reconciled_away_and_registered_ones_kept(client, engines, stack, tmp_path):
    store = ArtifactStore(engines)
    orphan = b"uploaded, then the registrar died before publishing " + uuid4().bytes
    orphan_sha = hashlib.sha256(orphan).hexdigest()
    store.client.put_object(store.bucket, artifact_key(orphan_sha), io.BytesIO(orphan), len(orphan))
    kept = tmp_path / "kept.bin"
    kept.write_bytes(uuid4().bytes)
    client.register_version(unique("kept"), kept)
    kept_sha = hashlib.sha256(kept.read_bytes()).hexdigest()

    async def run(grace_s: float):
        from datetime import timedelta
        async with httpx.AsyncClient(base_url=stack.url("projector"),
                                     headers=bearer("modelog-registrar", "reader")) as projector:
            return await reconcile(store, projector_references(projector), timedelta(seconds=grace_s))

    young = asyncio.run(run(3600))
    assert orphan_sha not in young.removed and asyncio.run(store.exists(orphan_sha))
    swept = asyncio.run(run(0))
    assert orphan_sha in swept.removed and kept_sha not in swept.removed
    assert not asyncio.run(store.exists(orphan_sha)) and asyncio.run(store.exists(kept_sha))


def test_an_empty_file_of_a_tree_does_not_stop_the_orphan_sweep_and_is_kept(client, engines, stack, tmp_path):
    """A tree's empty file (an __init__.py) is stored as an empty object, which
    has no first bytes to tell a manifest by; the sweep goes on, and keeps it
    for the manifest that lists it."""
    tree = tmp_path / "model"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_bytes(b"")
    (tree / "model.pkl").write_bytes(uuid4().bytes)
    client.register_version(unique("empty-file"), tree)
    store = ArtifactStore(engines)
    empty_sha = hashlib.sha256(b"").hexdigest()

    async def sweep(grace_s: float):
        from datetime import timedelta
        async with httpx.AsyncClient(base_url=stack.url("projector"),
                                     headers=bearer("modelog-registrar", "reader")) as projector:
            return await reconcile(store, projector_references(projector), timedelta(seconds=grace_s))

    # Within the grace period every stored object is read for a manifest, the empty one too.
    assert empty_sha not in asyncio.run(sweep(3600)).removed
    assert empty_sha not in asyncio.run(sweep(0)).removed and asyncio.run(store.exists(empty_sha))


def test_the_command_schemas_are_served_and_match_the_repository_copy(api):
    served = api.get("/v1/schemas").json()
    assert served == contract()
    for name, schema in served.items():
        assert (REPOSITORY_COPY / f"{name}.schema.json").read_text() == as_text(schema), (
            "regenerate with `uv run python -m modelog_contract.schemas`")


async def test_a_malformed_record_on_the_commands_topic_is_refused_and_nothing_stops(engines, stack, client):
    model = unique("raw")
    producer = AIOKafkaProducer(**kafka_connection(engines), enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(COMMANDS_TOPIC, b'{"type": "RegisterVersion", "oops": 1}', key=model.encode())
        await producer.send_and_wait(COMMANDS_TOPIC, b"\xff not even json", key=None)
    finally:
        await producer.stop()
    # Still deciding: a well-formed command after them goes through.
    await asyncio.to_thread(client.create_model, unique("after-raw"))
    events = [decode_event(r.value) for r in await read_committed(engines, EVENTS_TOPIC)]
    refused = [e for e in events if e.model == model]
    assert [(e.payload.type, e.payload.reason) for e in refused] == [("CommandRejected", "malformed_command")]
    dead = await read_committed(engines, DEAD_LETTERS_TOPIC)
    assert any(r.value == b"\xff not even json" for r in dead)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}])
def test_no_valid_token_is_401_on_writes_and_reads_and_writes_nothing(stack, engines, headers):
    model = unique("nobody")
    with httpx.Client(base_url=stack.url("registrar"), headers=headers) as anonymous:
        for method, path, body in [("post", "/v1/models", {"name": model}), ("get", f"/v1/models/{model}", None),
                                   ("get", "/v1/models", None), ("get", "/v1/schemas", None)]:
            response = anonymous.request(method, path, json=body)
            assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthenticated")
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_nothing_written(engines, model)


def test_an_expired_token_or_another_teams_model_is_refused(stack):
    from datetime import datetime, timedelta, timezone

    from modelog_platform.identity.dev import DevIssuer
    issuer = DevIssuer.local()
    expired = issuer.issue("ci", ("publisher",), ttl_s=60, now=datetime.now(timezone.utc) - timedelta(hours=1))[1]
    response = httpx.post(f"{stack.url('registrar')}/v1/models", json={"name": unique("late")},
                          headers={"Authorization": f"Bearer {expired}"})
    assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthenticated")

    team_a = issuer.issue("alice", ("publisher",), grants=("team-a.*",))[1]
    response = httpx.post(f"{stack.url('registrar')}/v1/models", json={"name": unique("team-b.fraud")},
                          headers={"Authorization": f"Bearer {team_a}"})
    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")
    assert "team-a.*" in response.json()["error"]["message"]
    mine = httpx.post(f"{stack.url('registrar')}/v1/models", json={"name": unique("team-a.fraud")},
                      headers={"Authorization": f"Bearer {team_a}"})
    assert mine.status_code == 201, mine.text
    assert mine.json()["state"]["model"]["name"].startswith("team-a.")


def test_the_recorded_actor_is_the_tokens_subject_not_anything_in_the_body(stack, client):
    model = unique("whodunnit")
    response = httpx.post(f"{stack.url('registrar')}/v1/models",
                          json={"name": model, "actor": {"subject": "mallory", "roles": ["admin"]}},
                          headers=bearer("ci-pipeline", "publisher"))
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_request")
    client.create_model(model)
    timeline = wait_for_timeline(stack.url("auditor"), model, 1)
    assert [e["actor"]["subject"] for e in timeline] == ["ci-pipeline"]


def test_a_reviewer_denies_a_request_and_an_admin_deletes_the_model(client, admin_client, stack, tmp_path):
    model = unique("denied")
    artifact = tmp_path / "m.bin"
    artifact.write_bytes(uuid4().bytes)
    client.register_version(model, artifact)
    client.request_transition(model, 1, "Staging")
    requested = client.request_transition(model, 1, "Production")
    reviewer = {"Authorization": f"Bearer {token_for('bob', 'approver')}"}
    with httpx.Client(base_url=stack.url("registrar"), headers=reviewer) as bob:
        denied = bob.post(f"/v1/models/{model}/transitions/{requested['request_id']}/deny",
                          json={"comment": "recall dropped"})
        assert denied.status_code == 200 and denied.json()["events"] == ["ApprovalDenied"]
        # The serving reads pass through the registrar too.
        staging = bob.get(f"/v1/models/{model}/stages/Staging")
        assert staging.status_code == 200 and [v["version"] for v in staging.json()["versions"]] == [1]
        assert bob.get(f"/v1/models/{model}/stages/Staging",
                       headers={"If-None-Match": staging.headers["ETag"]}).status_code == 304
    assert client.pending_transitions(model) == []
    assert client.get_version(model, 1)["stage"] == "Staging"

    with pytest.raises(Conflict) as in_use:  # the denial moved nothing: v1 is still in Staging
        client.request_transition(model, 1, "Staging")
    assert in_use.value.code == "stage_unchanged"
    deleted = admin_client.delete_model(model)
    assert deleted["events"] == ["ModelDeleted"]
    with pytest.raises(NotFound) as gone:
        client.set_tag(model, "k", "v")
    assert gone.value.code == "model_deleted"
