"""The sentinel's rules and windows as pure functions: a breach is found
exactly when the figures cross the rule, never on too few requests, never for
a version that does not serve; windows sum the same in any order; a breach's
command id depends only on (model, version, rule, window, the seq judged at);
the registrar's answer is read as what it shows of the outcome."""

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from modelog_contract.domain.monitoring import CanaryMetricRule, ErrorRateRule, Signal, VersionWindow
from modelog_contract.domain.splits import Route, TrafficSplit
from sentinel import windows as w
from sentinel.core import Judged
from sentinel.decisions import answer_of, breach_id, decision_id, request_for
from sentinel.rules import Serving, judge

START = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
END = START + timedelta(minutes=5)
CANARY = Serving(production=1, canaries=(2,), previous_production=3)

counts = st.integers(0, 10_000)


@given(requests=counts, errors=counts, most=st.floats(0.01, 100), least=st.integers(1, 5000),
       version=st.sampled_from([1, 2]))
def test_an_error_rate_breach_is_found_exactly_when_the_rate_and_the_volume_cross_the_rule(
        requests, errors, most, least, version):
    errors = min(errors, requests)
    rule = ErrorRateRule(max_error_percent=most, min_requests=least)
    [breach] = judge(rule, {version: VersionWindow(version=version, requests=requests, errors=errors)},
                     CANARY, START, END) or [None]
    crossed = requests >= least and requests > 0 and 100.0 * errors / requests > most
    assert (breach is not None) == crossed
    if breach is not None:
        assert breach.version == version
        assert (breach.action, breach.restore) == (("rollback", 3) if version == 1 else ("drop_canary", None))
        assert breach.evidence.rule == rule and breach.evidence.window_start == START


@given(requests=st.integers(1, 1000))
def test_a_version_that_does_not_serve_is_never_judged(requests):
    rule = ErrorRateRule(max_error_percent=1)
    assert judge(rule, {7: VersionWindow(version=7, requests=requests, errors=requests)}, CANARY, START, END) == []


def test_a_failing_production_with_nothing_to_roll_back_to_stays():
    rule = ErrorRateRule(max_error_percent=1)
    alone = Serving(production=1)
    assert judge(rule, {1: VersionWindow(version=1, requests=100, errors=100)}, alone, START, END) == []


@given(ours=st.floats(0, 1000), theirs=st.floats(0, 1000), margin=st.floats(0, 100),
       higher_is_better=st.booleans(), canary_requests=st.integers(0, 100))
def test_a_canary_worse_than_production_by_more_than_the_margin_is_dropped(
        ours, theirs, margin, higher_is_better, canary_requests):
    rule = CanaryMetricRule(metric="conversion", margin=margin, higher_is_better=higher_is_better, min_requests=10)
    span = {1: VersionWindow(version=1, requests=500, errors=0, metrics={"conversion": theirs}),
            2: VersionWindow(version=2, requests=canary_requests, errors=0, metrics={"conversion": ours})}
    shortfall = theirs - ours if higher_is_better else ours - theirs
    found = judge(rule, span, CANARY, START, END)
    assert bool(found) == (canary_requests >= 10 and shortfall > margin)
    assert all((b.action, b.version) == ("drop_canary", 2) for b in found)


def test_a_canary_without_the_metric_is_not_judged_on_it():
    rule = CanaryMetricRule(metric="conversion", margin=0)
    span = {1: VersionWindow(version=1, requests=500, errors=0, metrics={"conversion": 0.5}),
            2: VersionWindow(version=2, requests=500, errors=0, metrics={"latency_ms": 9.0})}
    assert judge(rule, span, CANARY, START, END) == []


signals = st.builds(lambda requests, errors, latency: Signal(
    model="m", version=1, instance="i", time=START, requests=requests, errors=min(errors, requests),
    metrics={"latency_ms": latency}), st.integers(1, 1000), st.integers(0, 1000), st.floats(0, 10_000))


@given(st.lists(signals, min_size=1, max_size=30), st.randoms())
def test_windows_sum_the_same_in_any_order_and_weigh_means_by_requests(batch, rng):
    aggregates = [w.of_signal(s) for s in batch]
    shuffled = aggregates[:]
    rng.shuffle(shuffled)
    one, other = w.version_window(1, w.summed(aggregates)), w.version_window(1, w.summed(shuffled))
    assert (one.requests, one.errors) == (other.requests, other.errors) == (
        sum(s.requests for s in batch), sum(s.errors for s in batch))
    weighted = sum(s.metrics["latency_ms"] * s.requests for s in batch) / one.requests
    assert abs(one.metrics["latency_ms"] - weighted) <= 1e-6 * max(1.0, weighted)
    assert abs(one.metrics["latency_ms"] - other.metrics["latency_ms"]) <= 1e-6 * max(1.0, weighted)


@given(st.text(min_size=1, max_size=40).filter(lambda s: "\n" not in s), st.integers(1, 10**6), st.integers(0, 10**10))
def test_a_window_key_names_its_model_version_and_start(model, version, start):
    assert w.parse_key(w.key_of(model, version, start)) == (model, version, start)


def test_a_breach_id_depends_on_model_version_rule_window_and_the_seq_judged_at_only():
    same = decision_id("m", 2, "errors", START, 7)
    assert same == decision_id("m", 2, "errors", START, 7)
    assert len({same, decision_id("n", 2, "errors", START, 7), decision_id("m", 3, "errors", START, 7),
                decision_id("m", 2, "latency", START, 7), decision_id("m", 2, "errors", END, 7),
                decision_id("m", 2, "errors", START, 8)}) == 6


def test_an_answer_is_read_as_what_it_shows_of_the_outcome():
    conflict = b'{"error": {"code": "version_conflict", "message": "model m is at seq 9, not 8"}}'
    refused = b'{"error": {"code": "split_invalid", "message": "no"}}'
    # A refusal whose message merely names the other code is still a refusal.
    mentions = b'{"error": {"code": "model_exists", "message": "not a version_conflict"}}'
    assert [answer_of(200, b"{}"), answer_of(409, conflict), answer_of(409, refused), answer_of(422, refused),
            answer_of(409, mentions), answer_of(409, b"<html>version_conflict</html>"), answer_of(409, b"[]"),
            answer_of(202, b"{}"), answer_of(503, b""), answer_of(429, b"")] == [
        "decided", "stale", "refused", "refused", "refused", "refused", "refused", "pending", "retry", "retry"]


def test_dropping_a_canary_gives_its_weight_back_to_production_and_keeps_the_rest():
    rule = ErrorRateRule(max_error_percent=1)
    serving = Serving(production=1, canaries=(2, 3))
    [breach] = judge(rule, {2: VersionWindow(version=2, requests=10, errors=10)}, serving, START, END)
    split = TrafficSplit(routes=(Route(version=1, weight=80), Route(version=2, weight=10), Route(version=3, weight=10)),
                         shadows=(4,), production_version=1)
    method, path, body = request_for("m", breach, split)
    assert (method, path) == ("PUT", "/v1/models/m/traffic-split")
    assert (body["routes"], body["shadows"]) == ([{"version": 1, "weight": 90}, {"version": 3, "weight": 10}], [4])
    assert body["evidence"]["rule"]["name"] == "error_rate"
    assert breach_id(Judged("m", breach, 0, 12, split)) == decision_id("m", 2, "error_rate", START, 12)
    assert request_for("m", breach, None) is None  # no split left to change
