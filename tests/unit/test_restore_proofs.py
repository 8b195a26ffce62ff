"""The promoter's restore proves the log a chunk at a time, as a replay does
(decision 0013), and folds exactly what proving each event alone lets through:
a log with one record forged, altered, unsigned, signed by a stranger, forked,
dropped or unreadable anywhere, cut into chunks anywhere, restores to the same
states, heads, command position and spent tokens, with the same records
skipped."""

import asyncio
import itertools

from aiokafka.structs import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.proven import Refused, proven_event
from modelog_contract.replay_proofs import chunk_problems
from modelog_platform.settings import EVENTS_TOPIC
from promoter.restore import Restored, appended_at, fold_chunk
from tests.unit.test_replay_proofs import KINDS, LOG, TRUSTED, tampered

T = 1_780_000_000_000  # a record's timestamp, ms


def records_of(values: list[bytes]) -> list[ConsumerRecord]:
    return [ConsumerRecord(EVENTS_TOPIC, 0, offset, T + offset, 0, None, value, None, 0, len(value), ())
            for offset, value in enumerate(values)]


def one_by_one(records: list[ConsumerRecord]) -> tuple[Restored, list[int]]:
    """The reference: each event proven alone, as the restore proved them before."""
    restored, skipped = Restored(0), []
    for record in records:
        event = proven_event(record.value, TRUSTED)
        if isinstance(event, Refused):
            skipped.append(record.offset)
        else:
            assert restored.fold(event, record.offset, appended_at(record)) is None
    return restored, skipped


def in_chunks(records: list[ConsumerRecord], cuts: list[int]) -> tuple[Restored, list[int]]:
    restored, broken, skipped = Restored(0), {}, []
    bounds = sorted({0, len(records), *(c % (len(records) + 1) for c in cuts)})
    for start, stop in itertools.pairwise(bounds):
        chunk = records[start:stop]
        skipped += asyncio.run(fold_chunk({0: restored}, broken, chunk,
                                          chunk_problems([r.value for r in chunk], TRUSTED)))
    assert broken == {}
    return restored, [record.offset for record in skipped]


@settings(max_examples=80, deadline=None)
@given(kind=st.sampled_from(KINDS), at=st.integers(0, len(LOG) - 1), cuts=st.lists(st.integers(0, 40), max_size=3))
def test_a_restore_folds_what_proving_each_event_alone_lets_through(kind, at, cuts):
    records = records_of(tampered(LOG, kind, at))
    alone, refused = one_by_one(records)
    chunked, skipped = in_chunks(records, cuts)
    assert (chunked.states, chunked.head_offsets, chunked.last_event, chunked.next_command,
            chunked.spent_tokens) == (alone.states, alone.head_offsets, alone.last_event, alone.next_command,
                                      alone.spent_tokens)
    assert skipped == refused
    # A record dropped, or a second decision the writer signed, leaves nothing
    # unproven (verify's chain checks find those); every other kind does.
    assert refused or kind in ("dropped", "fork by the writer")
