"""Webhooks against the running stack: a receiver that is down for a while gets
every matching event once it is back, signed, in order per model, and every
attempt is on record."""

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import uuid4

import httpx
import pytest

from tests.e2e.helpers import bearer, token_for, unique

pytestmark = pytest.mark.engines
SECRET = "a-shared-secret-of-some-length"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A serving system's endpoint: checks each signature and keeps what arrives."""

    def __init__(self, port: int):
        self.port, self.received, self.bad_signatures = port, [], 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp, mac = (part.split("=", 1)[1] for part in self.headers["Modelog-Signature"].split(","))
                expected = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(mac, expected):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                else:
                    receiver.received.append((self.headers["Modelog-Event-Id"], json.loads(body)))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_receiver_down_for_a_while_gets_every_event_signed_and_in_order(client, stack, tmp_path):
    port, models = free_port(), [unique("hooked"), unique("hooked")]
    projector = httpx.Client(base_url=stack.url("projector"), headers=bearer("serving", "reader"))
    hooks = [projector.post("/v1/webhooks", json={"url": f"http://127.0.0.1:{port}/modelog", "secret": SECRET,
                                                  "model": model}).json() for model in models]
    assert "secret" not in hooks[0]

    for version in (1, 2, 3):  # the receiver is not listening yet
        for model in models:
            artifact = tmp_path / f"{model}-{version}.bin"
            artifact.write_bytes(uuid4().bytes)
            client.register_version(model, artifact)
    client.request_transition(models[0], 1, "Staging")
    time.sleep(2)  # several failed attempts, backing off

    # ModelCreated, three VersionRegistered, and the StageChanged of the first model; in seq order.
    expected = {models[0]: [1, 2, 3, 4, 5], models[1]: [1, 2, 3, 4]}
    receiver = Receiver(port)
    try:
        deadline = time.monotonic() + 60
        while len(receiver.received) < sum(map(len, expected.values())) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        receiver.close()

    assert receiver.bad_signatures == 0
    by_model = {model: [event["data"]["seq"] for _, event in receiver.received if event["subject"] == model]
                for model in models}
    assert by_model == expected
    assert all(event_id == event["id"] for event_id, event in receiver.received)

    record = projector.get(f"/v1/webhooks/{hooks[0]['id']}/deliveries").json()["deliveries"]
    first = next(d for d in record if d["seq"] == 1)
    assert first["delivered_at"] and first["attempts"] >= 2
    assert first["attempt_log"][0]["status_code"] is None and "Connect" in first["attempt_log"][0]["error"]
    assert first["attempt_log"][-1]["status_code"] == 204
    for hook in hooks:
        assert projector.delete(f"/v1/webhooks/{hook['id']}").json()["removed"]
    assert projector.get(f"/v1/webhooks/{hooks[0]['id']}/deliveries").status_code == 404
    projector.close()


def test_a_webhook_needs_a_token_and_reader_on_its_model(stack):
    url = stack.url("projector") + "/v1/webhooks"
    hook = {"url": "http://127.0.0.1:9/x", "secret": SECRET, "model": "team-b.fraud"}
    assert httpx.post(url, json=hook).status_code == 401
    team_a = {"Authorization": f"Bearer {token_for('alice', 'reader')}"}
    from modelog_platform.identity.dev import DevIssuer
    narrowed = {"Authorization": f"Bearer {DevIssuer.local().issue('alice', ('reader',), ('team-a.*',))[1]}"}
    refused = httpx.post(url, json=hook, headers=narrowed)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    assert httpx.post(url, json={**hook, "model": None}, headers=narrowed).status_code == 403
    created = httpx.post(url, json=hook, headers=team_a)
    assert created.status_code == 201
    assert httpx.delete(f"{url}/{created.json()['id']}", headers=narrowed).status_code == 403
    assert httpx.delete(f"{url}/{created.json()['id']}", headers=team_a).status_code == 200
