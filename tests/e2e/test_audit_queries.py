"""The auditor's questions against the real stack: a promotion workflow is
published to Kafka as commands (two registrations, a policy, Staging, two
Production promotions approved by reviewers, an operator's rollback), decided
by the promoter, recorded by the auditor; then each question is asked over
HTTP and through the `modelog audit` command."""

import asyncio
from datetime import datetime, timezone
from hashlib import sha256
from types import SimpleNamespace
from uuid import uuid4

import httpx
import pytest

from modelog_contract.domain.commands import ApproveTransition, RegisterVersion, RequestTransition, Rollback, SetPolicy
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.types import Actor, Artifact
from modelog_platform import services
from modelog_platform.adapters.postgres import connect
from modelog_platform.settings import LocalStack
from tests.e2e.helpers import bearer, token_for
from tests.e2e.test_register_path import decided, make, unique, wait_for_timeline

pytestmark = pytest.mark.engines
EVENTS = 15  # what the workflow below yields


@pytest.fixture(scope="module")
def workflow(stack, engines):
    run = uuid4().hex[:6]
    alice = Actor(subject=f"alice-{run}", roles=("publisher",))
    bob = Actor(subject=f"bob-{run}", roles=("approver",))
    carol = Actor(subject=f"carol-{run}", roles=("approver",))
    olga = Actor(subject=f"olga-{run}", roles=("operator",))
    model = unique("audited")

    def do(kind, actor, **fields) -> dict:
        outcome = asyncio.run(decided(engines, stack, make(kind, model, actor, **fields)))
        assert outcome["accepted"], outcome
        return outcome

    def request_id(outcome) -> str:
        return outcome["command_id"]  # a request is named by the command that made it

    before_all = datetime.now(timezone.utc)
    for n, auc in ((1, 0.91), (2, 0.93)):
        digest = sha256(f"{model}/{n}".encode()).hexdigest()
        do(RegisterVersion, alice, artifact=Artifact(uri=f"s3://modelog-artifacts/sha256/{digest}",
                                                     sha256=digest, size=n), metrics={"auc": auc})
    # The model's own policy, so the default set by other tests does not matter here.
    do(SetPolicy, Actor(subject="platform-admin", roles=("admin",)),
       policy=Policy(approvals_required={"Production": 1}))
    do(RequestTransition, alice, version=1, to_stage="Staging")
    do(ApproveTransition, bob, request_id=request_id(do(RequestTransition, alice, version=1, to_stage="Production")))
    do(RequestTransition, alice, version=2, to_stage="Staging")
    do(ApproveTransition, carol, request_id=request_id(do(RequestTransition, alice, version=2, to_stage="Production")))
    before_rollback = datetime.now(timezone.utc)
    do(Rollback, olga, version=1)
    wait_for_timeline(stack.url("auditor"), model, EVENTS)
    return SimpleNamespace(model=model, alice=alice, bob=bob, carol=carol, olga=olga, before_all=before_all,
                           before_rollback=before_rollback, url=f"{stack.url('auditor')}/v1/audit")


def get(workflow, path: str, **params) -> httpx.Response:
    """Asked by an auditor: the cross-model questions need that role."""
    return httpx.get(f"{workflow.url}{path}", params=params, timeout=30, headers=bearer("inspector", "auditor"))


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def stages(state: dict) -> dict[str, str]:
    return {n: v["stage"] for n, v in state["state"]["versions"].items()}


def test_state_as_of_a_seq_and_as_of_instants(workflow):
    path = f"/models/{workflow.model}/state"
    after_first_promotion = ok(get(workflow, path, seq=8))
    assert (after_first_promotion["seq"], stages(after_first_promotion)) == (8, {"1": "Production", "2": "None"})

    just_before_rollback = ok(get(workflow, path, at=workflow.before_rollback.isoformat()))
    assert (just_before_rollback["seq"], stages(just_before_rollback)) == (13, {"1": "Archived", "2": "Production"})
    assert just_before_rollback["state"]["policy"]["approvals_required"] == {"Production": 1}

    now = ok(get(workflow, path, at=datetime.now(timezone.utc).isoformat()))
    assert (now["seq"], stages(now)) == (EVENTS, {"1": "Production", "2": "Archived"})

    nothing_yet = ok(get(workflow, path, at=workflow.before_all.isoformat()))
    assert (nothing_yet["seq"], nothing_yet["state"]["exists"], nothing_yet["state"]["versions"]) == (0, False, {})


def test_the_diff_across_the_rollback_from_an_instant_to_a_seq(workflow):
    answer = ok(get(workflow, f"/models/{workflow.model}/diff",
                    **{"from": workflow.before_rollback.isoformat(), "to": str(EVENTS)}))
    assert (answer["from_seq"], answer["to_seq"]) == (13, EVENTS)
    assert [c["text"] for c in answer["changes"]] == [
        "~ versions.1.stage: 'Archived' -> 'Production'", "~ versions.2.stage: 'Production' -> 'Archived'"]


