"""A batch's completed outcomes are announced in as few notifications as
PostgreSQL's payload limit allows, and a listener reads back exactly the ids
announced, whatever else a payload holds."""

from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from projector.outcome_wakeups import command_ids_in, payloads

PAYLOAD_LIMIT = 8000  # bytes PostgreSQL accepts in one NOTIFY payload


@given(st.lists(st.uuids(), max_size=1000))
def test_every_announced_id_is_read_back_in_order_from_payloads_within_the_limit(ids):
    announced = payloads(ids)
    assert all(len(payload.encode()) < PAYLOAD_LIMIT for payload in announced)
    assert [i for payload in announced for i in command_ids_in(payload)] == ids
    assert len(announced) == -(-len(ids) // 200)


def test_a_payload_of_one_id_reads_as_that_id():
    command_id = UUID("6f1c1b2e-8f57-4a39-9a53-5d1c5f3a9e10")
    assert command_ids_in(str(command_id)) == [command_id]


def test_what_is_not_an_id_in_a_payload_is_left_out():
    command_id = UUID("6f1c1b2e-8f57-4a39-9a53-5d1c5f3a9e10")
    assert command_ids_in(f"hello,{command_id},,") == [command_id]
