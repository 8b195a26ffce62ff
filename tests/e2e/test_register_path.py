"""The thin end-to-end path through all four services and all three engines:
upload -> S3 by sha256 -> command -> promoter -> event -> projector + auditor
-> 201 only once readable."""

import asyncio
import hashlib
import time
from uuid import uuid4

import httpx
import pytest

from modelog.client import ModelogError
from modelog_contract.codec import decode_event
from modelog_contract.domain.chain import first_broken_link
from modelog_platform.adapters.log_reader import read_committed
from modelog_platform.adapters.s3 import ArtifactStore, artifact_key
from modelog_platform.settings import EVENTS_TOPIC
from tests.e2e.helpers import (
    assert_nothing_written,
    bearer,
    decided,
    make,
    reading_projector,
    unique,
    wait_for_timeline,
)


def test_a_registered_version_is_stored_decided_projected_and_audited(client, stack, engines, trained_model):
    model = unique("fraud-detector")
    first = client.register_version(model, trained_model, run_id="run-1", metrics={"auc": 0.91})
    # Read-your-writes: 201 means the projector already has it.
    assert first["status"] == "accepted" and first["version"] == 1
    version = client.get_version(model, 1)
    expected_sha = hashlib.sha256(trained_model.read_bytes()).hexdigest()
    assert version["artifact_sha256"] == expected_sha
    assert version["artifact_uri"].endswith(artifact_key(expected_sha))
    assert version["metrics"] == {"auc": 0.91} and version["run_id"] == "run-1"

    second = client.register_version(model, trained_model, description="retrained")
    assert second["version"] == 2
    assert [v["version"] for v in client.list_versions(model)] == [1, 2]

    stored = asyncio.run(ArtifactStore(engines).read_verified(expected_sha))
    assert stored == trained_model.read_bytes()

    events = [decode_event(r.value) for r in asyncio.run(read_committed(engines, EVENTS_TOPIC))]
    mine = [e for e in events if e.model == model]
    assert [e.type for e in mine] == ["ModelCreated", "VersionRegistered", "VersionRegistered"]
    assert first_broken_link(mine) is None

    timeline = wait_for_timeline(stack.url("auditor"), model, len(mine))
    assert [e["seq"] for e in timeline] == [1, 2, 3]


@pytest.mark.parametrize("name", ["-bad", "has space", "x" * 129, "semi;colon"])
def test_an_invalid_model_name_is_refused_and_nothing_is_written(client, engines, tmp_path, name):
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights for " + name.encode())
    with pytest.raises(ModelogError) as refused:
        client.register_version(name, artifact)
    assert (refused.value.status, refused.value.code) == (400, "invalid_model_name")
    assert_nothing_written(engines, name, artifact.read_bytes())


def test_an_empty_upload_is_refused_and_nothing_is_written(client, engines, tmp_path):
    model, artifact = unique("empty"), tmp_path / "empty.bin"
    artifact.write_bytes(b"")
    with pytest.raises(ModelogError) as refused:
        client.register_version(model, artifact)
    assert (refused.value.status, refused.value.code) == (400, "empty_artifact")
    assert_nothing_written(engines, model, b"")


def test_a_digest_that_does_not_match_the_bytes_is_refused_and_nothing_is_written(stack, engines):
    model, data = unique("mismatch"), b"the real bytes " + uuid4().bytes
    response = httpx.post(f"{stack.url('registrar')}/v1/models/{model}/versions", headers=bearer("ci", "publisher"),
                          data={"sha256": "0" * 64}, files={"file": ("m.bin", data)})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "digest_mismatch"
    assert response.json()["error"]["actual"] == hashlib.sha256(data).hexdigest()
    assert_nothing_written(engines, model, data)


def test_malformed_metrics_are_refused_with_a_code(stack, engines):
    model, data = unique("badjson"), uuid4().bytes
    response = httpx.post(f"{stack.url('registrar')}/v1/models/{model}/versions", headers=bearer("ci", "publisher"),
                          data={"metrics": "{not json"}, files={"file": ("m.bin", data)})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")
    assert_nothing_written(engines, model, data)


