"""Rollback on monitoring signals, as data: the rules a model's policy may list
and the evidence a decision taken on one of them carries.

The sentinel service evaluates the rules over windows of serving signals; the
decider only carries the evidence into the event, so the trail's "why" shows
the window's figures and the rule that judged them. Nothing here does I/O.
"""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from modelog_contract.domain.types import Frozen, ModelName

RuleName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
MetricName = Annotated[str, Field(min_length=1, max_length=100)]
# A metric's value: finite, so a window's mean is a number every reader can print.
MetricValue = Annotated[float, Field(allow_inf_nan=False)]


class Signal(Frozen):
    """What a serving instance saw, as published to `modelog.signals` (keyed by
    model): one request's outcome (requests 1, errors 0 or 1) or an aggregate
    over a span such as a minute. `metrics` are means over its requests (a
    latency, a business figure such as a conversion rate); the sentinel weighs
    each by `requests`. docs/serving.md ("Signals and the sentinel")."""

    model: ModelName
    version: int = Field(ge=1)
    instance: str = Field(min_length=1, max_length=200)
    time: AwareDatetime
    requests: int = Field(1, ge=1, le=10_000_000)
    errors: int = Field(0, ge=0)
    metrics: dict[MetricName, MetricValue] = Field({}, max_length=50)

    @model_validator(mode="after")
    def _errors_within_requests(self) -> "Signal":
        if self.errors > self.requests:
            raise ValueError(f"errors ({self.errors}) cannot exceed requests ({self.requests})")
        return self


class ErrorRateRule(Frozen):
    """Roll back (or drop the canary) when a serving version's errors exceed
    `max_error_percent` of its requests over `window_s`, once it served at
    least `min_requests` there: too few requests prove nothing."""

    kind: Literal["error_rate"] = "error_rate"
    name: RuleName = "error_rate"
    max_error_percent: float = Field(gt=0, le=100)
    window_s: int = Field(300, gt=0, le=86_400)
    min_requests: int = Field(1, ge=1)


class CanaryMetricRule(Frozen):
    """Drop a canary whose mean `metric` is worse than the Production version's
    by more than `margin` over `window_s`, each side having served at least
    `min_requests` there."""

    kind: Literal["canary_metric"] = "canary_metric"
    name: RuleName = "canary_metric"
    metric: MetricName
    margin: float = Field(0.0, ge=0)
    higher_is_better: bool = True
    window_s: int = Field(300, gt=0, le=86_400)
    min_requests: int = Field(1, ge=1)


RollbackRule = Annotated[ErrorRateRule | CanaryMetricRule, Field(discriminator="kind")]


class VersionWindow(Frozen):
    """What one version served in a window: requests, errors, and the mean of
    each named metric over the requests that reported it."""

    version: int
    requests: int = Field(ge=0)
    errors: int = Field(ge=0)
    metrics: dict[MetricName, float] = {}


class Evidence(Frozen):
    """Why the sentinel asked for a decision: the rule, the window it judged,
    each version's figures in it, and the verdict in words."""

    rule: RollbackRule
    window_start: datetime
    window_end: datetime
    versions: tuple[VersionWindow, ...] = Field(min_length=1, max_length=100)
    detail: str = Field(max_length=2000)