def test_why_each_version_is_in_its_stage(workflow):
    v1 = ok(get(workflow, f"/models/{workflow.model}/versions/1/why"))
    assert (v1["stage"], v1["moved"]["payload"]["why"], v1["moved"]["actor"]["subject"]) == (
        "Production", "rollback", workflow.olga.subject)
    assert v1["registered"]["actor"]["subject"] == workflow.alice.subject
    assert [e["payload"]["to_stage"] for e in v1["stage_history"]] == ["Staging", "Production", "Archived", "Production"]
    assert v1["policy"]["source"] == "the model's own policy, set at seq 4 by platform-admin"

    v2 = ok(get(workflow, f"/models/{workflow.model}/versions/2/why"))
    assert (v2["stage"], v2["cause"]["payload"]["version"], v2["cause"]["actor"]["subject"]) == (
        "Archived", 1, workflow.olga.subject)
    assert any(workflow.olga.subject in line and "archiving" in line for line in v2["summary"])


def test_who_approved_each_version_for_production(workflow):
    [v1] = ok(get(workflow, f"/models/{workflow.model}/versions/1/approvals"))["requests"]
    assert v1["status"] == "promoted" and v1["requested"]["actor"]["subject"] == workflow.alice.subject
    assert [(r["type"], r["actor"]["subject"], r["actor"]["roles"]) for r in v1["reviews"]] == [
        ("ApprovalGranted", workflow.bob.subject, ["approver"])]
    assert v1["policy"]["policy"]["approvals_required"] == {"Production": 1}
    assert {g["rule"] for g in v1["gate_results"]} >= {"transition_allowed", "metric_thresholds"}
    assert all(g["passed"] for g in v1["gate_results"])
    [v2] = ok(get(workflow, f"/models/{workflow.model}/versions/2/approvals"))["requests"]
    assert [r["actor"]["subject"] for r in v2["reviews"]] == [workflow.carol.subject]
    assert ok(get(workflow, f"/models/{workflow.model}/versions/2/approvals", stage="Staging"))["requests"] == []


def test_everything_one_actor_did_page_by_page(workflow):
    seen, after = [], None
    while True:
        page = ok(get(workflow, f"/actors/{workflow.alice.subject}/events", limit=3,
                      **({"after": after} if after else {})))
        assert len(page["events"]) <= 3
        seen += [(e["model"], e["seq"], e["type"]) for e in page["events"]]
        if not (after := page["next"]):
            break
    assert [(seq, kind) for _, seq, kind in seen] == [
        (1, "ModelCreated"), (2, "VersionRegistered"), (3, "VersionRegistered"), (5, "StageChanged"),
        (6, "TransitionRequested"), (9, "StageChanged"), (10, "TransitionRequested")]
    assert {m for m, _, _ in seen} == {workflow.model}


def test_the_export_pages_hold_every_event_of_the_model_once(workflow):
    first = ok(get(workflow, "/events", model=workflow.model, limit=4))
    assert first["total"] == EVENTS
    events, after = first["events"], first["next"]
    while after:
        page = ok(get(workflow, "/events", model=workflow.model, limit=4, after=after))
        assert page["total"] is None
        events, after = events + page["events"], page["next"]
    assert sorted(e["seq"] for e in events) == list(range(1, EVENTS + 1))
    later = ok(get(workflow, "/events", model=workflow.model, since=workflow.before_rollback.isoformat()))
    assert [e["seq"] for e in later["events"]] == [14, 15]


def test_a_log_written_by_the_promoter_alone_raises_no_chain_alerts(workflow):
    # Each event was checked against its model's stored head as it was recorded.
    assert ok(get(workflow, "/alerts")) == {"count": 0, "alerts": []}


@pytest.mark.parametrize("path, params, status, code", [
    ("/models/{model}/state", {}, 400, "invalid_point"),
    ("/models/{model}/state", {"at": "2026-01-01", "seq": 3}, 400, "invalid_point"),
    ("/models/{model}/state", {"at": "last tuesday"}, 400, "invalid_instant"),
    ("/models/{model}/state", {"seq": 999}, 404, "seq_not_found"),
    ("/models/{model}/state", {"seq": -1}, 422, "invalid_request"),
    ("/models/no-such-{model}/state", {"seq": 1}, 404, "model_not_found"),
    ("/models/{model}/diff", {"from": "yesterday", "to": "3"}, 400, "invalid_point"),
    ("/models/{model}/diff", {"from": "1"}, 422, "invalid_request"),
    ("/models/{model}/versions/9/why", {}, 404, "version_not_found"),
    ("/models/no-such-{model}/versions/1/why", {}, 404, "model_not_found"),
    ("/models/{model}/versions/9/approvals", {}, 404, "version_not_found"),
    ("/models/no-such-{model}/timeline", {}, 404, "model_not_found"),
    ("/actors/nobody-{model}/events", {}, 404, "actor_not_found"),
    ("/events", {"after": "not-a-cursor"}, 400, "invalid_cursor"),
    ("/events", {"since": "soon"}, 400, "invalid_instant"),
])
def test_bad_questions_get_a_4xx_with_a_code(workflow, path, params, status, code):
    response = get(workflow, path.format(model=workflow.model), **params)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text


