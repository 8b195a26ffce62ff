"""Denied attempts are evidence: a write the registrar refuses before it becomes
a command leaves one record in modelog.denials, which the auditor keeps and
answers; a flood from one subject leaves at most its budget and a summary; a
refusal is answered even when the records cannot reach Kafka."""

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from uuid import uuid4

import httpx
import pytest

from modelog_platform import engines as local_engines
from modelog_platform.adapters.commands import CommandPublisher
from modelog_platform.services import identity_env
from modelog_platform.settings import EngineEndpoints, LocalStack
from registrar.denials import DenialLog
from registrar.main import create_app
from registrar.settings import RegistrarSettings
from tests.e2e.helpers import bearer, token_for, unique, wait_for_timeline

pytestmark = pytest.mark.engines
PER_MINUTE = RegistrarSettings().denials_per_minute


def denials(stack, **params) -> list[dict]:
    response = httpx.get(f"{stack.url('auditor')}/v1/audit/denials", params={"limit": 10000, **params},
                         headers=bearer("inspector", "auditor"), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["denials"]


def recorded(stack, count: int, timeout_s: float = 30, **params) -> list[dict]:
    """The auditor's records matching `params` once it has `count`, and a
    moment later: more than `count` would show by then."""
    deadline = time.monotonic() + timeout_s
    while len(found := denials(stack, **params)) < count:
        assert time.monotonic() < deadline, f"the auditor has {found}"
        time.sleep(0.2)
    time.sleep(1.5)
    return denials(stack, **params)


def audit_cli(*args: str) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "modelog", "audit", "denials", *args, "--json"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "MODELOG_TOKEN": token_for("inspector", "auditor")})
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def registrar(stack):
    with httpx.Client(base_url=stack.url("registrar"), timeout=30) as http:
        yield http


def refused_once(stack, model: str, before: datetime) -> dict:
    [record] = recorded(stack, 1, model=model)
    assert before <= datetime.fromisoformat(record["at"]) <= datetime.now(timezone.utc)
    [by_cli] = audit_cli("--model", model)
    assert by_cli == record
    return record


def test_a_caller_without_the_publisher_role_registering_leaves_one_record(stack, registrar):
    model, viewer, before = unique("denied-register"), f"viewer-{uuid4().hex[:6]}", datetime.now(timezone.utc)
    answer = registrar.post(f"/v1/models/{model}/versions", files={"file": ("m.bin", b"weights")},
                            headers=bearer(viewer, "reader"))
    assert answer.status_code == 403, answer.text
    record = refused_once(stack, model, before)
    assert {k: record[k] for k in ("kind", "subject", "roles", "authenticated", "method", "route", "model",
                                   "version", "command_type", "status", "code")} == {
        "kind": "denial", "subject": viewer, "roles": ["reader"], "authenticated": True, "method": "POST",
        "route": "/v1/models/{name}/versions", "model": model, "version": None, "command_type": "RegisterVersion",
        "status": 403, "code": "forbidden"}
    assert record["message"] == answer.json()["error"]["message"] and "publisher" in record["message"]
    by_model = httpx.get(f"{stack.url('auditor')}/v1/audit/models/{model}/denials",
                         headers=bearer("inspector", "auditor"), timeout=30)
    assert by_model.status_code == 200 and by_model.json()["denials"] == [record]
    as_reader = httpx.get(f"{stack.url('auditor')}/v1/audit/denials", headers=bearer(viewer, "reader"), timeout=30)
    assert as_reader.status_code == 403


def test_a_bad_stage_leaves_one_record_naming_the_command_it_would_have_been(stack, registrar):
    model, before = unique("denied-stage"), datetime.now(timezone.utc)
    answer = registrar.post(f"/v1/models/{model}/versions/1/transitions", json={"to_stage": "Prod"},
                            headers=bearer("ci-pipeline", "publisher"))
    assert answer.status_code == 422, answer.text
    record = refused_once(stack, model, before)
    assert (record["subject"], record["roles"], record["command_type"], record["version"], record["status"],
            record["code"]) == ("ci-pipeline", ["publisher"], "RequestTransition", 1, 422, "invalid_request")
    assert "to_stage" in record["message"]


def test_no_token_leaves_one_anonymous_record_with_why(stack, registrar):
    model, before = unique("denied-anonymous"), datetime.now(timezone.utc)
    answer = registrar.put(f"/v1/models/{model}/tags/team", json={"value": "risk"},
                           headers={"Authorization": "Bearer not-a-jwt"})
    assert answer.status_code == 401, answer.text
    record = refused_once(stack, model, before)
    assert (record["subject"], record["roles"], record["authenticated"], record["command_type"],
            record["status"], record["code"]) == ("anonymous", [], False, "SetTag", 401, "unauthenticated")
    assert record["token_problem"] == answer.json()["error"]["message"] and "not a JWT" in record["token_problem"]
    assert "not-a-jwt" not in json.dumps(record)


