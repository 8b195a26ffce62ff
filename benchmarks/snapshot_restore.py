"""What reading a partition's snapshot back costs the promoter's restart, and
what its next snapshot costs, as the number of models grows.

    uv run python benchmarks/snapshot_restore.py [MODELS] [--versions N]
    # defaults: 10000 models of 100 versions each (the issue's 1M events over 10,000 models)

One model's state is folded with the real decider (each version registered
with params, metrics and tags, as training code sends them), then copied
under MODELS names into one snapshot, encoded and signed as the promoter
writes it. Then, in the same run:

- restore: `decode` (gzip, sha256, signature, lines), then, as the promoter
  did before states stayed as JSON until first needed, reading every state
  back; and as it does now, reading back only the few models a restart's
  first decisions touch (TOUCHED);
- the first snapshot after the restart: `encode` with an empty cache of
  serialised lines, as a restarted promoter has, for both;
- the memory the restored states hold (tracemalloc), for both;
- the memory once every model was read back and then left idle for a
  snapshot interval: before, states read back stayed so; now they go back to
  the JSON the snapshot wrote.

Times are this process's CPU time; the load average is printed, the machine
may be shared.
"""

import argparse
import dataclasses
import os
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timezone
from hashlib import sha256
from typing import Any
from uuid import uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_contract.domain import ModelState, decide, evolve
from modelog_contract.domain.commands import RegisterVersion
from modelog_contract.domain.types import Actor, Artifact
from modelog_contract.signing import TrustedKey, TrustedKeys
from promoter.model_states import ModelStates
from promoter.snapshots import Cut, SerialisedStates, decode, encode

TOUCHED = 50  # models a restart's first decisions read back
ACTOR = Actor(subject="bench", roles=("ci",))
T0 = datetime(2026, 11, 2, 9, tzinfo=timezone.utc)


def model_with(versions: int) -> ModelState:
    state = ModelState(name="bench-model")
    for n in range(versions):
        digest = sha256(f"{n}".encode()).hexdigest()
        command = RegisterVersion(
            command_id=uuid4(), model=state.name, actor=ACTOR, issued_at=T0,
            artifact=Artifact(uri=f"s3://modelog-artifacts/sha256/{digest}", sha256=digest, size=4096),
            run_id=uuid4().hex, params={"lr": "0.01", "depth": str(n % 9)},
            metrics={"auc": 0.9, "loss": 0.1}, tags={"team": "fraud"})
        for event in decide(state, command):
            state = evolve(state, event)
    return state


def cpu(work: Callable[[], Any]) -> float:
    """CPU seconds of `work`, whose result is dropped at once: a restore left
    alive would weigh on the next measurement's memory."""
    started = time.process_time()
    work()
    return time.process_time() - started


def held(work: Callable[[], Any]) -> tuple[int, Any]:
    tracemalloc.start()
    result = work()
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return size, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="?", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=100)
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    trusted = TrustedKeys([TrustedKey(key.public_key())])
    print(f"load average {os.getloadavg()[0]:.1f}; {args.models} models of {args.versions} versions")
    one = model_with(args.versions)
    names = [f"bench-{i:06d}" for i in range(args.models)]
    states = ModelStates({name: one.model_copy(update={"name": name}) for name in names})
    cut = Cut(partition=0, events_offset=args.models * args.versions, command_offset=args.models * args.versions,
              last_event=(args.models * args.versions - 1, one.head_hash), states=states,
              head_offsets={name: i for i, name in enumerate(names)}, spent_tokens=(), written_at=T0)
    data = encode(cut, key)
    print(f"snapshot: {len(data) / 1e6:.1f} MB gzip")

    touched = names[:: max(1, len(names) // TOUCHED)][:TOUCHED]

    def restore(read_back: list[str]) -> Cut:
        restored = decode(data, trusted)
        for name in read_back:
            restored.states[name]
        return restored

    def kept_and_written(read_back: list[str]) -> tuple[int, float]:
        """Bytes the restored states hold, and the CPU of the first snapshot after it."""
        size, restored = held(lambda: restore(read_back))
        return size, cpu(lambda: encode(restored, key, SerialisedStates()))

    def idle_an_interval() -> Cut:
        """Every state read back (a promoter that decided for every model), then
        two snapshots with none of them touched in between."""
        restored, cache = restore(names), SerialisedStates()
        for _ in range(2):
            cut = dataclasses.replace(restored, states=restored.states.copy())
            encode(cut, key, cache)
        restored.states.keep_as_json({name: cache.states[name] for name in cache.idle}, cut.states.decoded)
        return restored

    few_s = cpu(lambda: restore(touched))
    every_s = cpu(lambda: restore(names))
    few_mb, write_few_s = kept_and_written(touched)
    every_mb, write_every_s = kept_and_written(names)
    idle_mb, _ = held(idle_an_interval)
    rows = [("restore: read the snapshot back", every_s, few_s, "s"),
            ("first snapshot after it", write_every_s, write_few_s, "s"),
            ("memory the states hold", every_mb / 1e6, few_mb / 1e6, "MB"),
            # Before, a state once read back stayed so; now it goes back to JSON when idle.
            ("memory, all read back then idle", every_mb / 1e6, idle_mb / 1e6, "MB")]
    print(f"{'':34} {'every state read back':>22} {f'{len(touched)} read back':>14}  ratio")
    for label, before, now, unit in rows:
        print(f"{label:34} {before:>20.2f} {unit:2} {now:>11.2f} {unit:2} {now / before:6.3f}x")


if __name__ == "__main__":
    main()
