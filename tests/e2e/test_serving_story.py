"""The serving story end to end (issue 15), against the real stack: a serving
process of its own (serving_story_process.py: a SplitWatcher and a
ModelWatcher under one request loop, its monitoring publishing signals) serves
v1; v2 becomes a 10% canary and fails some of its answers, and the sentinel
removes the canary; v2 then reaches Production under a reviewer's approval,
fails again, and the sentinel rolls Production back to v1. Every swap happens
without a failed request, and the trail says why v1 is in Production: the
sentinel, its rule and its evidence.

One story, played once by a module fixture, and asked several questions.
No assertion is on a duration: the story waits for each decision with a
generous deadline, then checks order and attribution from the log, and prints
how long after its window each decision committed, for the record.
"""

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from modelog import Client, ModelWatcher
from modelog_contract.domain.events import Event
from modelog_platform import engines as local_engines
from modelog_platform.settings import EngineEndpoints, LocalStack
from tests.e2e.helpers import bearer, token_for, unique
from tests.e2e.sentinel_helpers import SENTINEL, events_of, sentinel_decisions
from tests.e2e.serving_story_driver import ServingProcess, eventually

pytestmark = pytest.mark.engines

WINDOW_S = 3  # the test stack's sentinel window (tests/conftest.py)
RULE = {"kind": "error_rate", "name": "story-errors-over-5pc", "max_error_percent": 5, "window_s": WINDOW_S,
        "min_requests": 20}
WAIT_S = 120  # generous: a condition, never a speed, is what is checked
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Story:
    model: str
    process: ServingProcess
    events: list[Event] = field(default_factory=list)
    final: dict = field(default_factory=dict)
    routed_to_canary_after_removal: int | None = None


def write_version(directory: Path, model: str, version: int, error_share: float) -> Path:
    """A story model: a JSON document naming its version and the share of answers it gets wrong."""
    path = directory / f"{model}-v{version}.json"
    path.write_text(f'{{"version": {version}, "error_share": {error_share}}}')
    return path


def to_production(alice: Client, bob: Client, model: str, version: int) -> None:
    """Staging needs nothing, Production a reviewer's approval (the model's policy)."""
    alice.request_transition(model, version, "Staging")
    request = alice.request_transition(model, version, "Production")["request_id"]
    bob.approve(model, request, comment="approved for the story")


def serving_env() -> dict[str, str]:
    """The serving process's environment: a `server` token, and Kafka as the `publisher` principal."""
    publisher = local_engines.service_env(EngineEndpoints(), LocalStack(), "publisher")
    return {**os.environ, "MODELOG_TOKEN": token_for("serving-story", "server"), **publisher}


@pytest.fixture(scope="module")
def story(stack, engines, tmp_path_factory):
    directory = tmp_path_factory.mktemp("story")
    model = unique("story")
    people = {who: Client(stack.url("registrar"), stack.url("projector"), token=token_for(who, *roles))
              for who, roles in (("alice", ("publisher",)), ("bob", ("approver",)), ("olga", ("operator",)),
                                 ("pat", ("admin",)))}
    alice, bob, olga, pat = people.values()
    try:
        alice.register_version(model, write_version(directory, model, 1, error_share=0.0))
        alice.register_version(model, write_version(directory, model, 2, error_share=0.3))
        pat.set_policy(model, {"approvals_required": {"Production": 1}, "rollback_rules": [RULE]})
        to_production(alice, bob, model, 1)

        process = ServingProcess(model, serving_env(), cwd=REPO)
        story = Story(model, process)
        try:
            process.wait("both watchers serving v1", lambda line: line["kind"] == "ready"
                         and line["production"] == 1 and line["split"] == {"1": 100}, timeout_s=WAIT_S)
            alice.request_transition(model, 2, "Staging")
            olga.set_traffic_split(model, {1: 90, 2: 10}, comment="canary v2")
            canary = process.wait("the loop routing to the canary", lambda line: line["kind"] == "status"
                                  and line["online"].get("2", 0) > 0, timeout_s=WAIT_S)
            removed = process.wait("the canary removed", lambda line: line["kind"] == "status"
                                   and line["split"] == {"1": 100}, after=canary.index, timeout_s=WAIT_S)
            # Four status lines later (two seconds of requests), the canary has had none more.
            later = process.wait("two more seconds of requests", lambda line: line["kind"] == "status",
                                 after=removed.index + 4, timeout_s=WAIT_S)
            story.routed_to_canary_after_removal = later.line["online"].get("2", 0) - removed.line["online"]["2"]

            request = alice.request_transition(model, 2, "Production")["request_id"]
            bob.approve(model, request, comment="the canary's hosts were at fault; v2 is good")
            # Each watcher's next swap to v1 is the rollback's (what came between: `swaps` below).
            for watcher in ("batch", "online"):
                process.wait(f"the {watcher} watcher back on v1", swapped_to(watcher, 1), after=later.index,
                             timeout_s=WAIT_S)
        finally:
            story.final = process.finish()
        story.events = events_of_now(engines, model)
        yield story
    finally:
        for client in people.values():
            client.close()


