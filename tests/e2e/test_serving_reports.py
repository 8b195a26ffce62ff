"""What is live where, against the real stack: watchers report each version
they swap in (once per change, and again when restarted), the projector
answers which instance serves which version since when, the trail keeps every
report; a version a watcher refused is never reported, and a report of a
version that does not exist or was deleted is refused with its reason."""

import hashlib
import io
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from modelog import Client, ModelWatcher
from modelog.client import Forbidden, ModelogError
from modelog_platform.adapters.s3 import ArtifactStore, artifact_key
from tests.e2e.helpers import bearer, token_for, unique

pytestmark = pytest.mark.engines

WAIT_S = 90  # generous: a condition, never a speed, is what these tests check


@pytest.fixture
def served_model(client, admin_client, tmp_path):
    """A model with three registered versions (none in a stage yet), and each one's bytes."""
    name, contents = unique("live-where"), {}
    for n in (1, 2, 3):
        contents[n] = f"version {n} ".encode() + uuid4().bytes
        (tmp_path / f"v{n}.bin").write_bytes(contents[n])
        client.register_version(name, tmp_path / f"v{n}.bin")
    admin_client.set_policy(name, {"approvals_required": {}})
    return name, contents


def promote(client: Client, model: str, version: int) -> None:
    client.request_transition(model, version, "Staging")
    client.request_transition(model, version, "Production")


def watcher(stack, model: str, tmp_path: Path, instance: str) -> ModelWatcher:
    return ModelWatcher(model, Path.read_bytes, stage="Production", registrar_url=stack.url("registrar"),
                        projector_url=stack.url("projector"), token=token_for("serving-fleet", "server"),
                        cache_dir=tmp_path / f"cache-{uuid4().hex[:6]}", instance=instance)


def eventually(condition: Callable[[], object], what: str):
    deadline = time.monotonic() + WAIT_S
    while not (found := condition()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)
    return found


def live(stack, model: str) -> dict:
    return httpx.get(f"{stack.url('projector')}/v1/models/{model}/serving", headers=bearer("auditor", "reader"),
                     timeout=30).json()


def reports_in_trail(stack, model: str) -> list[tuple[str, int]]:
    events = httpx.get(f"{stack.url('auditor')}/v1/audit/models/{model}/timeline", headers=bearer("ines", "reader"),
                       timeout=30).json()["events"]
    return [(e["payload"]["instance"], e["payload"]["version"]) for e in events if e["type"] == "ServingReported"]


def test_two_watchers_report_each_version_they_swap_in_and_the_projector_says_what_is_live_where(
        stack, client, served_model, tmp_path):
    model, _ = served_model
    a, b = watcher(stack, model, tmp_path, "web-a").start(), watcher(stack, model, tmp_path, "web-b").start()
    try:
        promote(client, model, 1)
        assert a.wait_for(1, WAIT_S) and b.wait_for(1, WAIT_S)
        promote(client, model, 2)
        assert a.wait_for(2, WAIT_S) and b.wait_for(2, WAIT_S)
        answer = eventually(lambda: (found := live(stack, model))["versions"] == [
            {"version": 2, "instances": ["web-a", "web-b"]}] and found, "both instances live on version 2")
        since = {r["instance"]: r["since"] for r in answer["instances"]}
        assert since == {"web-a": a.served.since.isoformat(), "web-b": b.served.since.isoformat()}
        assert {(r["target"], r["reported_by"]) for r in answer["instances"]} == {("stage:Production", "serving-fleet")}
        assert all(r["host"] == a.host for r in answer["instances"])
        a.stop()
        restarted = watcher(stack, model, tmp_path, "web-a").start()  # the same instance, a new process
        try:
            assert restarted.wait_for(2, WAIT_S)
            eventually(lambda: {r["instance"]: r["since"] for r in live(stack, model)["instances"]}["web-a"]
                       == restarted.served.since.isoformat(), "the restarted instance's report")
        finally:
            restarted.stop()
    finally:
        a.stop()
        b.stop()
    trail = eventually(lambda: len(found := reports_in_trail(stack, model)) >= 5 and found, "five reports in the trail")
    assert sorted(trail) == [("web-a", 1), ("web-a", 2), ("web-a", 2), ("web-b", 1), ("web-b", 2)]  # no heartbeat
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("ines", "reader")) as ines:
        everywhere = [r for r in ines.serving_everywhere() if r["model"] == model]
    assert [(r["instance"], r["version"]) for r in everywhere] == [("web-a", 2), ("web-b", 2)]


def test_a_watcher_never_reports_a_version_whose_stored_bytes_it_refused(stack, engines, client, served_model,
                                                                          tmp_path):
    model, contents = served_model
    store = ArtifactStore(engines)
    with watcher(stack, model, tmp_path, "web-c") as serving:
        promote(client, model, 1)
        assert serving.wait_for(1, WAIT_S)
        tampered = b"tampered " + uuid4().bytes
        digest = hashlib.sha256(contents[2]).hexdigest()
        store.client.put_object(store.bucket, artifact_key(digest), io.BytesIO(tampered), len(tampered))
        promote(client, model, 2)
        eventually(lambda: serving.last_error is not None, "the corrupt version refused")
        promote(client, model, 3)  # a later swap still reports, the refused version never
        assert serving.wait_for(3, WAIT_S)
    eventually(lambda: reports_in_trail(stack, model) == [("web-c", 1), ("web-c", 3)], "reports of v1 and v3 only")
    assert [(r["instance"], r["version"]) for r in live(stack, model)["instances"]] == [("web-c", 3)]


def test_a_report_of_an_unknown_or_deleted_version_is_refused_with_its_reason(stack, client, admin_client,
                                                                            served_model):
    model, _ = served_model
    admin_client.delete_version(model, 3)
    at = datetime.now(timezone.utc)
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("serving-fleet", "server")) as fleet:
        with pytest.raises(ModelogError) as unknown:
            fleet.report_serving(model, 9, instance="web-d", since=at)
        assert unknown.value.code == "version_not_found"
        assert "has no version 9; its versions are 1 to 3" in unknown.value.message
        with pytest.raises(ModelogError) as deleted:
            fleet.report_serving(model, 3, instance="web-d", since=at)
        assert deleted.value.code == "version_deleted"
        assert "version 3 of" in deleted.value.message and "was deleted" in deleted.value.message
        assert fleet.report_serving(model, 1, instance="web-d", since=at)["events"] == ["ServingReported"]
    with pytest.raises(Forbidden) as forbidden:
        client.report_serving(model, 1, instance="web-d", since=at)  # a training pipeline's publisher token
    assert forbidden.value.code == "forbidden" and "'server' or 'operator'" in forbidden.value.message