def test_a_self_approval_is_the_deciders_refusal_recorded_once_as_command_rejected(stack, registrar, tmp_path):
    """The registrar cannot tell a self-approval (it needs the request's
    history): the promoter refuses it, a CommandRejected event in the model's
    trail, and the registrar records no second, denial record of it."""
    model, alice = unique("denied-self"), f"alice-{uuid4().hex[:6]}"
    as_alice = bearer(alice, "publisher", "approver")
    registered = registrar.post(f"/v1/models/{model}/versions", files={"file": ("m.bin", uuid4().bytes)},
                                headers=as_alice)
    assert registered.status_code == 201, registered.text
    for stage in ("Staging", "Production"):
        moved = registrar.post(f"/v1/models/{model}/versions/1/transitions", json={"to_stage": stage},
                               headers=as_alice)
        assert moved.status_code == 200, moved.text
    approved = registrar.post(f"/v1/models/{model}/transitions/{moved.json()['request_id']}/approve",
                              headers=as_alice)
    assert approved.status_code == 403 and approved.json()["error"]["code"] == "self_approval", approved.text
    events = wait_for_timeline(stack.url("auditor"), model, 5)
    rejected = [e for e in events if e["type"] == "CommandRejected"]
    assert [(e["actor"]["subject"], e["payload"]["reason"]) for e in rejected] == [(alice, "self_approval")]
    time.sleep(2)
    assert denials(stack, model=model) == []


def test_a_flood_leaves_the_budget_and_a_summary_counting_the_rest(stack, registrar):
    flooder, model = f"flooder-{uuid4().hex[:6]}", unique("flooded")
    headers = bearer(flooder, "reader")
    statuses = {registrar.post("/v1/models", json={"name": model}, headers=headers).status_code for _ in range(200)}
    assert statuses <= {403, 429}
    # The summary goes out once the subject's window (a minute) is over.
    found = recorded(stack, PER_MINUTE + 1, timeout_s=120, subject=flooder)
    singles = [r for r in found if r["kind"] == "denial"]
    [summary] = [r for r in found if r["kind"] == "summary"]
    assert len(singles) == PER_MINUTE and len(found) == PER_MINUTE + 1
    assert summary["suppressed"] == 200 - PER_MINUTE
    assert summary["message"] == (f"{200 - PER_MINUTE} more denials of {flooder} suppressed between "
                                  f"{summary['first_at']} and {summary['last_at']}")
    instants = [datetime.fromisoformat(summary[k]) for k in ("first_at", "last_at")]
    assert max(datetime.fromisoformat(r["at"]) for r in singles) <= instants[0] <= instants[1]
    assert [r["kind"] for r in audit_cli("--subject", flooder)] == ["denial"] * PER_MINUTE + ["summary"]


async def test_a_refusal_is_answered_when_its_record_cannot_reach_kafka(stack, engines, monkeypatch, caplog):
    """A registrar whose denials topic does not exist (the broker creates no
    topic on its own, and where ACLs are on, the registrar may write no other):
    Kafka never takes the records. The 4xx is answered at once all the same;
    the record is dropped with a log line and counted."""
    local = LocalStack()
    for name, value in {**identity_env(local),
                        **local_engines.service_env(EngineEndpoints(), local, "registrar")}.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.WARNING, logger="registrar.denials")
    app = create_app(RegistrarSettings(), denials_topic=f"modelog.denials-unreachable-{uuid4().hex[:6]}")
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registrar") as registrar):
        for _ in range(3):
            started = time.monotonic()
            answer = await registrar.post("/v1/models", json={"name": unique("unrecorded")},
                                          headers=bearer(f"viewer-{uuid4().hex[:6]}", "reader"))
            assert answer.status_code == 403 and time.monotonic() - started < 1.0, answer.text
        deadline = time.monotonic() + 30
        while app.state.denials.dropped < 1:
            assert time.monotonic() < deadline, "no record was dropped"
            await asyncio.sleep(0.2)
    assert "denial record dropped (not sent: " in caplog.text


async def test_a_full_queue_drops_and_counts_what_it_cannot_hold(engines, caplog):
    publisher = CommandPublisher(engines)
    await publisher.start()
    try:
        log = DenialLog(publisher, per_minute=100, queue_size=2)  # no sender: nothing leaves the queue
        now = datetime.now(timezone.utc)
        for n in range(5):
            log.refused({"subject": f"caller-{n}", "method": "POST", "path": "/v1/models", "status": 403,
                         "code": "forbidden"}, now)
        assert (log.queue.qsize(), log.dropped) == (2, 3)
        assert caplog.text.count("denial record dropped (the queue is full") == 3
    finally:
        await publisher.stop()