def swapped_to(watcher: str, version: int) -> Callable[[dict], bool]:
    """A line saying `watcher` swapped to serve `version` (the split watcher: as its Production route)."""
    return lambda line: (line["kind"] == "watcher" and line["watcher"] == watcher and line["event"] == "swapped"
                         and line["version"] == version)


def events_of_now(engines, model: str) -> list[Event]:
    return asyncio.run(events_of(engines, model))


def the_one(events: list[Event], what: str, matches) -> Event:
    found = [e for e in events if matches(e)]
    assert len(found) == 1, f"{what}: {[(e.seq, e.type, e.actor.subject) for e in found]}"
    return found[0]


def report(what: str, decision: Event) -> None:
    evidence = decision.payload.evidence
    print(f"{what}: window {evidence.window_start.time()} to {evidence.window_end.time()}, committed "
          f"{(decision.occurred_at - evidence.window_end).total_seconds():.2f} s after the window's end")


def test_the_sentinel_removes_a_failing_canary_with_its_rule_and_evidence_and_the_loop_stops_routing_to_it(story):
    decisions = sentinel_decisions(story.events)
    assert [e.type for e in decisions] == ["TrafficSplitSet", "StageChanged"]
    removal = decisions[0]
    assert removal.actor.subject == SENTINEL and removal.actor.roles == ("operator",)
    assert [(r.version, r.weight) for r in removal.payload.routes] == [(1, 100)]
    evidence = removal.payload.evidence
    assert evidence.rule.name == RULE["name"] and "version 2" in evidence.detail
    canary = next(v for v in evidence.versions if v.version == 2)
    assert canary.requests >= RULE["min_requests"] and canary.errors * 100 > RULE["max_error_percent"] * canary.requests
    # Within one window: the window judged began after the canary's route was set, spans one window, and the
    # removal was decided after it ended.
    canary_set = the_one(story.events, "olga's split", lambda e: e.type == "TrafficSplitSet"
                         and e.actor.subject.startswith("olga"))
    assert canary_set.occurred_at <= evidence.window_start
    assert evidence.window_end - evidence.window_start == timedelta(seconds=WINDOW_S)
    assert evidence.window_end <= removal.occurred_at
    report("canary removed", removal)
    assert story.routed_to_canary_after_removal == 0


def test_the_sentinel_rolls_a_degraded_production_back_to_the_version_before_it_after_one_window(story):
    rollback = sentinel_decisions(story.events)[1]
    assert rollback.actor.subject == SENTINEL
    payload = rollback.payload
    assert (payload.version, payload.from_stage, payload.to_stage, payload.why) == (1, "Archived", "Production",
                                                                                    "rollback")
    evidence = payload.evidence
    assert evidence.rule.name == RULE["name"] and [v.version for v in evidence.versions] == [2]
    assert evidence.versions[0].errors * 100 > RULE["max_error_percent"] * evidence.versions[0].requests
    promoted = the_one(story.events, "v2's promotion", lambda e: e.type == "StageChanged"
                       and e.payload.version == 2 and e.payload.to_stage == "Production")
    assert promoted.actor.subject == "bob"
    assert promoted.occurred_at <= evidence.window_start < evidence.window_end <= rollback.occurred_at
    assert evidence.window_end - evidence.window_start == timedelta(seconds=WINDOW_S)
    report("rolled back", rollback)
    print(f"v2 promoted {promoted.occurred_at.time()}, rolled back {rollback.occurred_at.time()}: "
          f"{(rollback.occurred_at - promoted.occurred_at).total_seconds():.2f} s in Production")


