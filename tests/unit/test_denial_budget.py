"""The registrar's budget of denial records per subject: a fixed window, at
most so many records in it, and a summary that counts the rest exactly."""

from datetime import datetime, timedelta, timezone

from registrar.denials import Window, admit, ended, summary

START = datetime(2026, 12, 2, 3, 0, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)


def flood(count: int, every: timedelta, window: Window | None = None, start: datetime = START):
    recorded, closed = 0, []
    for n in range(count):
        window, admitted, was = admit(window, start + n * every, 30, MINUTE)
        recorded += admitted
        closed += [was] if was else []
    return window, recorded, closed


def test_within_a_window_the_budget_is_recorded_and_the_rest_counted():
    window, recorded, closed = flood(200, timedelta(milliseconds=100))
    assert (recorded, window.suppressed, closed) == (30, 170, [])
    assert window.first_suppressed == START + 30 * timedelta(milliseconds=100)
    assert window.last_suppressed == START + 199 * timedelta(milliseconds=100)
    record = summary("mallory", window, MINUTE)
    assert record is not None and record["suppressed"] == 170 and record["kind"] == "summary"
    assert record["message"] == (f"170 more denials of mallory suppressed between "
                                 f"{window.first_suppressed.isoformat()} and {window.last_suppressed.isoformat()}")


def test_a_new_window_starts_after_the_last_one_ends_and_closes_it():
    window, _, _ = flood(40, timedelta(seconds=1))  # 40 s: one window
    after, admitted, closed = admit(window, START + timedelta(seconds=61), 30, MINUTE)
    assert admitted and closed == window and (after.recorded, after.suppressed) == (1, 0)


def test_a_window_that_suppressed_nothing_needs_no_summary_and_ends_on_time():
    window, recorded, _ = flood(5, timedelta(seconds=1))
    assert recorded == 5 and summary("alice", window, MINUTE) is None
    assert ended({"alice": window}, START + timedelta(seconds=59), MINUTE) == []
    assert ended({"alice": window}, START + MINUTE, MINUTE) == ["alice"]
