"""MLflow's webhooks API against the running stack: webhooks registered with
MLflow's own client, a receiver written as MLflow's docs describe one (it
checks X-MLflow-Signature over "<delivery id>.<timestamp>.<body>" and the
timestamp's age), and a workflow driven through modelog whose every event
reaches it in MLflow's payload: MLflow's own events, and modelog's stage
transitions and approvals, which MLflow does not emit."""

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.entities.webhook import WebhookStatus
from mlflow.exceptions import RestException

from modelog.client import Client
from tests.e2e.helpers import bearer, token_for, unique

pytestmark = pytest.mark.engines
SECRET = "a-secret-the-receiver-shares"
MAX_AGE_S = 300  # the receiver refuses older deliveries: a replayed one is stale
MLFLOW_EVENTS = ["registered_model.created", "model_version.created", "model_version_tag.set",
                 "model_version_tag.deleted", "model_version_alias.created", "model_version_alias.deleted"]
MODELOG_EVENTS = [{"entity": "MODEL_VERSION_STAGE", "action": "TRANSITIONED"},
                  {"entity": "MODEL_VERSION_STAGE_TRANSITION", "action": "REQUESTED"},
                  {"entity": "MODEL_VERSION_APPROVAL", "action": "GRANTED"},
                  {"entity": "MODEL_VERSION_APPROVAL", "action": "DENIED"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def verified(secret: str, headers, body: bytes) -> bool:
    """MLflow's receiver check: "v1," + base64 HMAC-SHA256 of
    "<delivery id>.<timestamp>.<body>", and a timestamp that is recent."""
    delivery_id, timestamp = headers.get("X-MLflow-Delivery-Id"), headers.get("X-MLflow-Timestamp")
    signature = headers.get("X-MLflow-Signature", "")
    if not delivery_id or not timestamp or not signature.startswith("v1,"):
        return False
    if abs(time.time() - int(timestamp)) > MAX_AGE_S:
        return False
    signed = f"{delivery_id}.{timestamp}.{body.decode('utf-8')}"
    expected = base64.b64encode(hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()).decode()
    return hmac.compare_digest(signature[3:], expected)


class Receiver:
    """An MLflow webhook endpoint: keeps each delivery whose signature checks, by delivery id."""

    def __init__(self, secret: str = SECRET):
        self.port, self.received, self.refused = free_port(), {}, 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if verified(secret, self.headers, body):
                    receiver.received.setdefault(self.headers["X-MLflow-Delivery-Id"], json.loads(body))
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"ok")
                else:
                    receiver.refused += 1
                    self.send_response(401)
                    self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mlflow-hook"

    def of_model(self, model: str) -> list[dict]:
        return [d for d in self.received.values() if d["data"].get("name") == model]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def mlflow_admin(stack, monkeypatch):
    """MLflow's own client, its registry URI modelog's registrar, as a platform admin."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token_for("platform-admin", "admin"))
    return MlflowClient(tracking_uri=stack.url("registrar"), registry_uri=stack.url("registrar"))


def registrar(stack, subject: str, *roles: str) -> httpx.Client:
    return httpx.Client(base_url=f"{stack.url('registrar')}/api/2.0/mlflow", headers=bearer(subject, *roles),
                        timeout=30)


def wait_for(receiver: Receiver, model: str, count: int) -> list[dict]:
    deadline = time.monotonic() + 60
    while len(receiver.of_model(model)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return receiver.of_model(model)


def an_artifact(directory: Path) -> Path:
    path = directory / f"{uuid4().hex}.bin"
    path.write_bytes(uuid4().bytes)
    return path


def test_an_mlflow_receiver_gets_every_event_of_a_workflow_through_modelog_signed(stack, mlflow_admin, receiver,
                                                                                  tmp_path):
    # given a webhook made with MLflow's client for MLflow's events, and modelog's added over REST
    hook = mlflow_admin.create_webhook(name=unique("every-event"), url=receiver.url, events=MLFLOW_EVENTS,
                                       secret=SECRET, description="a team's registry hooks")
    added = registrar(stack, "platform-admin", "admin").patch(
        f"/webhooks/{hook.webhook_id}",
        json={"events": [{"entity": e.entity.value.upper(), "action": e.action.value.upper()} for e in hook.events]
              + MODELOG_EVENTS})
    assert added.status_code == 200, added.text
    assert added.json()["webhook"]["modelog_events"] == MODELOG_EVENTS
    assert "secret" not in added.json()["webhook"]
    # and MLflow's client still reads it, showing its own events
    assert sorted(str(e) for e in mlflow_admin.get_webhook(hook.webhook_id).events) == sorted(MLFLOW_EVENTS)

    # when a workflow runs through modelog
    model = unique("hooked")
    alice = Client(stack.url("registrar"), stack.url("projector"), token=token_for("alice", "publisher"))
    bob = Client(stack.url("registrar"), stack.url("projector"), token=token_for("bob", "approver"))
    carol = Client(stack.url("registrar"), stack.url("projector"), token=token_for("carol", "approver"))
    try:
        alice.create_model(model, description="scores payments", tags={"team": "fraud"})
        alice.register_version(model, an_artifact(tmp_path), run_id="run-7", tags={"framework": "sklearn"})
        alice.set_tag(model, "reviewed", "yes", version=1)
        alice.delete_tag(model, "reviewed", version=1)
        alice.set_alias(model, "champion", 1)
        alice.delete_alias(model, "champion")
        alice.request_transition(model, 1, "Staging")
        request_id = alice.request_transition(model, 1, "Production")["request_id"]
        bob.approve(model, request_id, comment="looks good")
        alice.register_version(model, an_artifact(tmp_path))
        alice.request_transition(model, 2, "Staging")
        denied_id = alice.request_transition(model, 2, "Production")["request_id"]
        carol.deny(model, denied_id, comment="not yet")
    finally:
        for client in (alice, bob, carol):
            client.close()

    # then every event arrives, in log order, in MLflow's envelope, with its signature checked
    expected = ["registered_model.created", "model_version.created", "model_version_tag.set",
                "model_version_tag.deleted", "model_version_alias.created", "model_version_alias.deleted",
                "model_version_stage.transitioned",                     # None -> Staging, no approval needed
                "model_version_stage_transition.requested", "model_version_approval.granted",
                "model_version_stage.transitioned",                     # Staging -> Production
                "model_version.created", "model_version_stage.transitioned",
                "model_version_stage_transition.requested", "model_version_approval.denied"]
    got = wait_for(receiver, model, len(expected))
    assert [f"{d['entity']}.{d['action']}" for d in got] == expected
    assert receiver.refused == 0
    assert got[0]["data"] == {"name": model, "tags": {"team": "fraud"}, "description": "scores payments"}
    created = got[1]["data"]
    assert (created["version"], created["run_id"], created["tags"]) == ("1", "run-7", {"framework": "sklearn"})
    assert created["source"]
    assert got[2]["data"] == {"name": model, "version": "1", "key": "reviewed", "value": "yes"}
    assert got[4]["data"] == {"name": model, "alias": "champion", "version": "1"}
    assert got[5]["data"] == {"name": model, "alias": "champion"}
    assert got[8]["data"]["request_id"] == request_id and got[8]["data"]["actor"] == "bob"
    assert {k: got[9]["data"][k] for k in ("version", "from_stage", "to_stage", "reason")} == {
        "version": "1", "from_stage": "Staging", "to_stage": "Production", "reason": "promoted"}
    assert got[13]["data"]["comment"] == "not yet" and got[13]["data"]["actor"] == "carol"
    assert all(d["timestamp"] for d in got)

    # and the deliveries are on record where modelog's own webhooks keep theirs
    projector = httpx.Client(base_url=stack.url("projector"), headers=bearer("serving", "reader"))
    deliveries = projector.get(f"/v1/webhooks/{hook.webhook_id}/deliveries", params={"limit": 1000}).json()
    ours = [d for d in deliveries["deliveries"] if d["model"] == model]
    assert len(ours) == len(expected) and all(d["delivered_at"] for d in ours)
    mlflow_admin.delete_webhook(hook.webhook_id)


def test_the_webhooks_api_creates_lists_gets_updates_and_deletes_as_mlflows_client_expects(stack, mlflow_admin,
                                                                                            receiver):
    name = unique("lifecycle")
    hook = mlflow_admin.create_webhook(name=name, url=receiver.url, events=["model_version.created"],
                                       description="new versions", secret=SECRET)
    assert (hook.name, hook.url, hook.status, hook.description) == (name, receiver.url, WebhookStatus.ACTIVE,
                                                                    "new versions")
    assert [str(e) for e in hook.events] == ["model_version.created"]
    assert hook.creation_timestamp == hook.last_updated_timestamp > 0

    fetched = mlflow_admin.get_webhook(hook.webhook_id)
    assert (fetched.webhook_id, fetched.name, fetched.secret) == (hook.webhook_id, name, None)
    assert hook.webhook_id in [w.webhook_id for w in mlflow_admin.list_webhooks(max_results=1000)]

    updated = mlflow_admin.update_webhook(hook.webhook_id, name=f"{name}-renamed", status="DISABLED",
                                          events=["model_version_alias.created", "model_version_alias.deleted"])
    assert (updated.name, updated.status) == (f"{name}-renamed", WebhookStatus.DISABLED)
    assert [str(e) for e in updated.events] == ["model_version_alias.created", "model_version_alias.deleted"]
    assert updated.description == "new versions"  # not given: kept
    assert updated.last_updated_timestamp >= hook.last_updated_timestamp

    mlflow_admin.delete_webhook(hook.webhook_id)
    with pytest.raises(RestException) as gone:
        mlflow_admin.get_webhook(hook.webhook_id)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert f"Webhook with ID {hook.webhook_id} not found" in gone.value.message


def test_lists_are_pages_newest_first(stack, mlflow_admin, receiver):
    made = [mlflow_admin.create_webhook(name=unique("paged"), url=receiver.url, events=["model_version.created"])
            for _ in range(3)]
    first = mlflow_admin.list_webhooks(max_results=2)
    assert len(first) == 2 and first.token
    assert [w.webhook_id for w in first] == [made[2].webhook_id, made[1].webhook_id]
    second = mlflow_admin.list_webhooks(max_results=2, page_token=first.token)
    assert second[0].webhook_id == made[0].webhook_id
    for hook in made:
        mlflow_admin.delete_webhook(hook.webhook_id)


def test_the_test_endpoint_sends_a_signed_example_and_says_what_the_receiver_answered(stack, mlflow_admin,
                                                                                      receiver):
    hook = mlflow_admin.create_webhook(name=unique("tested"), url=receiver.url, secret=SECRET,
                                       events=["model_version_alias.created", "model_version.created"])
    # the webhook's first event, without one named
    result = mlflow_admin.test_webhook(hook.webhook_id)
    assert (result.success, result.response_status, result.response_body) == (True, 200, "ok")
    [example] = receiver.received.values()
    assert (example["entity"], example["action"]) == ("model_version_alias", "created")
    assert set(example["data"]) == {"name", "alias", "version"}

    # one named, modelog's own too (over REST: MLflow's client knows only its own events)
    answer = registrar(stack, "platform-admin", "admin").post(
        f"/webhooks/{hook.webhook_id}/test", json={"event": {"entity": "MODEL_VERSION_APPROVAL", "action": "GRANTED"}})
    assert answer.json()["result"]["success"] is True
    assert [d["action"] for d in receiver.received.values()] == ["created", "granted"]

    # a receiver that refuses the signature: no success, and its answer said
    wrong = mlflow_admin.create_webhook(name=unique("wrong-secret"), url=receiver.url, secret="another-secret",
                                        events=["registered_model.created"])
    refused = mlflow_admin.test_webhook(wrong.webhook_id)
    assert (refused.success, refused.response_status) == (False, 401)

    # nobody listening: no success, and why
    nobody = mlflow_admin.create_webhook(name=unique("nobody"), url=f"http://127.0.0.1:{free_port()}/x",
                                         events=["registered_model.created"])
    unreachable = mlflow_admin.test_webhook(nobody.webhook_id)
    assert unreachable.success is False and "ConnectError" in unreachable.error_message
    for made in (hook, wrong, nobody):
        mlflow_admin.delete_webhook(made.webhook_id)


def test_writing_webhooks_needs_admin_and_bad_input_gets_mlflows_error(stack, mlflow_admin, receiver, monkeypatch):
    publisher = registrar(stack, "alice", "publisher")
    refused = publisher.post("/webhooks", json={"name": "mine", "url": receiver.url,
                                                "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]})
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    assert "admin" in refused.json()["message"]
    assert publisher.get("/webhooks").status_code == 200  # a reader of every model may read them

    admin = registrar(stack, "platform-admin", "admin")
    for body, words in [
        ({"name": "-bad-", "url": receiver.url, "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]},
         "Webhook name"),
        ({"name": "ok", "url": "ftp://example.com/x", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]},
         "scheme"),
        ({"name": "ok", "url": receiver.url, "events": []}, "non-empty"),
        ({"name": "ok", "url": receiver.url, "events": [{"entity": "MODEL_VERSION", "action": "UPDATED"}]},
         "unknown webhook event"),
        ({"name": "ok", "url": receiver.url, "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
          "status": "PAUSED"}, "status"),
        ({"url": receiver.url, "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}, "name"),
        ({"name": "ok", "url": "http://127.0.0.1:99999/x", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]},
         "Invalid webhook URL"),
        ({"name": "ok", "url": receiver.url, "description": "a\x00b",
          "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}, "NUL"),
    ]:
        answer = admin.post("/webhooks", json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE" and words in answer.json()["message"]
    assert admin.get("/webhooks", params={"max_results": 5000}).json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert admin.get("/webhooks/not-an-id").json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    # MLflow's client, as a publisher: its own exception with MLflow's code
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token_for("alice", "publisher"))
    with pytest.raises(RestException) as denied:
        MlflowClient(tracking_uri=stack.url("registrar"), registry_uri=stack.url("registrar")).create_webhook(
            name="mine", url=receiver.url, events=["model_version.created"])
    assert denied.value.error_code == "PERMISSION_DENIED"
