"""The sentinel's book across restarts, against the real stack (decision
0015): a restarted sentinel goes on from the book it wrote and folds only
the log after it, knowing what a fold of the whole log knows; a book whose
bytes changed, that another log's position names, or whose model head the
log does not follow is refused, said so in the sentinel's log, and the whole
log folded instead."""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from modelog_platform import services
from modelog_platform.adapters.log_reader import committed_records_now
from modelog_platform.settings import EVENTS_TOPIC, LocalStack, ServicePorts
from tests.e2e.sentinel_helpers import canary_on, sentinel_status

pytestmark = pytest.mark.engines


def book_of(stack) -> Path:
    return LocalStack().home / "sentinel" / "book"


def restarted(stack, before_start: Callable[[], None] = lambda: None) -> tuple[dict, str]:
    """The sentinel stopped, `before_start` run, started again and ready: its
    status, and what it logged since the stop."""
    local = LocalStack()
    log = local.home / "logs" / "sentinel.log"
    services.stop("sentinel", local)
    logged = log.stat().st_size
    before_start()
    services.start("sentinel", local)
    services.wait_ready("sentinel", local, ServicePorts(), timeout_s=300)
    with log.open("rb") as out:
        out.seek(logged)
        return sentinel_status(stack), out.read().decode(errors="replace")


def knows(stack, model: str) -> bool:
    return httpx.get(f"{stack.url('sentinel')}/v1/windows", params={"model": model}, timeout=10).status_code == 200


async def records_in_the_log(endpoints) -> int:
    return len([r async for r in committed_records_now(endpoints, EVENTS_TOPIC)])


def resealed(data: bytes, meta_change: Callable[[dict], None] = lambda meta: None,
             line_change: Callable[[list[bytes]], None] = lambda lines: None) -> bytes:
    """A book changed, its sha256 made right again: only the check under test can refuse it."""
    header, body = data.split(b"\n", 1)
    lines = body.split(b"\n")
    meta = json.loads(lines[0])
    meta_change(meta)
    line_change(lines)
    body = b"\n".join([json.dumps(meta).encode(), *lines[1:]])
    return json.dumps(json.loads(header) | {"sha256": hashlib.sha256(body).hexdigest()}).encode() + b"\n" + body


def test_a_restarted_sentinel_folds_only_the_log_after_its_book(stack, client, admin_client, operator, tmp_path):
    assert book_of(stack).exists(), "the running sentinel wrote its book once it had folded the log"
    canary_on(client, admin_client, operator, tmp_path)
    restarted(stack)  # its book now holds that model's events
    names = []
    # Events after the book: a new model the restarted sentinel must know.
    status, logged = restarted(stack, lambda: names.append(canary_on(client, admin_client, operator, tmp_path)))
    assert status["started_from"].startswith("its book"), logged
    assert knows(stack, names[0])
    whole, _ = restarted(stack, book_of(stack).unlink)
    assert whole["started_from"] == "the whole log"
    assert status["events_folded"] == whole["events_folded"]
    assert whole["folded_at_start"] == whole["events_folded"]
    assert 0 < status["folded_at_start"] < whole["folded_at_start"], "the restart folded the events after its book alone"
    assert status["models"] == whole["models"]
    assert knows(stack, names[0])


def flipped(data: bytes) -> bytes:
    changed = bytearray(data)
    changed[len(data) // 2] ^= 0x20
    return bytes(changed)


def another_logs_position(data: bytes) -> bytes:
    def change(meta: dict) -> None:
        partition = next(iter(meta["last_events"]))
        meta["last_events"][partition][1] = "0" * 64
    return resealed(data, meta_change=change)


def a_head_the_log_does_not_follow(model: str) -> Callable[[bytes], bytes]:
    def change(lines: list[bytes]) -> None:
        at = next(i for i, line in enumerate(lines) if line.startswith(json.dumps(model).encode() + b"\t"))
        name, productions, since, state = lines[at].split(b"\t", 3)
        fields = json.loads(state) | {"head_hash": "0" * 64}
        lines[at] = b"\t".join((name, productions, since, json.dumps(fields, separators=(",", ":")).encode()))
    return lambda data: resealed(data, line_change=change)


@pytest.mark.parametrize("planted, why", [
    ("a changed byte", "its body does not match its sha256"),
    ("another log's position", "is not the last event it folded"),
    ("a head the log does not follow", "is not the log's"),
])
async def test_a_book_that_is_not_the_logs_is_refused_and_the_whole_log_folded(
        stack, engines, client, admin_client, operator, tmp_path, planted, why):
    model = canary_on(client, admin_client, operator, tmp_path)
    restarted(stack)  # its book now holds the model
    plant = {"a changed byte": flipped, "another log's position": another_logs_position,
             "a head the log does not follow": a_head_the_log_does_not_follow(model)}[planted]

    def plant_it() -> None:
        book_of(stack).write_bytes(plant(book_of(stack).read_bytes()))
        client.set_tag(model, "after-the-book", "1")  # the model's first event since the book
    status, logged = restarted(stack, plant_it)
    assert why in logged
    assert status["started_from"] == "the whole log"
    assert status["events_folded"] + status["unproven_events"] == await records_in_the_log(engines)
    assert knows(stack, model)
