"""Continuous verification as the auditor does it: each arriving event is
judged against its model's stored head. A reader that keeps one event per
(model, seq) is simulated here around the pure judge_arrival."""

from modelog_contract.domain.chain import GENESIS_HASH, judge_arrival, link_hash
from modelog_contract.domain.commands import ReportMetrics
from tests.unit.builders import Scenario, command, register


def stored_form(events) -> list[dict]:
    return [e.model_dump(mode="json") for e in events]


def watch(arrivals: list[dict]) -> tuple[list[tuple[str, int]], list[tuple[str, int, str]]]:
    """What a store keeps, (model, seq), and what it reports, (model, seq, problem)."""
    heads, kept, alerts = {}, [], []
    for fields in arrivals:
        arrival = judge_arrival(*heads.get(fields["model"], (0, GENESIS_HASH)), fields)
        if arrival.problem:
            alerts.append((fields["model"], fields["seq"], arrival.problem))
        if arrival.keep:
            heads[fields["model"]] = (fields["seq"], fields["hash"])
            kept.append((fields["model"], fields["seq"]))
    return kept, alerts


def history(model: str = "fraud-detector") -> list[dict]:
    s = Scenario(model).given(register(model, n=1), register(model, n=2))
    s.when(command(ReportMetrics, model=model, version=1, metrics={"auc": 0.9}))
    s.when(command(ReportMetrics, model=model, version=2, metrics={"auc": 0.8}))
    return stored_form(s.events)  # seqs 1..5


def test_an_intact_log_of_two_interleaved_models_raises_nothing():
    a, b = history("model-a"), history("model-b")
    kept, alerts = watch([e for pair in zip(a, b, strict=False) for e in pair])
    assert alerts == [] and len(kept) == 10


def test_a_missing_event_is_reported_once_and_the_chain_goes_on_from_the_next():
    log = history()
    kept, alerts = watch(log[:2] + log[3:])
    assert alerts == [("fraud-detector", 4, "seq 4 follows 2")]
    assert [seq for _, seq in kept] == [1, 2, 4, 5]


def test_a_changed_event_is_reported_by_its_hash():
    log = history()
    log[2]["payload"]["metrics"] = {"auc": 0.99}  # the record rewritten in the log
    kept, alerts = watch(log)
    assert alerts == [("fraud-detector", 3, "hash does not match the event's content")]
    assert len(kept) == 5  # it is in the log: the store keeps it, flagged


def test_a_relinked_event_is_reported_by_its_prev_hash():
    log = history()
    log[3]["prev_hash"] = log[1]["hash"]
    log[3]["hash"] = link_hash(log[3]["prev_hash"], log[3])  # consistent in itself, but skips seq 3
    _, alerts = watch(log)
    assert alerts[0] == ("fraud-detector", 4, "prev_hash does not link to seq 3")


def test_a_second_event_at_a_held_seq_is_reported_and_not_kept():
    log = history()
    fork = {**log[2], "payload": {**log[2]["payload"], "metrics": {"auc": 0.1}}}
    fork["hash"] = link_hash(fork["prev_hash"], fork)  # a validly hashed alternative seq 3
    kept, alerts = watch(log[:3] + [fork] + log[3:])
    assert alerts == [("fraud-detector", 3, "seq 3 follows 3")]
    assert [seq for _, seq in kept] == [1, 2, 3, 4, 5]


def test_an_upcast_event_has_its_links_checked_but_not_its_content():
    log = history()
    log[1]["payload"]["description"] = "as an upcaster would reshape it"
    assert judge_arrival(1, log[0]["hash"], log[1], check_content=False).problem is None
    assert judge_arrival(1, log[0]["hash"], log[1]).problem == "hash does not match the event's content"
