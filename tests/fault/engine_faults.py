"""What the engine-fault tests share: killing an engine of the test stack with
SIGKILL and bringing it back the way `modelog up` does, a burst of writes
through the registrar that records every answer, and the checks every
scenario ends with (one outcome per accepted command, every chain verifies,
read models equal a rebuild, the audit store equals the log)."""

import asyncio
import os
import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from uuid import UUID, uuid4

import httpx

from modelog_contract.codec import decode_event
from modelog_contract.domain.chain import first_broken_link
from modelog_platform import engines as local_engines
from modelog_platform.adapters.log_reader import read_committed
from modelog_platform.engines import procs
from modelog_platform.engines.layout import Layout
from modelog_platform.engines.stack import ENGINES
from modelog_platform.settings import EVENTS_TOPIC, EngineEndpoints, LocalStack
from tests.e2e.helpers import bearer
from tests.fault.read_side import assert_read_side_equals_the_log, committed_data_offsets


def kill_engine(name: str) -> int:
    """SIGKILL the engine's whole process group, as a crashed host process would
    die; returns the leader's pid once every member is gone."""
    engine = next(e for e in ENGINES if e.name == name)
    pid = engine.running_pid(Layout(EngineEndpoints(), LocalStack(), print))
    assert pid is not None, f"{name} is not running"
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while procs.group_members(pid):
        assert time.monotonic() < deadline, f"{name} ({pid}) outlived SIGKILL"
        time.sleep(0.05)
    return pid


def restart_engines() -> dict[str, str]:
    """What `modelog up` does for the engines: start what is not running, wait
    until a real client can use it, provision (idempotently)."""
    return local_engines.up(EngineEndpoints(), LocalStack(), report=lambda _: None)


@dataclass
class Answer:
    """One write through the registrar, as its caller saw it."""

    key: str            # the Idempotency-Key: a retry with it is the same command
    model: str
    phase: str          # what the test was doing when the request started
    status: int
    retry_after: str | None
    code: str | None
    command_id: UUID | None


@dataclass
class Writes:
    """Every answer, and the phase the test is in (the writers read it)."""

    phase: str = "before"
    answers: list[Answer] = field(default_factory=list)
    stop: bool = False

    def accepted(self) -> list[Answer]:
        return [a for a in self.answers if a.status in (200, 201, 202)]

    def in_phase(self, phase: str) -> list[Answer]:
        return [a for a in self.answers if a.phase == phase]

    def summary(self) -> dict[str, Counter]:
        by_phase: dict[str, Counter] = defaultdict(Counter)
        for a in self.answers:
            by_phase[a.phase][f"{a.status} {a.code or ''}".strip()] += 1
        return dict(by_phase)


async def register(api: httpx.AsyncClient, model: str, key: str, phase: str) -> Answer:
    """Upload a small file as the model's next version, with an Idempotency-Key."""
    data = f"{model}/{key}".encode()
    response = await api.post(f"/v1/models/{model}/versions", headers={"Idempotency-Key": key},
                              files={"file": ("model.bin", data)}, data={"run_id": key})
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    command_id = body.get("command_id") if response.status_code in (200, 201, 202) else None
    return Answer(key, model, phase, response.status_code, response.headers.get("retry-after"),
                  (body.get("error") or {}).get("code"), UUID(command_id) if command_id else None)


async def writer(registrar_url: str, subject: str, models: list[str], writes: Writes) -> None:
    """Registrations one after another until told to stop (one subject per
    writer: the per-subject write limit is not what is under test)."""
    headers = bearer(subject, "publisher")
    async with httpx.AsyncClient(base_url=registrar_url, headers=headers, timeout=120) as api:
        i = 0
        while not writes.stop:
            model = models[i % len(models)]
            phase = writes.phase
            try:
                writes.answers.append(await register(api, model, f"{subject}-{uuid4().hex}", phase))
            except httpx.TransportError as error:  # the registrar itself must keep answering
                writes.answers.append(Answer("", model, phase, 0, None, type(error).__name__, None))
            i += 1
            await asyncio.sleep(0.01)


async def retry_until_decided(registrar_url: str, answers: list[Answer], subject_of, timeout_s=180) -> list[Answer]:
    """Each refused write again with its own Idempotency-Key, until it has an
    outcome: a retry after a 503 acts once, whether or not the first try was recorded."""
    deadline, done = time.monotonic() + timeout_s, []
    for answer in answers:
        async with httpx.AsyncClient(base_url=registrar_url, headers=bearer(subject_of(answer), "publisher"),
                                     timeout=120) as api:
            while True:
                again = await register(api, answer.model, answer.key, "retry")
                if again.status in (200, 201, 202):
                    done.append(again)
                    break
                assert again.status == 503 and time.monotonic() < deadline, again
                await asyncio.sleep(1)
    return done


async def wait_for_outcomes(projector_url: str, command_ids: set[UUID], timeout_s=240) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=projector_url, headers=bearer("test-harness", "reader"),
                                 timeout=60) as projector:
        for command_id in command_ids:
            while (await projector.get(f"/v1/commands/{command_id}", params={"wait": 5})).status_code != 200:
                assert time.monotonic() < deadline, f"no outcome for {command_id}"


async def assert_whole_after_the_fault(engines, models: list[str], accepted: set[UUID]) -> None:
    """The checks every fault scenario ends with."""
    after_last, events = await committed_data_offsets(engines)
    mine = [e for e in events if e.model in set(models)]
    closing = Counter(e.command_id for e in mine if e.closes_decision)
    assert not [c for c in accepted if closing[c] != 1], (
        f"accepted commands without exactly one outcome: "
        f"{[(str(c), closing[c]) for c in accepted if closing[c] != 1][:10]}")
    assert not [c for c, n in closing.items() if n > 1], "a command decided twice"
    by_model = defaultdict(list)
    for event in mine:
        by_model[event.model].append(event)
    for model, chain in by_model.items():
        chain.sort(key=lambda e: e.seq)
        assert [e.seq for e in chain] == list(range(1, len(chain) + 1)), f"{model}: seq gap or repeat"
        assert first_broken_link(chain) is None, f"{model}: broken chain"
        versions = [e.payload.version for e in chain if e.type == "VersionRegistered"]
        assert versions == list(range(1, len(versions) + 1)), f"{model}: versions {versions}"

    await assert_read_side_equals_the_log(engines, after_last, events)


async def log_events_of(engines, models: list[str]) -> list:
    keys = {m.encode() for m in models}
    return [decode_event(r.value) for r in await read_committed(engines, EVENTS_TOPIC) if r.key in keys]


async def wait_for(writes: Writes, predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: {writes.summary()}"
        await asyncio.sleep(0.1)


async def outage_mid_burst(writes: Writes, engine: str, accepted_before: int, down_s: float,
                           accepted_after: int) -> None:
    """Once `accepted_before` writes were accepted, SIGKILL `engine`, keep it
    down `down_s`, bring it back, and return once `accepted_after` more were
    accepted; `writes.phase` names each stage for the answers recorded in it."""
    await wait_for(writes, lambda: len(writes.accepted()) >= accepted_before, 120, "no burst")
    writes.phase = "down"
    await asyncio.to_thread(kill_engine, engine)
    await asyncio.sleep(down_s)
    writes.phase = "restarting"
    await asyncio.to_thread(restart_engines)
    writes.phase = "after"
    after = len(writes.accepted())
    await wait_for(writes, lambda: len(writes.accepted()) >= after + accepted_after, 240, "no recovery")
