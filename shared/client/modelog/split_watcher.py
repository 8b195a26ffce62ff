"""A serving process's models for a traffic split: every routed version kept
loaded, and each request routed to one of them by a stable hash of its key.

`SplitWatcher` is a ModelWatcher that follows the model's traffic-split
lookup instead of a stage: on each change it downloads and loads, digest
checked, every routed and shadow version it does not hold yet, then swaps the
whole routing table in with one assignment. A request's key always lands on
the same version for a given split (`bucket`: sha256 of the key, modulo 100,
against the routes' cumulative weights, in the order the split lists them),
so a user stays on one side of a canary. Shadows are exposed (`shadows()`)
for the caller to send copies to; their answers are the caller's to compare,
never to serve. With no split set, the lookup names the Production version
at 100, so the watcher serves it alone.
"""

import hashlib
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from modelog.follower import Target, TargetFollower
from modelog.watcher import ModelWatcher, NothingServed, Served, _remove


def bucket(key: str | bytes) -> int:
    """The request key's place in 0..99: the same on every machine and run."""
    data = key.encode() if isinstance(key, str) else key
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big") % 100


def pick(weights: list[tuple[int, int]], key: str | bytes) -> int:
    """The version of (version, weight) routes that `key` goes to."""
    place, total = bucket(key), 0
    for version, weight in weights:
        total += weight
        if place < total:
            return version
    return weights[-1][0]  # weights sum to 100: reached only if they do not


@dataclass(frozen=True)
class Plan:
    """A split as the lookup serves it: routed versions with weights, and shadows."""

    routes: tuple[tuple[Target, int], ...]
    shadows: tuple[Target, ...]
    production_version: int | None

    def targets(self) -> list[Target]:
        return [t for t, _ in self.routes] + list(self.shadows)


def planned(answer: dict) -> Plan | None:
    """The plan a traffic-split answer gives; None when it routes nowhere."""
    def target(v: dict) -> Target:
        return Target(v["version"], v["artifact"]["sha256"])
    if not answer["routes"]:
        return None
    return Plan(tuple((target(r), r["weight"]) for r in answer["routes"]),
                tuple(target(v) for v in answer["shadows"]), answer["production_version"])


class SplitFollower(TargetFollower):
    choose = staticmethod(planned)

    def __init__(self, projector: Any, model: str, on_plan: Any):
        super().__init__(projector, model, "Production", None, on_plan)
        self.path = f"/v1/models/{model}/traffic-split"


@dataclass(frozen=True)
class Routing:
    """What `route` reads: one plan and its loaded versions, swapped in whole."""

    plan: Plan
    loaded: dict[Target, Served]

    def route(self, key: str | bytes) -> Served:
        version = pick([(t.version, w) for t, w in self.plan.routes], key)
        return next(s for t, s in self.loaded.items() if t.version == version)


class SplitWatcher(ModelWatcher):
    """`SplitWatcher(model, loader, ...)`: the options and events of ModelWatcher."""

    def __init__(self, model: str, loader: Any, **options: Any):
        super().__init__(model, loader, stage="Production", **options)
        self._follower = SplitFollower(self._reader.projector, model, self._aim)
        self._routing: Routing | None = None
        self._previous_routing: Routing | None = None

    def route(self, request_key: str | bytes) -> tuple[int, Any]:
        """(version, model) for this request: the same key, the same version, for a given split."""
        served = self.routing.route(request_key)
        return served.version, served.model

    def shadows(self) -> list[tuple[int, Any]]:
        """(version, model) of each shadow, to send a copy of the request to."""
        routing = self.routing
        return [(t.version, routing.loaded[t].model) for t in routing.plan.shadows]

    @property
    def routing(self) -> Routing:
        routing = self._routing
        if routing is None:
            raise NothingServed(f"no split of {self.name} is loaded yet")
        return routing

    @property
    def weights(self) -> dict[int, int]:
        """The routed versions and their weights, as served now ({} before the first swap)."""
        routing = self._routing
        return {t.version: w for t, w in routing.plan.routes} if routing else {}

    def wait_for_weights(self, weights: dict[int, int], timeout_s: float = 60.0) -> bool:
        """Wait until the split served is `weights`; False if the time ran out."""
        with self._changed:
            return self._changed.wait_for(lambda: self.weights == weights, timeout_s)

    def _wanted(self) -> Plan | None:  # type: ignore[override]
        plan, routing = self._target, self._routing
        if plan is None or (routing is not None and routing.plan == plan):
            return None
        if self._failed and self._failed[0] == plan and time.monotonic() < self._failed[1]:
            return None
        return plan

    def _serve(self, plan: Plan) -> None:  # type: ignore[override]
        held = {**(self._previous_routing.loaded if self._previous_routing else {}),
                **(self._routing.loaded if self._routing else {})}
        loaded: dict[Target, Served] = {}
        for target in plan.targets():
            if target in held:
                loaded[target] = held[target]
                continue
            served = self._fetch(target, plan)
            if served is None:
                return
            loaded[target] = served
        self._swap_routing(Routing(plan, loaded))

    def _fetch(self, target: Target, plan: Plan) -> Served | None:
        """Download and load one version; None (reported) if it failed or the split moved on."""
        destination = self.cache_dir / f"v{target.version}-{target.sha256[:12]}"
        try:
            _remove(destination)
            self._authorize(self._fetcher)
            path = self._fetcher.download(self.name, target.version, destination)
            model = self.loader(path)
        except Exception as error:  # one version failing keeps the whole split from being swapped in
            _remove(destination)
            self._failed = (plan, time.monotonic() + self.retry_failed_after)
            self.last_error = self._report("failed", target.version, f"split not swapped in: {error}", error)
            return None
        if self._target != plan:  # moved on meanwhile: the next round loads the new plan
            return None
        return Served(target.version, target.sha256, model, path)

    def _serving_target(self) -> str:
        """'split:1=90,2=10' (and '+3' per shadow): a report names the main version, this the rest."""
        routing = self._routing
        if routing is None:
            return "split"
        return ("split:" + ",".join(f"{t.version}={w}" for t, w in routing.plan.routes)
                + "".join(f"+{t.version}" for t in routing.plan.shadows))

    def _swap_routing(self, new: Routing) -> None:
        with self._changed:
            held_before = [r for r in (self._routing, self._previous_routing) if r]
            old, self._routing = self._routing, new
            self._previous_routing = old
            main_target = next((t for t in new.loaded if t.version == new.plan.production_version),
                               new.plan.routes[0][0])
            main = new.loaded[main_target]
            if any(main is s for r in held_before for s in r.loaded.values()):
                # Loaded for an earlier routing and routed to again: served this
                # way from now, so its report (keyed by since) is a new one.
                main = new.loaded[main_target] = replace(main, since=datetime.now(timezone.utc))
            self._served, self.last_error, self._failed = main, None, None
        shares = ", ".join(f"v{t.version} {w}%" for t, w in new.plan.routes)
        copies = "".join(f", shadow v{t.version}" for t in new.plan.shadows)
        self._report("swapped", main.version, f"now routing {shares}{copies}")
        self._report_serving(main)
        keep: set[Path] = {s.path for r in (new, old) if r for s in r.loaded.values()}
        for entry in self.cache_dir.iterdir():
            if entry not in keep:
                _remove(entry)
        with self._changed:
            self._changed.notify_all()