def test_every_swap_happens_without_a_failed_request_and_the_loop_served_both_versions(story):
    final = story.final
    assert final["failures"] == 0, final["failure_samples"]
    assert set(final["online"]) == {"1", "2"} and set(final["batch"]) == {"1", "2"}
    assert final["errors"].get("1", 0) == 0 and final["errors"]["2"] > 0
    swaps = story.process.swaps()
    assert swaps["online"] == ["v1 100%", "v1 90%, v2 10%", "v1 100%", "v2 100%", "v1 100%"]
    assert swaps["batch"] == [1, 2, 1]
    print(f"requests: online {final['online']}, batch {final['batch']}, errors {final['errors']}, failures 0")


def live_on(stack, model: str, instance: str) -> tuple[int, str] | None:
    """(version, target) the registry says `instance` serves, as the watchers reported it."""
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("ines", "reader")) as ines:
        found = [(r["version"], r["target"]) for r in ines.serving(model)["instances"] if r["instance"] == instance]
    return found[0] if found else None


def test_the_production_watcher_reported_v1_again_after_the_rollback(story, stack):
    instance = f"{story.model}-batch"
    eventually("the batch instance reported v1", lambda: live_on(stack, story.model, instance) == (
        1, "stage:Production"), timeout_s=WAIT_S)


def test_the_split_watcher_reported_v1_alone_again_after_the_rollback(story, stack):
    instance = f"{story.model}-online"
    try:
        eventually("the online instance reported v1 alone", lambda: live_on(stack, story.model, instance) == (
            1, "split:1=100"), timeout_s=15)
    finally:
        print(f"the registry says {instance} serves {live_on(stack, story.model, instance)}")


def test_why_is_v1_in_production_names_the_sentinel_its_rule_and_the_evidence(story, stack):
    url = f"{stack.url('auditor')}/v1/audit/models/{story.model}/versions/1/why"

    def moved_by() -> str | None:
        moved = httpx.get(url, headers=bearer("ines", "auditor"), timeout=30).json().get("moved")
        return moved["actor"]["subject"] if moved else None

    eventually("the auditor has the rollback", lambda: moved_by() == SENTINEL, timeout_s=WAIT_S)
    done = subprocess.run([sys.executable, "-m", "modelog", "audit", "why", story.model, "1"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "250",
                                                      "MODELOG_TOKEN": token_for("ines", "auditor")})
    print(done.stdout)
    assert done.returncode == 0, done.stderr
    assert f"{story.model} v1 is in Production" in done.stdout
    assert f"Archived -> Production (rollback), decided for {SENTINEL}" in done.stdout
    assert f"on the evidence of rule {RULE['name']} (more than 5% of requests failing over 3 s" in done.stdout
    assert "v2 " in done.stdout and "version 2:" in done.stdout


def test_the_demos_sentinel_chapter_plays_the_canarys_removal_then_the_rollback(stack, engines, monkeypatch,
                                                                                tmp_path):
    """`make demo`'s chapter (demo.py, demo_sentinel.py) as the demo plays it, on the test stack's
    windows, with a model of its own: the rule, the canary removed, v2 promoted, rolled back."""
    from modelog_platform import demo
    from modelog_platform.demo_sentinel import RULE_NAME

    model = unique("demo-chapter")
    monkeypatch.setattr(demo, "MODEL", model)
    terminal = demo.Terminal()
    for run in (1, 2):
        demo.train(tmp_path / f"run{run}.pkl", seed=run)
        assert terminal.run("alice", "register", model, str(tmp_path / f"run{run}.pkl")) == 0
    assert terminal.run("alice", "promote", model, "1", "--to", "Staging") == 0
    assert terminal.run("alice", "promote", model, "1", "--to", "Production") == 0
    assert terminal.run("bob", "approve", model, demo.pending_request(terminal, 1, model)) == 0
    serving = ModelWatcher(model, demo.load_pickle, stage="Production", token=token_for("serving-eu-1", "server"),
                           on_event=demo.print_serving)
    with serving:
        assert serving.wait_for(1, WAIT_S)
        window_s = demo.rule_chapter(terminal, stack)
        assert terminal.run("alice", "promote", model, "2", "--to", "Staging") == 0
        assert terminal.run("olga", "split", "set", model, "1=90", "2=10") == 0
        demo.canary_chapter(terminal, 1, 2, window_s)
        demo.sentinel_chapter(terminal, serving, 1, 2, window_s)
        assert serving.version == 1
    assert window_s == WINDOW_S
    decisions = sentinel_decisions(events_of_now(engines, model))
    assert [(e.type, e.payload.evidence.rule.name) for e in decisions] == [
        ("TrafficSplitSet", RULE_NAME), ("StageChanged", RULE_NAME)]
