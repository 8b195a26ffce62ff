"""Tumbling windows of serving signals per (model, version), as plain data.

A window's aggregate is a JSON object (requests, errors, and per metric the
request-weighted sum and the requests that reported it), so the Faust table
stores and changelogs it as is, and merging two aggregates is addition: a
batch's signals are summed in memory first and written once per key.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from modelog_contract.domain.monitoring import Signal, VersionWindow

Aggregate = dict[str, Any]  # {"requests", "errors", "sums": {metric: float}, "counts": {metric: int}}


def window_start(at: datetime, size_s: int) -> int:
    """The epoch second at which the window holding `at` starts."""
    second = int(at.timestamp())
    return second - second % size_s


def key_of(model: str, version: int, start: int) -> str:
    # The model last: a name may hold any character but a newline, and split(maxsplit=2) keeps it whole.
    return f"{start} {version} {model}"


def parse_key(key: str) -> tuple[str, int, int]:
    """(model, version, window start)."""
    start, version, model = key.split(" ", 2)
    return model, int(version), int(start)


def empty() -> Aggregate:
    return {"requests": 0, "errors": 0, "sums": {}, "counts": {}}


def of_signal(signal: Signal) -> Aggregate:
    return {"requests": signal.requests, "errors": signal.errors,
            "sums": {name: value * signal.requests for name, value in signal.metrics.items()},
            "counts": {name: signal.requests for name in signal.metrics}}


def merged(a: Mapping[str, Any] | None, b: Mapping[str, Any]) -> Aggregate:
    """a + b; None counts as empty. Neither argument is changed."""
    a = a or empty()
    sums, counts = dict(a["sums"]), dict(a["counts"])
    for name, value in b["sums"].items():
        sums[name] = sums.get(name, 0.0) + value
    for name, count in b["counts"].items():
        counts[name] = counts.get(name, 0) + count
    return {"requests": a["requests"] + b["requests"], "errors": a["errors"] + b["errors"],
            "sums": sums, "counts": counts}


def summed(aggregates: Iterable[Mapping[str, Any]]) -> Aggregate:
    total = empty()
    for aggregate in aggregates:
        total = merged(total, aggregate)
    return total


def version_window(version: int, aggregate: Mapping[str, Any]) -> VersionWindow:
    """The figures a rule and a reader see: counts, and each metric's mean."""
    means = {name: aggregate["sums"][name] / count for name, count in aggregate["counts"].items() if count}
    return VersionWindow(version=version, requests=aggregate["requests"], errors=aggregate["errors"], metrics=means)


def instant(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, timezone.utc)
