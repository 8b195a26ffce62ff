"""What decide + evolve cost per event as one model's history grows.

    uv run python benchmarks/decide_evolve_cost.py [EVENTS] [--baseline REF] [--baseline-events N]
    # defaults: 1000000 events, baseline 68b8923 measured up to 10000 events

One model lives through a realistic history, decided and folded with the real
decider: every round registers a version (with params, metrics and tags),
reports a metric, tags the version and sometimes the model, moves it to
Staging, requests Production, which its registrant tries to approve (refused:
four eyes) and a reviewer approves (the previous Production version archived
in the same decision), and moves the champion alias to it.

When the history reaches 1k, 10k, 100k and 1M events (those up to EVENTS), the
next SAMPLE commands are timed one by one: decide, then evolve of each of its
events. It prints the cost per event (p50 over the commands, and the mean)
and its ratio to the cost at 1k events. The times are this process's CPU
time, so the rest of a shared machine's load counts less than in wall time.

The same measurement runs on the contract as it was at the baseline ref (a
`git archive` of its shared/contract in a temporary directory, imported in a
subprocess through PYTHONPATH), in the same run; only up to
--baseline-events, since that code copies the whole history on every event
and its cost grows with it (quadratic in total). The machine is shared: the
load average is printed, and the figures are noisy.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timedelta, timezone
from hashlib import sha256
from io import BytesIO
from pathlib import Path
from uuid import uuid4

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = (1_000, 10_000, 100_000, 1_000_000)
SAMPLE = 300  # commands timed at each checkpoint (about 500 events)
MODEL = "bench-long-lived"
T0 = datetime(2026, 11, 2, 9, tzinfo=timezone.utc)


def measure(events: int) -> dict[int, dict[str, float]]:
    """Per-event decide+evolve cost in µs at each checkpoint up to `events`."""
    from modelog_contract.domain import ModelState, decide, evolve
    from modelog_contract.domain.commands import (
        ApproveTransition,
        RegisterVersion,
        ReportMetrics,
        RequestTransition,
        SetAlias,
        SetTag,
    )
    from modelog_contract.domain.types import Actor, Artifact

    pipeline = Actor(subject="bench-pipeline", roles=("publisher", "approver"))
    reviewer = Actor(subject="bench-reviewer", roles=("approver",))
    state = ModelState(name=MODEL)
    clock = iter(T0 + timedelta(milliseconds=100 * i) for i in range(10 * events + 10 * SAMPLE))
    checkpoints = [n for n in CHECKPOINTS if n <= events]
    timing: list[float] | None = None  # per-event µs of the commands timed at the current checkpoint
    results: dict[int, dict[str, float]] = {}
    totals = [0, 0]  # ns and events timed at the current checkpoint

    def when(kind, actor=pipeline, **fields) -> list:
        nonlocal state, timing
        command = kind(command_id=uuid4(), model=MODEL, actor=actor, issued_at=next(clock), **fields)
        start = time.process_time_ns()
        decided = decide(state, command)
        for event in decided:
            state = evolve(state, event)
        took = time.process_time_ns() - start
        if timing is not None and decided:
            timing.append(took / 1000 / len(decided))
            totals[0] += took
            totals[1] += len(decided)
            if len(timing) == SAMPLE:
                results[checkpoints.pop(0)] = {"p50": statistics.median(timing), "mean": totals[0] / totals[1] / 1000}
                timing = None
        if timing is None and checkpoints and state.seq >= checkpoints[0]:
            timing, totals[:] = [], [0, 0]
        return decided

    n = 0
    while checkpoints:
        n += 1
        digest = sha256(f"{MODEL}/{n}".encode()).hexdigest()
        artifact = Artifact(uri=f"s3://modelog-artifacts/sha256/{digest}", sha256=digest, size=n * 1000)
        when(RegisterVersion, artifact=artifact, run_id=f"run-{n}", params={"lr": "0.01", "depth": str(n % 12)},
             metrics={"auc": 0.8 + n / 10_000_000, "loss": 0.3}, tags={"team": "risk", "framework": "sklearn"})
        when(ReportMetrics, version=n, metrics={"auc_holdout": 0.79})
        when(SetTag, version=n, key="validated", value="yes")
        if n % 10 == 0:
            when(SetTag, key="owner", value=f"team-{n % 7}")  # the model's own tags: a few keys, changed now and then
        when(RequestTransition, version=n, to_stage="Staging")
        [requested] = when(RequestTransition, version=n, to_stage="Production")
        request_id = requested.payload.request_id
        when(ApproveTransition, request_id=request_id)  # the registrant: refused, four eyes
        when(ApproveTransition, actor=reviewer, request_id=request_id)
        when(SetAlias, alias="champion", version=n)
    return results


def baseline(ref: str, events: int) -> dict[int, dict[str, float]]:
    """`measure` run on the contract as it was at `ref`, in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "shared/contract"],
                                 check=True, capture_output=True).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        contract = Path(tmp) / "shared" / "contract"
        env = {**os.environ, "PYTHONPATH": str(contract)}
        out = subprocess.run([sys.executable, __file__, str(events), "--measure-only", "--expect-contract",
                              str(contract)], env=env, check=True, capture_output=True, text=True).stdout
    return {int(k): v for k, v in json.loads(out).items()}


def table(title: str, results: dict[int, dict[str, float]], events: int) -> None:
    print(title)
    first = results.get(CHECKPOINTS[0])
    for n in CHECKPOINTS:
        if n > events:
            continue
        if n not in results:
            print(f"  {n:>9,} events: not measured (the old code copies its whole history per event)")
            continue
        r = results[n]
        ratio = f"{r['mean'] / first['mean']:.2f}x" if first else "-"
        print(f"  {n:>9,} events: p50 {r['p50']:8.1f} µs  mean {r['mean']:8.1f} µs  mean vs 1k {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--baseline", default="68b8923", help="the ref whose contract is measured for comparison")
    parser.add_argument("--baseline-events", type=int, default=10_000, help="how far the old code is measured")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--expect-contract", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_only:
        import modelog_contract
        if args.expect_contract and not Path(modelog_contract.__file__).is_relative_to(args.expect_contract):
            sys.exit(f"measuring {modelog_contract.__file__}, not the baseline in {args.expect_contract}")
        print(json.dumps(measure(args.events)))
        return
    print(f"decide + evolve per event, one model; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    old = baseline(args.baseline, min(args.events, args.baseline_events))
    table(f"before ({args.baseline}):", old, args.events)
    new = measure(args.events)
    table("now:", new, args.events)
    for n in sorted(old.keys() & new.keys()):
        print(f"  at {n:,} events: {old[n]['mean'] / new[n]['mean']:.1f}x faster now (mean)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
