"""What Kafka's authentication and TLS cost modelog's users, side by side:

    uv run python benchmarks/kafka_security_cost.py [WRITES] [UPLOAD_MB] [LOOKUPS]

Runs write_latency.py (WRITES, default 60; UPLOAD_MB, default 8) and
serving_lookups.py (LOOKUPS closed-loop lookups, default 2,000, then 200
lookups/s for 3 s) twice, each on a fresh local stack of its own: once as
every stack runs (SCRAM-SHA-512 over TLS, ACLs), once with
MODELOG_KAFKA_SECURITY_PROTOCOL=PLAINTEXT, the switch that exists for this
"off" run only. Prints both runs' figures and, per figure, on / off.

The stacks use ports of their own (17xxx), so a running stack is left alone.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from modelog_platform import engines, services
from modelog_platform.settings import EngineEndpoints, LocalStack, ServicePorts

HERE = Path(__file__).parent
PORTS = {
    "MODELOG_KAFKA_BOOTSTRAP": "127.0.0.1:17092",
    "MODELOG_KAFKA_CONTROLLER_PORT": "17093",
    "MODELOG_POSTGRES_DSN": "postgresql://127.0.0.1:17432/modelog",
    "MODELOG_S3_ENDPOINT": "127.0.0.1:17333",
    "MODELOG_SEAWEEDFS_MASTER_PORT": "17334",
    "MODELOG_SEAWEEDFS_VOLUME_PORT": "17335",
    "MODELOG_SEAWEEDFS_FILER_PORT": "17336",
    "MODELOG_SEAWEEDFS_MASTER_GRPC_PORT": "17337",
    "MODELOG_SEAWEEDFS_VOLUME_GRPC_PORT": "17338",
    "MODELOG_SEAWEEDFS_FILER_GRPC_PORT": "17339",
    "MODELOG_SEAWEEDFS_S3_GRPC_PORT": "17340",
    "MODELOG_REGISTRAR_PORT": "17000",
    "MODELOG_PROMOTER_PORT": "17001",
    "MODELOG_PROJECTOR_PORT": "17002",
    "MODELOG_AUDITOR_PORT": "17003",
}
# A figure in a benchmark's output: "p99   12.3 ms", "1234 lookups/s".
# An offered rate is an input, not a figure.
FIGURE = re.compile(r"(p50|p90|p99(?:\.9)?)\s+([\d.]+)\s*ms|(?<!offered )\b([\d,.]+)\s+(lookups/s|MB/s)")


def run_on_a_fresh_stack(protocol: str, benchmarks: list[list[str]]) -> str:
    home = Path(tempfile.mkdtemp(prefix=f"modelog-kafka-{protocol.lower()}-"))
    os.environ.update(PORTS, MODELOG_HOME=str(home / "home"), MODELOG_KAFKA_SECURITY_PROTOCOL=protocol)
    stack = LocalStack()
    try:
        engines.up(EngineEndpoints(), stack, report=lambda _: None)
        services.up(stack, ServicePorts(), report=lambda _: None)
        return "".join(subprocess.run([sys.executable, str(HERE / script), *args], env=os.environ, text=True,
                                      capture_output=True, check=True).stdout for script, *args in benchmarks)
    finally:
        services.down(stack, report=lambda _: None)
        engines.down(stack, report=lambda _: None)
        shutil.rmtree(home, ignore_errors=True)


def figures(output: str) -> list[tuple[str, str, float]]:
    """(line's label, figure's name, value) for every figure in the output."""
    found = []
    for line in output.splitlines():
        label = re.split(r"\s{2,}|\s+n=|:", line.strip(), maxsplit=1)[0]
        for match in FIGURE.finditer(line):
            if match.group(1):
                found.append((label, match.group(1), float(match.group(2))))
            else:
                found.append((label, match.group(4), float(match.group(3).replace(",", ""))))
    return found


def main(writes: int, upload_mb: int, lookups: int) -> None:
    benchmarks = [["write_latency.py", str(writes), str(upload_mb)],
                  ["serving_lookups.py", str(lookups), "20", "200", "3", "1"]]
    outputs = {protocol: run_on_a_fresh_stack(protocol, benchmarks) for protocol in ("SASL_SSL", "PLAINTEXT")}
    for protocol, output in outputs.items():
        print(f"--- Kafka {protocol} ---\n{output}")
    print("--- on (SASL_SSL) / off (PLAINTEXT) ---")
    for (label, name, on), (_, _, off) in zip(figures(outputs["SASL_SSL"]), figures(outputs["PLAINTEXT"]), strict=True):
        print(f"{label[:40]:<40} {name:<10} on {on:10.1f}  off {off:10.1f}  ratio {on / off if off else float('nan'):5.2f}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args + [60, 8, 2000][len(args):]))
