"""Where a write's time goes, against a running stack (`make up`):

    uv run python benchmarks/write_stages.py [WRITES]

Sets a tag WRITES times (default 200), one at a time, through the SDK, while
three consumers watch the log: modelog.commands, and modelog.events both
uncommitted and committed. Each write is split at what they see:

- send -> command appended: the registrar's work and its produce (the
  commands topic stamps the broker's append time);
- command appended -> seen: a consumer's fetch, as the promoter's would be;
- event created -> seen uncommitted: the promoter's produce inside its
  transaction (the event's time is stamped when the promoter sends it);
- seen uncommitted -> seen committed: the transaction's commit and markers;
- seen committed -> answered: the projector's fetch and commit, its wake-up,
  the outcome read and the registrar's answer.

The watchers' own fetches add to the stages they end; compare runs of this
script with each other, not with other scripts. Prints p50/mean/max in ms.
"""

import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from uuid import UUID, uuid4

from aiokafka import AIOKafkaConsumer
from log_end import consumer_at_end

from modelog.client import Client
from modelog_contract.codec import decode_command, decode_event
from modelog_platform.identity.dev import dev_token
from modelog_platform.settings import COMMANDS_TOPIC, EVENTS_TOPIC, EngineEndpoints

STAGES = {
    "send -> command appended": ("sent", "command_ts"),
    "command appended -> seen": ("command_ts", "command"),
    "event created -> seen uncommitted": ("event_ts", "event"),
    "seen uncommitted -> committed": ("event", "committed"),
    "committed -> answered": ("committed", "answered"),
    "total": ("sent", "answered"),
}


class Watchers:
    """Three consumers at the log's end, on a loop in a thread of their own:
    when each first saw each command id (and the record's own timestamp)."""

    def __init__(self):
        self.seen: dict[UUID, dict[str, float]] = {}
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._run(),), daemon=True)

    def __enter__(self) -> "Watchers":
        self.thread.start()
        self.ready.wait(60)
        return self

    def __exit__(self, *_) -> None:
        time.sleep(0.5)  # the last write's records
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)

    async def _run(self) -> None:
        watchers = [(COMMANDS_TOPIC, "read_uncommitted", "command"), (EVENTS_TOPIC, "read_uncommitted", "event"),
                    (EVENTS_TOPIC, "read_committed", "committed")]
        endpoints = EngineEndpoints()
        started = [(await consumer_at_end(endpoints, topic, isolation, fetch_max_wait_ms=5), topic, label)
                   for topic, isolation, label in watchers]
        self.ready.set()
        await asyncio.gather(*(self._follow(consumer, topic, label) for consumer, topic, label in started))

    async def _follow(self, consumer: AIOKafkaConsumer, topic: str, label: str) -> None:
        decode = decode_command if topic == COMMANDS_TOPIC else decode_event
        try:
            while not self.stop.is_set():
                for batch in (await consumer.getmany(timeout_ms=50)).values():
                    now = time.time()
                    for record in batch:
                        try:
                            command_id = decode(record.value).command_id
                        except ValueError:
                            continue
                        seen = self.seen.setdefault(command_id, {})
                        seen.setdefault(label, now)
                        seen.setdefault(f"{label}_ts", record.timestamp / 1000)
        finally:
            await consumer.stop()


def main(writes: int) -> None:
    client = Client(token=dev_token("benchmark", "publisher", "operator"))
    print(f"load average {os.getloadavg()[0]:.1f}")
    model = f"write-stages-{uuid4().hex[:6]}"
    artifact = Path(tempfile.mkdtemp(prefix="modelog-bench-")) / "model.bin"
    artifact.write_bytes(os.urandom(1024))
    client.register_version(model, artifact)
    with Watchers() as watchers:
        for _ in range(10):  # warm connections and code paths
            client.set_tag(model, "warmup", uuid4().hex)
        for _ in range(writes):
            sent = time.time()
            answer = client.set_tag(model, "stage", uuid4().hex)
            watchers.seen.setdefault(UUID(str(answer["command_id"])), {}).update(sent=sent, answered=time.time())
    complete = [s for s in watchers.seen.values() if len(s) == 8]
    print(f"{len(complete)} of {writes} writes seen at every stage")
    for stage, (start, end) in STAGES.items():
        spans = [(s[end] - s[start]) * 1000 for s in complete]
        print(f"{stage:<36} p50 {statistics.median(spans):6.1f}  mean {statistics.mean(spans):6.1f}"
              f"  max {max(spans):6.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