def test_the_default_policy_set_by_an_event_governs_models_without_their_own(client, stack, engines, tmp_path):
    """A stricter default (two approvals for Production), set by publishing
    SetPolicy on the default-policy stream, applies to a model with no policy."""
    from modelog_contract.domain.commands import RequestTransition, SetPolicy
    from modelog_contract.domain.policy import DEFAULT_POLICY_STREAM, Policy

    def decide(command) -> dict:
        return decided(engines, stack, command)

    strict = Policy(approvals_required={"Production": 2}, approval_ttl_s=3600)
    assert asyncio.run(decide(make(SetPolicy, DEFAULT_POLICY_STREAM, policy=strict)))["accepted"]
    try:
        model, artifact = unique("governed"), tmp_path / "m.bin"
        artifact.write_bytes(uuid4().bytes)
        client.register_version(model, artifact)
        asyncio.run(decide(make(RequestTransition, model, version=1, to_stage="Staging")))
        # The promoter learns the new default from the log; give it a moment to read it.
        deadline = time.monotonic() + 10
        while True:
            asyncio.run(decide(make(RequestTransition, model, version=1, to_stage="Production")))
            pending = [e for e in wait_for_timeline(stack.url("auditor"), model, 1)
                       if e["type"] == "TransitionRequested"]
            if pending and pending[-1]["payload"]["approvals_required"] == 2:
                break
            assert time.monotonic() < deadline, pending
        assert pending[-1]["payload"]["rule_results"][0]["detail"].startswith("the default policy set at seq")
    finally:
        # The stack is the session's: later tests expect the built-in default (one approval for Production).
        assert asyncio.run(decide(make(SetPolicy, DEFAULT_POLICY_STREAM, policy=Policy())))["accepted"]



def test_serving_systems_look_up_a_stage_or_an_alias_and_poll_with_etags(client, stack, engines, trained_model, tmp_path):
    from modelog_contract.domain.commands import RequestTransition, SetAlias, SetTag

    model = unique("serving")
    other = tmp_path / "other.bin"
    other.write_bytes(uuid4().bytes)
    client.register_version(model, trained_model)
    client.register_version(model, other)
    asyncio.run(decided(engines, stack, make(RequestTransition, model, version=1, to_stage="Staging")))
    asyncio.run(decided(engines, stack, make(SetAlias, model, alias="champion", version=2)))
    projector = reading_projector(stack)

    staging = projector.get(f"/v1/models/{model}/stages/Staging")
    assert staging.status_code == 200
    [served] = staging.json()["versions"]
    assert (served["version"], served["stage"]) == (1, "Staging")
    downloaded = httpx.get(served["artifact"]["download_url"])  # presigned, straight from S3
    assert hashlib.sha256(downloaded.content).hexdigest() == served["artifact"]["sha256"]
    assert downloaded.content == trained_model.read_bytes()

    etag = staging.headers["etag"]
    assert projector.get(f"/v1/models/{model}/stages/Staging",
                         headers={"If-None-Match": etag}).status_code == 304
    asyncio.run(decided(engines, stack, make(SetTag, model, key="team", value="risk")))
    changed = projector.get(f"/v1/models/{model}/stages/Staging", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag

    champion = projector.get(f"/v1/models/{model}/aliases/champion").json()
    assert (champion["version"], champion["aliases"]) == (2, ["champion"])
    assert projector.get(f"/v1/models/{model}/stages/Production").json()["versions"] == []

    missing = projector.get(f"/v1/models/{model}/aliases/challenger")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "alias_not_found")
    assert projector.get(f"/v1/models/{unique('nope')}/stages/Staging").status_code == 404
    assert projector.get(f"/v1/models/{model}/stages/Prod").json()["error"]["code"] == "invalid_request"


def read_sse(url: str, count: int, headers: dict | None = None, timeout_s: float = 20) -> list[tuple[str, dict]]:
    """The first `count` events of an SSE stream, as (id, CloudEvent)."""
    import json
    events, fields = [], {}
    headers = {**bearer("serving", "reader"), **(headers or {})}
    with httpx.stream("GET", url, headers=headers, timeout=timeout_s) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith(("id:", "data:")):
                key, _, value = line.partition(":")
                fields[key] = value.strip()
            elif line == "" and "data" in fields:
                events.append((fields["id"], json.loads(fields["data"])))
                fields = {}
                if len(events) == count:
                    return events
    raise AssertionError(f"stream ended after {len(events)} events")


def test_a_change_feed_subscriber_resumes_with_no_gap_and_no_duplicate(client, stack, tmp_path):
    model = unique("watched")
    feed = f"{stack.url('projector')}/v1/changes?model={model}&from_start=true"
    artifact = tmp_path / "m.bin"
    for _n in (1, 2):
        artifact.write_bytes(uuid4().bytes)
        client.register_version(model, artifact)

    first = read_sse(feed, 3)  # ModelCreated, v1, v2; then the subscriber goes away
    assert [e["data"]["seq"] for _, e in first] == [1, 2, 3]
    assert first[1][1]["type"] == "io.modelog.VersionRegistered" and first[1][1]["subject"] == model

    for _n in (3, 4):  # committed while nobody listens
        artifact.write_bytes(uuid4().bytes)
        client.register_version(model, artifact)
    resumed = read_sse(feed, 2, headers={"Last-Event-ID": first[-1][0]})
    assert [e["data"]["seq"] for _, e in resumed] == [4, 5]

    only_versions = read_sse(f"{feed}&type=VersionRegistered", 4)
    assert [e["data"]["payload"]["version"] for _, e in only_versions] == [1, 2, 3, 4]

    bad = httpx.get(f"{stack.url('projector')}/v1/changes",
                    headers={"Last-Event-ID": "nonsense", **bearer("serving", "reader")})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_cursor")
