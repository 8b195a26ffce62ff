"""Promotion -> every ModelWatcher swapped, against a running stack: how soon
after a version reaches Production the serving processes serve it.

    uv run python benchmarks/watcher_swap.py [WATCHERS] [PROMOTIONS]

Registers a model with PROMOTIONS (default 10) versions of 64 KiB each, starts
WATCHERS (default 20) ModelWatchers on its Production stage (each with its
own threads, feed connection and cache, as 20 serving processes would have),
then promotes the versions one at a time as a person does: a request to
Staging and one to Production by a publisher, then a reviewer's approval,
which is the decision that moves the version. For each watcher and each
promotion, the swap delay runs from the moment the approval was sent (so it
includes the decision itself) to the moment that watcher swapped the version
in (downloaded, digest-checked, loaded); a second figure runs from the moment
the approval's answer came back (the decision committed and projected; a
watcher that swapped before that answer reached the reviewer counts below 0).
Prints p50/p99/max of both. The issue's goal: p99 < 1 s.
"""

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from uuid import uuid4

from modelog import Client, ModelWatcher, WatcherEvent
from modelog_platform.identity.dev import dev_token
from modelog_platform.settings import ServicePorts


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Swaps:
    """When each watcher swapped each version in (wall clock, as the promotions are timed)."""

    def __init__(self) -> None:
        self.at: dict[tuple[int, int], float] = {}
        self.failed: list[WatcherEvent] = []
        self.changed = threading.Condition()

    def recorder(self, watcher: int):
        def record(event: WatcherEvent) -> None:
            with self.changed:
                if event.kind == "swapped" and event.version is not None:
                    self.at[(watcher, event.version)] = time.time()
                elif event.kind == "failed":
                    self.failed.append(event)
                self.changed.notify_all()
        return record

    def wait_all(self, watchers: int, version: int, timeout_s: float = 60) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: all((w, version) in self.at for w in range(watchers)), timeout_s):
                raise RuntimeError(f"not every watcher swapped to version {version}: failures {self.failed}")


def main(watchers: int, promotions: int) -> None:
    ports = ServicePorts()
    registrar, projector = ports.url("registrar"), ports.url("projector")
    model, workdir = f"watcher-bench-{uuid4().hex[:6]}", Path(tempfile.mkdtemp())
    with Client(registrar, projector, token=dev_token("watcher-bench-ci", "publisher")) as ci, \
            Client(registrar, projector, token=dev_token("watcher-bench-reviewer", "approver")) as reviewer, \
            Client(registrar, projector, token=dev_token("watcher-bench-admin", "admin")) as admin:
        for n in range(1, promotions + 1):
            (workdir / f"v{n}.bin").write_bytes(os.urandom(64 * 1024))
            ci.register_version(model, workdir / f"v{n}.bin")
        admin.set_policy(model, {"approvals_required": {"Production": 1}})
        swaps = Swaps()
        serving = [ModelWatcher(model, Path.read_bytes, stage="Production", registrar_url=registrar,
                                projector_url=projector, token=dev_token("watcher-bench-serving", "reader"),
                                on_event=swaps.recorder(w)).start() for w in range(watchers)]
        try:
            deadline = time.monotonic() + 60
            while not all(w.feed_connected for w in serving):  # every feed open before the first promotion
                if time.monotonic() > deadline:
                    raise RuntimeError("the watchers' change feeds did not open")
                time.sleep(0.1)
            from_sent, from_answered = [], []
            for version in range(1, promotions + 1):
                ci.request_transition(model, version, "Staging")
                request = ci.request_transition(model, version, "Production")["request_id"]
                sent = time.time()
                reviewer.approve(model, request)
                answered = time.time()
                swaps.wait_all(watchers, version)
                for w in range(watchers):
                    from_sent.append((swaps.at[(w, version)] - sent) * 1000)
                    from_answered.append((swaps.at[(w, version)] - answered) * 1000)
        finally:
            for watcher in serving:
                watcher.stop()
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    for name, samples in (("approval sent -> watcher swapped", from_sent),
                          ("approval answered -> watcher swapped", from_answered)):
        print(f"{name}: p50 {statistics.median(samples):.1f} ms, p99 {quantile(samples, 0.99):.1f} ms, "
              f"max {max(samples):.1f} ms ({watchers} watchers x {promotions} promotions, load average {load})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20, int(sys.argv[2]) if len(sys.argv) > 2 else 10)
