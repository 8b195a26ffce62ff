"""The sentinel's counters as Prometheus metrics, beside the platform's.

`/v1/status` shows what the sentinel counted: signals summed and dropped, its
requests' answers, windows kept and watched. Whoever runs it alerts on the
same numbers (signals dropped as malformed, rollbacks refused), so `/metrics`
carries them too. They are not counted a second time: at each scrape a
collector reads the status the running app answers and turns it into metric
families (`families`, a plain function), so the two pages never disagree.

The platform's metrics (process, GC) come from modelog_platform.metrics, whose
`metrics_response()` app.py's `/metrics` route answers with; registering this
collector in prometheus_client's default registry puts these in that answer.
Their names and meanings are listed in docs/operations.md ("Metrics").
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any, get_args

from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sentinel.core import Answer
from sentinel.rules import Action

Status = Callable[[], Mapping[str, Any]]  # what /v1/status answers
DROPPED = ("malformed", "unknown_model", "too_old")  # the reasons core.Sentinel drops a signal for
ANSWERS = tuple(a for a in get_args(Answer) if a != "retry")  # a retry is asked again, not counted


def families(status: Mapping[str, Any]) -> list[Metric]:
    """The metric families a status shows. Every reason and (answer, action)
    is present, at zero until it happens, so an alert's rate() has a series
    to read before the first drop or refusal."""
    counts = status["counts"]

    def counter(name: str, doc: str, value: float) -> Metric:
        return CounterMetricFamily(f"modelog_sentinel_{name}", doc, value=value)

    def gauge(name: str, doc: str, value: float) -> Metric:
        return GaugeMetricFamily(f"modelog_sentinel_{name}", doc, value=value)

    dropped = CounterMetricFamily("modelog_sentinel_dropped_signals", "serving signals dropped, by reason",
                                  labels=["reason"])
    for reason in DROPPED:
        dropped.add_metric([reason], counts.get(reason, 0))
    answers = CounterMetricFamily("modelog_sentinel_answers",
                                  "the registrar's answers to the sentinel's requests, by what they showed and the action",
                                  labels=["answer", "action"])
    for answer in ANSWERS:
        for action in get_args(Action):
            answers.add_metric([answer, action], counts.get(f"{answer}_{action}", 0))
    return [
        counter("signals", "serving signals summed into windows", counts.get("signals", 0)),
        counter("signal_requests", "serving requests the summed signals reported", counts.get("requests", 0)),
        counter("late_signals", "signals summed into a window already judged", counts.get("late", 0)),
        dropped,
        answers,
        counter("events_folded", "events of the log folded into the sentinel's book", status["events_folded"]),
        counter("unproven_events", "records of the log that no trusted key proves, ignored",
                status["unproven_events"]),
        gauge("windows", "windows kept in the table", status["windows"]),
        gauge("watched_windows", "windows to judge again once the fold passes the seq they were asked at",
              status["watched"]),
        gauge("unsettled_requests", "requests to ask again after the registrar failed", status["unsettled"]),
    ]


class StatusCollector(Collector):
    """Reads the status when scraped; before an app is exposed it shows nothing."""

    def __init__(self) -> None:
        self.status: Status | None = None

    def collect(self) -> Iterable[Metric]:
        return families(self.status()) if self.status is not None else []


_collector = StatusCollector()
REGISTRY.register(_collector)  # once per process: this module is imported once


def expose(status: Status) -> None:
    """Show `status` at each scrape; a second call replaces the first (an app built again)."""
    _collector.status = status
