"""The token bucket: a burst, then a steady rate."""

from hypothesis import given
from hypothesis import strategies as st

from modelog_platform.identity.ratelimit import Limit, full, take

LIMIT = Limit(rate_per_s=2, burst=3)


def test_a_burst_then_the_steady_rate():
    bucket, waits = None, []
    for _ in range(4):
        bucket, wait = take(bucket, 0.0, LIMIT)
        waits.append(wait)
    assert waits[:3] == [None, None, None] and waits[3] == 0.5
    bucket, wait = take(bucket, 0.5, LIMIT)
    assert wait is None


def test_an_idle_bucket_refills_to_the_burst_and_no_further():
    bucket, _ = take(None, 0.0, LIMIT)
    assert full(bucket, 0.5, LIMIT) and not full(bucket, 0.4, LIMIT)
    bucket, _ = take(bucket, 100.0, LIMIT)
    assert bucket.tokens == LIMIT.burst - 1


@given(st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=60))
def test_never_more_than_burst_plus_rate_times_time(gaps):
    bucket, now, granted = None, 0.0, 0
    for gap in gaps:
        now += gap
        bucket, wait = take(bucket, now, LIMIT)
        granted += wait is None
        assert wait is None or wait > 0
    assert granted <= LIMIT.burst + LIMIT.rate_per_s * now + 1e-9
