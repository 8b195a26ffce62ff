"""The forgery of the "least privilege" issue, re-run: someone who can append to
modelog.events (a misconfigured ACL, a broker admin) writes a StageChanged that
puts an archived version of a real model back into Production as "mallory",
correctly chained (the next seq, the head's hash as prev_hash, its own hash
right) but not signed by the promoter. Every reader must leave it out: the
projector serves what it served and quarantines it, the change feed does not
send it, the auditor raises an alert naming it and never makes it a head, a
seal does not cover it, `modelog audit verify` names it, and the promoter,
restarted, does not fold it. Likewise the same forgery signed with a key
nobody trusts, a real signed event replayed with its payload altered, and a
forged default policy."""

import asyncio
import json
from hashlib import sha256
from types import SimpleNamespace
from uuid import uuid4

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_contract.domain.chain import link_hash
from modelog_contract.domain.commands import CreateModel, RegisterVersion, RequestTransition, SetPolicy, SetTag
from modelog_contract.domain.policy import DEFAULT_POLICY_STREAM, Policy
from modelog_contract.domain.types import Artifact
from modelog_platform import services
from modelog_platform.settings import LocalStack
from tests.e2e.helpers import bearer, decided, make, unique, wait_for_timeline
from tests.security.forgery import (
    append,
    auditor_alert,
    log_of,
    modelog,
    next_event,
    projector,
    quarantined_newest,
    signed_by,
)

pytestmark = pytest.mark.engines
@pytest.fixture(scope="module")
def forged(engines, stack):
    """A real model whose v2 replaced v1 in Production (v1 Archived), then three
    forgeries of "v1 back into Production" appended to its stream, each waited
    for until the projector quarantined it."""
    model = unique("forged-victim")

    def do(kind, **fields) -> dict:
        outcome = asyncio.run(decided(engines, stack, make(kind, model, **fields)))
        assert outcome["accepted"], outcome
        return outcome

    do(CreateModel)
    do(SetPolicy, policy=Policy(approvals_required={}))  # its own: whatever default other tests set
    for n in (1, 2):
        digest = sha256(f"{model}/{n}".encode()).hexdigest()
        do(RegisterVersion, artifact=Artifact(uri=f"s3://modelog-artifacts/sha256/{digest}", sha256=digest, size=n))
        do(RequestTransition, version=n, to_stage="Staging")
        do(RequestTransition, version=n, to_stage="Production")
    real = log_of(engines, model)
    wait_for_timeline(stack.url("auditor"), model, len(real))
    head = real[-1]
    promotion = next(e for e in reversed(real) if e["type"] == "StageChanged" and e["payload"]["version"] == 2
                     and e["payload"]["to_stage"] == "Production")
    back_to_production = {**promotion["payload"], "version": 1, "from_stage": "Archived", "to_stage": "Production",
                          "why": "rollback"}
    with projector(stack) as reading:
        before = {"model": reading.get(f"/v1/models/{model}").json(),
                  "production": reading.get(f"/v1/models/{model}/stages/Production").json()["versions"],
                  "v1": reading.get(f"/v1/models/{model}/versions/1").json()}
    assert [v["version"] for v in before["production"]] == [2] and before["v1"]["stage"] == "Archived"

    unsigned = next_event(head, promotion, payload=back_to_production)
    untrusted = signed_by(next_event(head, promotion, payload=back_to_production), Ed25519PrivateKey.generate())
    # A real, signed event replayed at the head: its signature kept, its payload
    # (and so its hash) changed.
    altered = {**promotion, "event_id": str(uuid4()), "seq": head["seq"] + 1, "prev_hash": head["hash"],
               "payload": back_to_production}
    altered["hash"] = link_hash(altered["prev_hash"], altered)
    forgeries = {}
    for name, fields in (("unsigned", unsigned), ("untrusted", untrusted), ("altered", altered)):
        partition, offset = append(engines, model, fields)
        forgeries[name] = SimpleNamespace(fields=fields, partition=partition, offset=offset,
                                          readyz=quarantined_newest(stack, fields["event_id"]))
    return SimpleNamespace(model=model, head=head, before=before, forgeries=forgeries)


PROBLEMS = {"unsigned": "unsigned", "untrusted": "which this reader does not trust",
            "altered": "the writer's signature does not verify"}


def test_the_projector_serves_the_real_production_version_only(forged, stack):
    with projector(stack) as reading:
        assert reading.get(f"/v1/models/{forged.model}/stages/Production").json()["versions"] == \
            forged.before["production"]
        assert reading.get(f"/v1/models/{forged.model}/versions/1").json() == forged.before["v1"]
        model = reading.get(f"/v1/models/{forged.model}").json()
        assert model == forged.before["model"] and model["seq"] == forged.head["seq"]
        history = reading.get(f"/v1/models/{forged.model}/history").json()["changes"]
        assert "mallory" not in {change["actor"] for change in history}
        for name in ("unsigned", "untrusted"):  # no outcome recorded for a forged command
            outcome = reading.get(f"/v1/commands/{forged.forgeries[name].fields['command_id']}")
            assert outcome.status_code == 404, outcome.text
        # The replayed event names a real command: its outcome is still the real one.
        real = reading.get(f"/v1/commands/{forged.forgeries['altered'].fields['command_id']}").json()
        assert (real["last_seq"], real["version"]) == (forged.head["seq"], 2), real  # it closed at the head


