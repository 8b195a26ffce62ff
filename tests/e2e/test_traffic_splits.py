"""Traffic splits against the real stack: an operator's split is decided under
policy, served by the lookup with its ETag, and routed by SplitWatcher, the
same request key always to the same version; a split the policy or the stages
forbid is refused with its code; removing the canary is served and the watcher
drops it; promoting the canary over Production clears the split in the read
models as in the decider."""

import hashlib
from pathlib import Path
from uuid import uuid4

import pytest

from modelog import ModelogError, SplitWatcher, WatcherEvent
from tests.e2e.helpers import modelog, token_for, unique

pytestmark = pytest.mark.engines

WAIT_S = 90  # generous: a condition, never a speed, is what these tests check
KEYS = [f"customer-{n}" for n in range(1000)]


def expected_bucket(key: str) -> int:
    """The hash the watcher documents, computed here on its own."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 100


@pytest.fixture
def canary_model(client, admin_client, operator, tmp_path):
    """v1 in Production, v2 in Staging, v3 archived, under a policy that needs no
    approvals and allows a canary at most 20% of the traffic; each version's bytes."""
    name, contents = unique("split"), {}
    for n in (1, 2, 3):
        contents[n] = f"version {n} ".encode() + uuid4().bytes
        (tmp_path / f"v{n}.bin").write_bytes(contents[n])
        client.register_version(name, tmp_path / f"v{n}.bin")
    admin_client.set_policy(name, {"approvals_required": {}, "max_canary_percent": 20})
    for version, stage in ((1, "Staging"), (1, "Production"), (2, "Staging"), (3, "Staging")):
        client.request_transition(name, version, stage)
    operator.request_transition(name, 3, "Archived")
    return name, contents


def watcher(stack, model: str, tmp_path: Path, events: list[WatcherEvent]) -> SplitWatcher:
    return SplitWatcher(model, lambda path: path.read_bytes(), registrar_url=stack.url("registrar"),
                        projector_url=stack.url("projector"), token=token_for("serving", "reader"),
                        cache_dir=tmp_path / f"cache-{uuid4().hex[:6]}", on_event=events.append)


def test_a_ten_percent_canary_is_served_and_routed_by_the_key_then_removed(
        stack, operator, canary_model, tmp_path):
    model, contents = canary_model
    decided = operator.set_traffic_split(model, {1: 90, 2: 10}, comment="canary v2")
    assert decided["events"] == ["TrafficSplitSet"]

    split = operator.traffic_split(model)
    assert (split["split"], split["production_version"]) == (True, 1)
    assert [(r["version"], r["weight"], r["stage"]) for r in split["routes"]] == [
        (1, 90, "Production"), (2, 10, "Staging")]
    assert split["routes"][1]["artifact"]["sha256"] == hashlib.sha256(contents[2]).hexdigest()
    etag = str(split["seq"])
    again = operator.projector.get(f"/v1/models/{model}/traffic-split", headers={"If-None-Match": f'"{etag}"'})
    assert again.status_code == 304

    events: list[WatcherEvent] = []
    with watcher(stack, model, tmp_path, events) as one, watcher(stack, model, tmp_path, events) as other:
        assert one.wait_for_weights({1: 90, 2: 10}, WAIT_S) and other.wait_for_weights({1: 90, 2: 10}, WAIT_S)
        routed = {key: one.route(key) for key in KEYS}
        on_v2 = [key for key in KEYS if routed[key][0] == 2]
        assert len(on_v2) == sum(expected_bucket(key) >= 90 for key in KEYS)
        assert 50 <= len(on_v2) <= 150  # about a tenth: the hash spreads keys evenly
        assert all(routed[key][1] == contents[routed[key][0]] for key in KEYS)  # each answer is its version's
        assert all(one.route(key) == routed[key] == other.route(key) for key in KEYS)  # same key, same version

        assert operator.set_traffic_split(model, {1: 100})["events"] == ["TrafficSplitSet"]
        removed = operator.traffic_split(model)
        assert (removed["split"], [(r["version"], r["weight"]) for r in removed["routes"]]) == (False, [(1, 100)])
        assert one.wait_for_weights({1: 100}, WAIT_S)
        assert {one.route(key)[0] for key in KEYS} == {1}
    assert [e.kind for e in events if e.kind == "failed"] == []


def test_splits_the_policy_or_the_stages_forbid_are_refused_with_their_codes(client, operator, canary_model):
    model, _ = canary_model
    with pytest.raises(ModelogError) as by_a_publisher:
        client.set_traffic_split(model, {1: 90, 2: 10})
    assert (by_a_publisher.value.status, by_a_publisher.value.code) == (403, "forbidden")

    for routes, status, code in (({1: 90, 3: 10}, 409, "version_not_serving"),
                                 ({1: 80, 2: 10}, 422, "split_weights_invalid"),
                                 ({1: 70, 2: 30}, 422, "canary_above_maximum")):
        with pytest.raises(ModelogError) as refused:
            operator.set_traffic_split(model, routes)
        assert (refused.value.status, refused.value.code) == (status, code), routes
    assert operator.traffic_split(model)["split"] is False


def test_promoting_the_canary_over_production_clears_the_split_in_the_lookup(client, operator, canary_model):
    model, _ = canary_model
    operator.set_traffic_split(model, {1: 80, 2: 20}, shadows=[])
    client.request_transition(model, 2, "Production")  # archives v1, the split's Production version
    split = operator.traffic_split(model)
    assert (split["split"], [(r["version"], r["weight"]) for r in split["routes"]]) == (False, [(2, 100)])


def test_the_cli_sets_and_shows_a_split(canary_model):
    model, _ = canary_model
    env = {"MODELOG_TOKEN": token_for("olga", "operator")}
    done = modelog("split", "set", model, "1=90", "2=10", "--comment", "canary", env=env)
    assert done.exit_code == 0 and "TrafficSplitSet" in done.output, done.output
    shown = modelog("split", "show", model, env=env)
    assert shown.exit_code == 0 and "canary" in shown.output and "90" in shown.output, shown.output
    refused = modelog("split", "set", model, "1=50", "2=50", env=env)
    assert refused.exit_code == 1 and "canary_above_maximum" in refused.output, refused.output
