"""Rebuild the decider state of command partitions from modelog.events, the
promoter's own output.

The log is the only truth: state is a fold of the committed events (read with
read_committed up to the last stable offset), and the command position to
resume from is the last one those events record. Only events the promoter
signed (a key its trusted bundle holds) are folded: anything else in the log
was not decided here, and is skipped with an error.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from uuid import UUID

from modelog_contract.domain import ModelState, evolve
from modelog_contract.proven import Refused, proven_event
from modelog_platform.adapters.log_reader import Progress, committed_records_now
from modelog_platform.log_signing import trusted_keys
from modelog_platform.settings import EVENTS_TOPIC
from promoter.settings import PromoterSettings

log = logging.getLogger("modelog.promoter")


@dataclass
class Restored:
    states: dict[str, ModelState] = field(default_factory=dict)
    next_command: int = 0  # the first command offset no event records
    # (token id, command id, when decided) of every event whose actor a token proved.
    spent_tokens: list[tuple[str, UUID, datetime]] = field(default_factory=list)


async def restore_partitions(settings: PromoterSettings, partitions: list[int],
                             progress: Progress = lambda done, total: None) -> dict[int, Restored]:
    """Fold each co-partitioned events partition; one consumer reads them all.
    `progress(read, total)` follows the offsets read, for long restores."""
    restored = {p: Restored() for p in partitions}
    trusted = trusted_keys(settings)  # read at each restore: a rotated bundle counts from the next one
    async for record in committed_records_now(settings, EVENTS_TOPIC, partitions, progress):
        into = restored[record.partition]
        event = proven_event(record.value, trusted)
        if isinstance(event, Refused):
            log.error("restore: skipping an event the promoter did not sign: %s",
                      event.describe(record.partition, record.offset))
            continue
        into.states[event.model] = evolve(into.states.get(event.model) or ModelState(name=event.model), event)
        if event.command_position and event.command_position.partition == record.partition:
            into.next_command = max(into.next_command, event.command_position.offset + 1)
        if event.actor.token_id is not None:
            decided_at = datetime.fromtimestamp(record.timestamp / 1000, timezone.utc)
            into.spent_tokens.append((event.actor.token_id, event.command_id, decided_at))
    return restored
