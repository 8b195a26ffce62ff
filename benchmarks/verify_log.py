"""How fast `modelog audit verify` checks a log: events/s over N events.

The log is made in memory, not read from Kafka (publishing a million events
through the promoter takes too long on a small machine): one model's history
is decided through the real decider (CreateModel, then SetTag commands), and
each of M models gets a copy of it under its own name, re-chained by the
domain's link_hash and encoded as JSON, as the promoter stores events.
Then the verify core runs over the raw records: once the chain checks alone,
once with a seal of every head (signature, Merkle root, each head found in
the log). Kafka's read time is not in these figures.

    uv run python benchmarks/verify_log.py [EVENTS] [MODELS]    # default 1000000 1000
"""

import json
import sys
import time
from datetime import datetime, timedelta, timezone
from uuid import uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_contract.audit.seals import Head, make_seal
from modelog_contract.audit.verify import StoredRecord, verify
from modelog_contract.codec import encode
from modelog_contract.domain import ModelState, decide, evolve
from modelog_contract.domain.chain import GENESIS_HASH, link_hash
from modelog_contract.domain.commands import CreateModel, SetTag
from modelog_contract.domain.types import Actor

ACTOR = Actor(subject="bench", roles=("admin",))
T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)


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


def main(total: int = 1_000_000, models: int = 1000) -> None:
    started = time.perf_counter()
    template = [json.loads(v) for v in model_log("template", total // models)]
    records, heads, offset = [], [], 0
    for m in range(models):
        prev = GENESIS_HASH
        for fields in template:
            fields = {**fields, "model": f"model-{m:05d}", "prev_hash": prev}
            fields["hash"] = prev = link_hash(prev, fields)
            records.append(StoredRecord(m % 12, offset, json.dumps(fields).encode()))
            offset += 1
        heads.append(Head(model=fields["model"], seq=fields["seq"], hash=fields["hash"]))
    made = time.perf_counter() - started
    print(f"made {len(records):,} events of {models:,} models in {made:.1f}s "
          f"(decide + re-chain)")

    started = time.perf_counter()
    verdict = verify(records)
    chains = time.perf_counter() - started
    assert verdict.intact, verdict.breaks[:3]
    print(f"verify, chains only: {chains:.1f}s, {len(records) / chains:,.0f} events/s")

    key = Ed25519PrivateKey.generate()
    seal = make_seal(heads, None, key, datetime.now(timezone.utc))
    started = time.perf_counter()
    verdict = verify(records, [seal], key.public_key())
    sealed = time.perf_counter() - started
    assert verdict.intact and verdict.seals == 1, (verdict.breaks[:3], verdict.seal_breaks[:3])
    print(f"verify, chains + 1 seal of {len(seal.heads):,} heads: {sealed:.1f}s, "
          f"{len(records) / sealed:,.0f} events/s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