def audit(*args: str) -> tuple[int, str]:
    """`modelog audit ...` as a script would run it: exit code and output."""
    import os
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "modelog", "audit", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "200",
                                                      "MODELOG_TOKEN": token_for("inspector", "auditor")})
    return done.returncode, done.stdout + done.stderr


def answered(*args: str):
    import json
    code, output = audit(*args, "--json")
    assert code == 0, output
    return json.loads(output)


def test_the_cli_answers_why_in_sentences(workflow):
    code, output = audit("why", workflow.model, "1")
    assert code == 0, output
    assert f"{workflow.model} v1 is in Production" in output
    assert f"Archived -> Production (rollback), decided for {workflow.olga.subject}" in output
    code, output = audit("why", workflow.model, "2")
    assert "v2 is in Archived" in output
    assert f"v1 was moved to Production (rollback) by {workflow.olga.subject}, archiving this version" in output


def test_the_cli_shows_state_as_of_and_the_diff(workflow):
    code, output = audit("as-of", workflow.model, "--seq", "8")
    assert code == 0 and f"{workflow.model} at seq 8" in output and "Production" in output, output
    assert stages(answered("as-of", workflow.model, "--at", workflow.before_rollback.isoformat())) == {
        "1": "Archived", "2": "Production"}
    code, output = audit("diff", workflow.model, "--from", workflow.before_rollback.isoformat(), "--to", str(EVENTS))
    assert code == 0 and "seq 13 -> 15, 2 change(s)" in output and "versions.1.stage" in output, output


def test_the_cli_lists_a_timeline_and_an_actors_events(workflow):
    assert [e["seq"] for e in answered("timeline", workflow.model)] == list(range(1, EVENTS + 1))
    # The approval that completes a request moves the version in the same decision.
    assert [e["type"] for e in answered("actor", workflow.bob.subject)] == ["ApprovalGranted", "StageChanged"]
    code, output = audit("actor", workflow.olga.subject)
    assert code == 0 and "v1 Archived -> Production (rollback)" in output, output


def test_the_cli_exports_json_lines(workflow, tmp_path):
    import json
    out = tmp_path / "trail.jsonl"
    code, output = audit("export", "--model", workflow.model, "--out", str(out))
    assert code == 0 and f"{EVENTS} events written" in output, output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(e["seq"] for e in lines) == list(range(1, EVENTS + 1))
    assert {e["model"] for e in lines} == {workflow.model}


@pytest.mark.parametrize("args, code", [
    (("why", "no-such-model", "1"), 1),
    (("why", "{model}", "9"), 1),
    (("as-of", "{model}", "--seq", "999"), 1),
    (("as-of", "{model}", "--at", "last tuesday"), 2),
    (("as-of", "{model}"), 2),
    (("diff", "{model}", "--from", "1"), 2),
])
def test_cli_exit_codes_tell_not_found_from_usage(workflow, args, code):
    status, output = audit(*(a.format(model=workflow.model) for a in args))
    assert status == code, output


def restart_auditor(ports, **env: str) -> None:
    local = LocalStack()
    services.stop("auditor", local)
    services.start("auditor", local, env=env or None)
    services.wait_ready("auditor", local, ports)


def stored_checkpoints(engines, model: str) -> list[int]:
    async def seqs() -> list[int]:
        conn = await connect(engines.postgres())
        try:
            return [r["seq"] for r in await conn.fetch(
                "SELECT seq FROM audit_checkpoints WHERE model = $1 ORDER BY seq", model)]
        finally:
            await conn.close()
    return asyncio.run(seqs())


def test_as_of_answers_are_the_same_after_a_restart_with_stored_checkpoints(workflow, stack, engines):
    path = f"/models/{workflow.model}/state"
    points = [{"seq": n} for n in range(EVENTS + 1)] + [{"at": workflow.before_rollback.isoformat()}]
    before = [ok(get(workflow, path, **p)) for p in points]
    # The workflow was recorded with fewer events than the stack's interval, so
    # none is stored yet; an auditor storing every 4 events stores those an
    # answer folds past, as it does for history recorded before it stored any.
    restart_auditor(stack, MODELOG_AUDIT_CHECKPOINT_EVERY="4")
    try:
        assert ok(get(workflow, path, seq=EVENTS)) == before[EVENTS]
        assert stored_checkpoints(engines, workflow.model) == [4, 8, 12]
    finally:
        restart_auditor(stack)  # as the stack runs it
    assert [ok(get(workflow, path, **p)) for p in points] == before
