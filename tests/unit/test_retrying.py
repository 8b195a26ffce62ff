"""The SDK's rule for asking again (modelog/retrying.py): on a 503 or a lost
connection, as the server asks or backing off, until the time given is up;
never on an answer that is not a 503. The clock and the pauses are the
test's own, so the rule is checked without waiting."""

import httpx
import pytest

from modelog.client import keyed, write_headers
from modelog.retrying import LONGEST_RETRY_AFTER_S, Retrying


class Clock:
    def __init__(self):
        self.now, self.pauses = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def answers(*planned):
    """A request that gives the planned answers in turn: a status (with Retry-After
    when a tuple) or an exception to raise."""
    planned, sent = list(planned), []

    def request() -> httpx.Response:
        sent.append(1)
        answer = planned.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, retry_after = answer if isinstance(answer, tuple) else (answer, None)
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return httpx.Response(status, headers=headers, json={"error": {"code": "log_unavailable"}})
    return request, sent


def retrying(for_s: float) -> tuple[Retrying, Clock]:
    clock = Clock()
    return Retrying(for_s, sleep=clock.sleep, clock=lambda: clock.now), clock


def test_a_503_is_asked_again_after_the_pause_the_server_asks_for():
    policy, clock = retrying(60)
    request, sent = answers((503, "5"), (503, "2"), 201)
    assert policy.send(request, "a write").status_code == 201
    assert len(sent) == 3 and clock.pauses == [5.0, 2.0]


def test_a_lost_connection_is_asked_again_backing_off():
    policy, clock = retrying(60)
    request, sent = answers(httpx.ConnectError("refused"), httpx.RemoteProtocolError("closed"),
                            httpx.ReadTimeout("slow"), 200)
    assert policy.send(request, "a read").status_code == 200
    assert len(sent) == 4 and clock.pauses == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("status", [200, 201, 202, 400, 404, 409, 422, 500, 502])
def test_only_a_503_is_asked_again(status):
    policy, clock = retrying(60)
    request, sent = answers(status)
    assert policy.send(request, "a write").status_code == status
    assert len(sent) == 1 and clock.pauses == []


def test_once_the_time_is_up_the_last_503_is_the_callers():
    policy, clock = retrying(8)
    request, sent = answers((503, "5"), (503, "5"), 201)
    assert policy.send(request, "a write").status_code == 503
    assert len(sent) == 2 and clock.now <= 8


def test_once_the_time_is_up_the_last_lost_connection_is_raised():
    policy, _ = retrying(1)
    request, sent = answers(httpx.ConnectError("refused"), httpx.ConnectError("refused"), 200)
    with pytest.raises(httpx.ConnectError):
        policy.send(request, "a read")
    assert len(sent) == 2


def test_no_time_never_asks_again():
    policy, _ = retrying(0)
    request, sent = answers(503, 201)
    assert policy.send(request, "a write").status_code == 503 and len(sent) == 1


def test_a_retry_after_too_long_or_unreadable_is_bounded_or_replaced():
    policy, clock = retrying(600)
    request, _ = answers((503, "3600"), (503, "Wed, 21 Oct 2026 07:28:00 GMT"), 200)
    policy.send(request, "a write")
    assert clock.pauses == [LONGEST_RETRY_AFTER_S, 1.0]


def test_every_write_carries_a_key_and_a_callers_key_is_kept():
    assert write_headers(**keyed({}))["Idempotency-Key"] != write_headers(**keyed({}))["Idempotency-Key"]
    assert write_headers(**keyed({"idempotency_key": "mine", "if_match": 3})) == {
        "Idempotency-Key": "mine", "If-Match": '"3"'}