def test_the_quarantine_keeps_each_forgery_and_readyz_reports_it_staying_ready(forged):
    for name, forgery in forged.forgeries.items():
        answer = forgery.readyz
        assert answer["ready"] is True  # a forged event pages; it does not take serving down
        newest = answer["checks"]["unproven_events"]["newest"]
        assert (newest["model"], newest["seq"], newest["kafka_partition"], newest["kafka_offset"]) == (
            forged.model, forged.head["seq"] + 1, forgery.partition, forgery.offset)
        assert PROBLEMS[name] in newest["problem"], newest
    assert forged.forgeries["altered"].readyz["checks"]["unproven_events"]["quarantined"] >= 3


def test_the_change_feed_does_not_send_a_forgery(forged, stack):
    seen = []
    with httpx.stream("GET", f"{stack.url('projector')}/v1/changes", params={"model": forged.model, "from_start": True},
                      headers=bearer("serving", "reader"), timeout=30) as feed:
        for line in feed.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line.removeprefix("data: ")))
            if line.startswith(": keep-alive"):
                break  # the log read to its end
    assert [e["data"]["seq"] for e in seen] == list(range(1, forged.head["seq"] + 1))
    assert not {f.fields["event_id"] for f in forged.forgeries.values()} & {e["id"] for e in seen}


def test_the_auditor_alerts_naming_each_forgery_and_keeps_the_real_head(forged, stack):
    for name, forgery in forged.forgeries.items():
        alert = auditor_alert(stack, forgery.fields["event_id"])
        assert (alert["model"], alert["seq"], alert["kafka_partition"], alert["kafka_offset"]) == (
            forged.model, forged.head["seq"] + 1, forgery.partition, forgery.offset)
        assert PROBLEMS[name] in alert["problem"], alert
    timeline = wait_for_timeline(stack.url("auditor"), forged.model, forged.head["seq"])
    assert [e["seq"] for e in timeline] == list(range(1, forged.head["seq"] + 1))
    assert timeline[-1]["hash"] == forged.head["hash"]


def test_the_next_seal_covers_the_real_head_not_a_forgery(forged):
    sealed = modelog("audit", "seal", "--json")
    assert sealed.returncode == 0, sealed.stdout + sealed.stderr
    head = {h["model"]: h for h in json.loads(sealed.stdout)["seal"]["heads"]}[forged.model]
    assert (head["seq"], head["hash"]) == (forged.head["seq"], forged.head["hash"])


def test_audit_verify_names_each_forgery_and_exits_one(forged):
    verdict = modelog("audit", "verify")
    assert verdict.returncode == 1, verdict.stdout + verdict.stderr
    broken = [line for line in verdict.stdout.splitlines() if line.startswith("BROKEN")]
    for name, forgery in forged.forgeries.items():
        named = f"BROKEN {forged.model} seq {forged.head['seq'] + 1} (partition {forgery.partition}, " \
                f"offset {forgery.offset}): "
        assert [line for line in broken if line.startswith(named) and PROBLEMS[name] in line
                and forgery.fields["event_id"] in line], verdict.stdout
    # The real chain around them holds: nothing else of this model is named.
    assert len([line for line in broken if f" {forged.model} " in line]) == len(forged.forgeries), verdict.stdout


def test_the_promoter_restarted_folds_none_of_them(forged, engines, stack):
    local = LocalStack()
    services.stop("promoter", local)
    services.start("promoter", local)
    services.wait_ready("promoter", local, stack)
    outcome = asyncio.run(decided(engines, stack, make(SetTag, forged.model, key="after", value="forgery")))
    assert outcome["accepted"] and outcome["last_seq"] == forged.head["seq"] + 1, outcome


def test_a_forged_default_policy_changes_nothing(engines, stack):
    stream = log_of(engines, DEFAULT_POLICY_STREAM)
    template = {"type": "PolicySet", "schema_version": 1, "model": DEFAULT_POLICY_STREAM}
    # Were it followed, every model without a policy of its own would need
    # five approvals to reach Staging.
    strict = json.loads(Policy(approvals_required={"Staging": 5}).model_dump_json())
    forgery = next_event(stream[-1] if stream else None, template, payload={"type": "PolicySet", "policy": strict})
    append(engines, DEFAULT_POLICY_STREAM, forgery)
    quarantined_newest(stack, forgery["event_id"])

    model = unique("forged-default")
    digest = sha256(model.encode()).hexdigest()
    for command in (make(CreateModel, model),
                    make(RegisterVersion, model, artifact=Artifact(uri=f"s3://modelog-artifacts/sha256/{digest}",
                                                                   sha256=digest, size=1))):
        assert asyncio.run(decided(engines, stack, command))["accepted"]
    staged = asyncio.run(decided(engines, stack, make(RequestTransition, model, version=1, to_stage="Staging")))
    assert staged["accepted"] and staged["events"] == ["StageChanged"], staged
