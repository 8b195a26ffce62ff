"""The serving process of the serving story (test_serving_story.py): what a
team writes with the public SDK, run as a process of its own.

Two watchers of one model under one request loop: online requests are routed
by a `SplitWatcher` (a stable hash of the customer's key, so a canary gets its
share), batch requests are scored on what a `ModelWatcher` keeps in
Production. Both report what they serve. Every half second the process's
monitoring publishes each version's requests and errors to `modelog.signals`
as the `publisher` Kafka principal (docs/serving.md, "Who publishes them"),
which is what the sentinel judges.

Two counts must not be confused. An *error* is a bad answer from a model (a
version whose artifact says it fails a share of its requests): the signals
carry it, the sentinel acts on it. A *failure* is the loop failing to answer
at all (no model to hand, or a model object that is not the version the
watcher named): that is what a swap must never cause, and the test asserts
none happened.

It says what happens as JSON lines on stdout (`ready`, `watcher` events,
`status` twice a second, `final`), and stops when its stdin closes. Run as
`python -m tests.e2e.serving_story_process MODEL`; the URLs, the token
(MODELOG_TOKEN, the `server` role) and the Kafka principal come from the
environment.
"""

import asyncio
import json
import random
import sys
import threading
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from modelog import ModelWatcher, SplitWatcher, WatcherEvent
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.settings import SIGNALS_TOPIC, EngineEndpoints

TICK_S = 0.02
ONLINE_PER_TICK = 4    # about 200 routed requests a second: a 10% canary sees ~20 a second
PUBLISH_EVERY_TICKS = 25  # one aggregate signal per version each half second
_printing = threading.Lock()


def say(kind: str, **fields: Any) -> None:
    with _printing:
        print(json.dumps({"kind": kind, **fields}), flush=True)


def load(path: Path) -> dict:
    """A story model is a JSON document naming its version and the share of answers it gets wrong."""
    return json.loads(path.read_text())


def telling(watcher: str):
    def on_event(event: WatcherEvent) -> None:
        say("watcher", watcher=watcher, event=event.kind, version=event.version, detail=event.detail)
    return on_event


def held(watcher: ModelWatcher) -> tuple[int, Any]:
    """What a request on the Production watcher takes: one version and its model, together."""
    served = watcher.served
    return served.version, served.model


class Loop:
    """The request loop's figures: per version and path, requests and errors; and failures."""

    def __init__(self) -> None:
        self.rng = random.Random(15)
        self.requests: dict[str, Counter[int]] = {"online": Counter(), "batch": Counter()}
        self.errors: Counter[int] = Counter()
        self.span: dict[int, list[int]] = {}  # version -> [requests, errors] since the last signal
        self.failures: list[str] = []

    def answer(self, path: str, version: int, model: Any) -> None:
        """One request on `model`, which the watcher named `version`."""
        if not isinstance(model, dict) or model.get("version") != version:
            raise RuntimeError(f"{path}: the watcher named v{version} but handed out {model!r}")
        wrong = self.rng.random() < model["error_share"]
        self.requests[path][version] += 1
        self.errors[version] += wrong
        figures = self.span.setdefault(version, [0, 0])
        figures[0] += 1
        figures[1] += wrong

    def tick(self, online: SplitWatcher, batch: ModelWatcher, customer: int) -> None:
        for n in range(ONLINE_PER_TICK):
            self.serve("online", lambda key=f"customer-{customer + n}": online.route(key))
        self.serve("batch", lambda: held(batch))

    def serve(self, path: str, pick: Any) -> None:
        try:
            version, model = pick()
            self.answer(path, version, model)
        except Exception as failure:  # the loop's own failure: it could not answer
            self.failures.append(f"{path}: {failure!r}")

    def figures(self) -> dict:
        return {"online": dict(self.requests["online"]), "batch": dict(self.requests["batch"]),
                "errors": dict(self.errors), "failures": len(self.failures), "failure_samples": self.failures[:5]}


async def publish_span(producer: AIOKafkaProducer, model: str, instance: str, loop: Loop) -> None:
    span, loop.span = loop.span, {}
    now = datetime.now(timezone.utc).isoformat()
    for version, (requests, errors) in span.items():
        signal = {"model": model, "version": version, "instance": instance, "time": now,
                  "requests": requests, "errors": errors}
        await producer.send(SIGNALS_TOPIC, json.dumps(signal).encode(), key=model.encode())


async def serve(model: str, online: SplitWatcher, batch: ModelWatcher, stop: threading.Event) -> Loop:
    loop = Loop()
    producer = AIOKafkaProducer(**kafka_connection(EngineEndpoints()), linger_ms=5)
    await producer.start()
    try:
        ticks = 0
        while not stop.is_set():
            loop.tick(online, batch, customer=ticks * ONLINE_PER_TICK)
            ticks += 1
            if ticks % PUBLISH_EVERY_TICKS == 0:
                await publish_span(producer, model, online.instance, loop)
                say("status", split={str(v): w for v, w in online.weights.items()}, production=batch.version,
                    **loop.figures())
            await asyncio.sleep(TICK_S)
        await publish_span(producer, model, online.instance, loop)
    finally:
        await producer.stop()
    return loop


def main(model: str) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    online = SplitWatcher(model, load, on_event=telling("online"), instance=f"{model}-online")
    batch = ModelWatcher(model, load, stage="Production", on_event=telling("batch"), instance=f"{model}-batch")
    with online, batch:
        if not (batch.wait_for(timeout_s=60) and online.wait_for(timeout_s=60)):
            say("final", error="no version served within 60 s")
            return
        say("ready", split={str(v): w for v, w in online.weights.items()}, production=batch.version)
        loop = asyncio.run(serve(model, online, batch, stop))
    say("final", **loop.figures())


if __name__ == "__main__":
    main(sys.argv[1])
