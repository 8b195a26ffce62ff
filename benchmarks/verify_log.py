"""How fast `modelog audit verify` checks a log, now and before its proofs checked chain runs (decision 0013).

    uv run python benchmarks/verify_log.py [EVENTS] [MODELS] [--no-kafka] [--before=COMMIT]
    # default 100000 1000, before 0c6bcfb

The log is made in memory: one model's history is decided through the real
decider (CreateModel, then SetTag commands), and each of MODELS models gets a
copy of it under its own name, re-chained by the domain's link_hash and
signed by a writer key made for the run, as the promoter stores events. Then:

- the verify core over those raw records, here with and without worker
  processes, and in a subprocess at the commit before (baseline.py), or at
  --before's;
- unless --no-kafka: the records published, keyed by model, to a fresh topic
  on the stack the MODELOG_* environment points at, and the real command,
  `modelog audit verify --topic ... --no-seals`, run on it now and at the
  commit before: read from Kafka, prove, check, report. Its figure is the
  command's wall time, Python's start included.

Each figure is printed with the load average: the machine may be shared, and
then they are noisy; the before and after of one run share its conditions.
"""

import asyncio
import base64
import json
import os
import pickle
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

from baseline import BEFORE_RUN_PROOFS, env_at, load, python_at
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_contract.audit.verify import StoredRecord, verify
from modelog_contract.codec import encode
from modelog_contract.domain import ModelState, decide, evolve
from modelog_contract.domain.chain import GENESIS_HASH, link_hash
from modelog_contract.domain.commands import CreateModel, SetTag
from modelog_contract.domain.types import Actor
from modelog_contract.signing import TrustedKey, TrustedKeys, key_id, signed_bytes

ACTOR = Actor(subject="bench", roles=("admin",))
T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)

# The verify core at another commit, over the records and key this run made.
CORE = """
import pickle, sys, time
from cryptography.hazmat.primitives import serialization
from modelog_contract.audit.verify import StoredRecord, verify
from modelog_contract.signing import TrustedKey, TrustedKeys
records = [StoredRecord(*r) for r in pickle.load(open(sys.argv[1], "rb"))]
trusted = TrustedKeys([TrustedKey(serialization.load_pem_public_key(open(sys.argv[2], "rb").read()))])
started, used = time.perf_counter(), time.process_time()
verdict = verify(records, trusted=trusted)
assert verdict.intact, verdict.breaks[:3]
print(time.perf_counter() - started, time.process_time() - used)
"""


def model_log(model: str, events: int) -> list[bytes]:
    state, out = ModelState(name=model), []
    for n in range(events):
        at = T0 + timedelta(seconds=n)
        command = (CreateModel(command_id=uuid4(), model=model, actor=ACTOR, issued_at=at) if n == 0 else
                   SetTag(command_id=uuid4(), model=model, actor=ACTOR, issued_at=at, key=f"k{n % 50}",
                          value=f"value {n}"))
        for event in decide(state, command):
            state = evolve(state, event)
            out.append(encode(event))
    return out


def signed_log(total: int, models: int, key: Ed25519PrivateKey) -> list[StoredRecord]:
    template = [json.loads(v) for v in model_log("template", total // models)]
    signer, records, offset = key_id(key.public_key()), [], 0
    for m in range(models):
        prev = GENESIS_HASH
        for fields in template:
            fields = {**fields, "model": f"model-{m:05d}", "prev_hash": prev, "signature": None}
            fields["hash"] = prev = link_hash(prev, fields)
            fields["signature"] = {"key_id": signer,
                                   "value": base64.b64encode(key.sign(signed_bytes(prev))).decode("ascii")}
            records.append(StoredRecord(m % 12, offset, json.dumps(fields).encode()))
            offset += 1
    return records


def cpu() -> float:
    """CPU seconds of this process and of its children that have ended (a
    command's worker processes included): on a shared machine it moves less
    than wall time does."""
    import resource

    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                   resource.getrusage(resource.RUSAGE_CHILDREN)))


