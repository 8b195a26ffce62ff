"""The rollback rules, judged: pure functions from a window's figures per
version and what the model serves to the breaches the sentinel acts on.

An error-rate breach of the Production version asks for a rollback to the
version that was in Production before it; one of a canary (a routed version
other than Production) asks for the split without it. A canary-metric breach
always drops the canary. A version that served fewer requests than the rule's
minimum is never judged: a handful of requests proves nothing.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from modelog_contract.domain.monitoring import CanaryMetricRule, ErrorRateRule, Evidence, RollbackRule, VersionWindow
from modelog_contract.domain.types import Frozen

Action = Literal["rollback", "drop_canary"]


class Serving(Frozen):
    """What a model serves when its window closes, from the sentinel's book."""

    production: int | None = None
    canaries: tuple[int, ...] = ()
    # The Archived version that was in Production last before the current one: a rollback's target.
    previous_production: int | None = None
    # When each watched version took its role: windows before it are not its evidence.
    since: dict[int, datetime] = {}


class Breach(Frozen):
    action: Action
    version: int  # the version found wanting
    restore: int | None = None  # a rollback's target
    evidence: Evidence


def error_percent(window: VersionWindow) -> float:
    return 100.0 * window.errors / window.requests if window.requests else 0.0


def judge(rule: RollbackRule, span: Mapping[int, VersionWindow], serving: Serving,
          start: datetime, end: datetime) -> list[Breach]:
    """Every breach of `rule` over the windows from `start` to `end`."""
    match rule:
        case ErrorRateRule():
            return _error_rate(rule, span, serving, start, end)
        case CanaryMetricRule():
            return _canary_metric(rule, span, serving, start, end)
    return []  # pragma: no cover - RollbackRule is a closed union


def _error_rate(rule: ErrorRateRule, span: Mapping[int, VersionWindow], serving: Serving,
                start: datetime, end: datetime) -> list[Breach]:
    breaches = []
    for version in _watched(serving):
        window = span.get(version)
        if window is None or window.requests < rule.min_requests or error_percent(window) <= rule.max_error_percent:
            continue
        detail = (f"version {version}: {window.errors} errors in {window.requests} requests "
                  f"({error_percent(window):.2f}%) > {rule.max_error_percent:g}% "
                  f"(at least {rule.min_requests} requests)")
        evidence = _evidence(rule, span, serving, start, end, detail)
        if version == serving.production:
            if serving.previous_production is not None:  # nothing to roll back to: Production stays
                breaches.append(Breach(action="rollback", version=version, restore=serving.previous_production,
                                       evidence=evidence))
        else:
            breaches.append(Breach(action="drop_canary", version=version, evidence=evidence))
    return breaches


def _canary_metric(rule: CanaryMetricRule, span: Mapping[int, VersionWindow], serving: Serving,
                   start: datetime, end: datetime) -> list[Breach]:
    champion = span.get(serving.production) if serving.production is not None else None
    if champion is None or champion.requests < rule.min_requests or rule.metric not in champion.metrics:
        return []
    breaches = []
    for version in serving.canaries:
        canary = span.get(version)
        if canary is None or canary.requests < rule.min_requests or rule.metric not in canary.metrics:
            continue
        ours, theirs = canary.metrics[rule.metric], champion.metrics[rule.metric]
        shortfall = (theirs - ours) if rule.higher_is_better else (ours - theirs)
        if shortfall > rule.margin:
            detail = (f"version {version}: mean {rule.metric} {ours:g} against {theirs:g} for Production version "
                      f"{serving.production}, worse by {shortfall:g} > margin {rule.margin:g} "
                      f"({'higher' if rule.higher_is_better else 'lower'} is better)")
            breaches.append(Breach(action="drop_canary", version=version,
                                   evidence=_evidence(rule, span, serving, start, end, detail)))
    return breaches


def _watched(serving: Serving) -> tuple[int, ...]:
    return ((serving.production,) if serving.production is not None else ()) + serving.canaries


def _evidence(rule: RollbackRule, span: Mapping[int, VersionWindow], serving: Serving,
              start: datetime, end: datetime, detail: str) -> Evidence:
    shown = [span[v] for v in _watched(serving) if v in span]
    return Evidence(rule=rule, window_start=start, window_end=end, versions=tuple(shown), detail=detail)
