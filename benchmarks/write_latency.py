"""Write latency through the whole pipeline, against a running stack (`make up`):

    uv run python benchmarks/write_latency.py [WRITES] [UPLOAD_MB]

Each write goes registrar -> Kafka -> promoter -> Kafka -> projector and is
answered once the projector has committed its outcome (read-your-writes), as
a client sees it. Measured one at a time, so the figures are latencies, not
queueing:
- a metadata-only command (a tag on a model), WRITES times (default 300);
- a registration with a small upload, WRITES / 3 times;
- transitions of fresh versions, None -> Staging and Staging -> Archived;
- upload throughput: one UPLOAD_MB (default 256) artifact, MB/s end to end.
Prints p50/p90/p99 in ms, and the ratio of p99 to the 100 ms target.
"""

import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid4

from modelog.client import Client
from modelog_platform.identity.dev import dev_token

TARGET_P99_MS = 100.0


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100)
    return {"p50": statistics.median(samples), "p90": cuts[89], "p99": cuts[98]}


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def report(what: str, samples: list[float]) -> None:
    p = percentiles(samples)
    print(f"{what:<34} n={len(samples):<5} p50 {p['p50']:6.1f} ms  p90 {p['p90']:6.1f} ms  "
          f"p99 {p['p99']:6.1f} ms  (p99 / target {p['p99'] / TARGET_P99_MS:.2f})")


def main(writes: int, upload_mb: int) -> None:
    client = Client(token=dev_token("benchmark", "publisher", "operator"))
    # The machine's load colours every figure: printed with them.
    print(f"load average {os.getloadavg()[0]:.1f}")
    workdir = Path(tempfile.mkdtemp(prefix="modelog-bench-"))
    model = f"write-bench-{uuid4().hex[:6]}"
    small = workdir / "small.bin"
    small.write_bytes(os.urandom(64 * 1024))
    client.register_version(model, small)  # creates the model; not measured

    for _ in range(10):  # warm connections and code paths
        client.set_tag(model, "warmup", uuid4().hex)

    report("metadata command (SetTag)", [timed(lambda: client.set_tag(model, "k", uuid4().hex))
                                         for _ in range(writes)])

    registrations = []
    for _ in range(max(writes // 3, 10)):
        small.write_bytes(os.urandom(64 * 1024))
        registrations.append(timed(lambda: client.register_version(model, small)))
    report("registration, 64 KiB upload", registrations)

    transitions = []
    for _ in range(max(writes // 6, 10)):
        small.write_bytes(os.urandom(1024))
        version = client.register_version(model, small)["version"]  # not measured
        for stage in ("Staging", "Archived"):
            transitions.append(timed(functools.partial(client.request_transition, model, version, stage)))
    report("transition (RequestTransition)", transitions)

    big = workdir / "big.bin"
    with big.open("wb") as out:
        for _ in range(upload_mb):
            out.write(os.urandom(1024 * 1024))
    seconds = timed(lambda: client.register_version(model, big)) / 1000
    print(f"{'upload, hashed and stored':<34} {upload_mb} MB in {seconds:.2f} s = {upload_mb / seconds:.1f} MB/s")
    client.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300, int(sys.argv[2]) if len(sys.argv) > 2 else 256)