def rate(label: str, events: int, seconds: float, cpu_seconds: float) -> float:
    print(f"  {label:<34} {seconds:7.1f} s {events / seconds:>9,.0f} events/s, "
          f"CPU {cpu_seconds / events * 1e6:6.0f} µs/event  ({load()})")
    return events / seconds


def core(records: list[StoredRecord], trusted: TrustedKeys, files: Path, pem: Path, before_commit: str) -> None:
    print(f"verify core over {len(records):,} raw records in memory:")
    pickle.dump([(r.partition, r.offset, r.value) for r in records], (files / "records.pickle").open("wb"))
    seconds, used_there = python_at(before_commit, "-c", CORE, str(files / "records.pickle"),
                                    str(pem)).stdout.split()
    # The subprocess's own CPU, less what it spent starting and loading the records.
    before = rate(f"at {before_commit} (before)", len(records), float(seconds), float(used_there))
    for workers in (0, os.cpu_count() or 1):
        started, used = time.perf_counter(), cpu()
        verdict = verify(records, trusted=trusted, workers=workers)
        assert verdict.intact, verdict.breaks[:3]
        after = rate(f"now, {workers} worker processes", len(records), time.perf_counter() - started,
                     cpu() - used)
    print(f"  -> {after / before:.1f}x")


async def publish(records: list[StoredRecord], topic: str) -> None:
    from topics import publish_to_new_topic

    from modelog_platform.settings import EngineEndpoints

    await publish_to_new_topic(EngineEndpoints(), topic,
                               [(json.loads(r.value)["model"].encode(), r.value) for r in records])


async def drop(topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from modelog_platform.adapters.kafka_connection import kafka_connection
    from modelog_platform.settings import EngineEndpoints

    admin = AIOKafkaAdminClient(**kafka_connection(EngineEndpoints()))
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


def command(records: list[StoredRecord], pem: Path, before_commit: str) -> None:
    import subprocess

    topic = f"bench.verify.{uuid4().hex[:8]}"
    started = time.perf_counter()
    asyncio.run(publish(records, topic))
    print(f"published them to {topic} in {time.perf_counter() - started:.1f} s")
    print("`modelog audit verify --topic ... --no-seals`, reading Kafka, wall time:")
    before = 0.0
    try:
        for label, env in ((f"at {before_commit} (before)", env_at(before_commit)),
                           ("now", dict(os.environ))):
            env["MODELOG_LOG_TRUSTED_KEYS_FILE"] = str(pem)
            started, used = time.perf_counter(), cpu()
            run = subprocess.run([sys.executable, "-m", "modelog", "audit", "verify", "--topic", topic,
                                  "--no-seals"], env=env, capture_output=True, text=True)
            seconds, used = time.perf_counter() - started, cpu() - used
            assert run.returncode == 0 and f"{len(records)} events" in run.stdout, (run.stdout, run.stderr)
            result = rate(label, len(records), seconds, used)
            before = before or result
        print(f"  -> {result / before:.1f}x")
    finally:
        asyncio.run(drop(topic))


def main(total: int = 100_000, models: int = 1000, kafka: bool = True,
         before_commit: str = BEFORE_RUN_PROOFS) -> None:
    key = Ed25519PrivateKey.generate()
    started = time.perf_counter()
    records = signed_log(total, models, key)
    print(f"made {len(records):,} signed events of {models:,} models in {time.perf_counter() - started:.1f}s")
    with tempfile.TemporaryDirectory() as scratch:
        files = Path(scratch)
        pem = files / "writer.pem"
        pem.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
        core(records, TrustedKeys([TrustedKey(key.public_key())]), files, pem, before_commit)
        if kafka:
            command(records, pem, before_commit)


if __name__ == "__main__":
    numbers = [int(a) for a in sys.argv[1:] if not a.startswith("--")]
    before = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--before=")]
    main(*numbers[:2], kafka="--no-kafka" not in sys.argv, before_commit=(before or [BEFORE_RUN_PROOFS])[0])
