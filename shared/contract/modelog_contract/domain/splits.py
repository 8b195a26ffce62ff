"""Traffic splits: which versions of a model serve what share of its requests.

A split is decided like any other change (SetTrafficSplit -> TrafficSplitSet)
and then kept consistent by the fold alone: the same function here runs in the
decider's evolve and in the projector's read models, so the state a decision
reads and the split a serving system is given never differ.

The rule when a version leaves the serving stages (archived by a promotion or
a rollback, moved out of Staging, deleted): a shadow is dropped; a canary's
route is dropped and its weight given back to the route of the version that
was in Production when the split was set (its `production_version`); if that
version itself leaves, or has no route to take the weight, the whole split is
cleared and the model's Production version serves everything again. A split
of only the Production version at 100 with no shadows is no split at all.
"""

from pydantic import Field

from modelog_contract.domain.types import Frozen, Stage

SERVING_STAGES: tuple[Stage, ...] = ("Staging", "Production")  # the only stages a split may name


class Route(Frozen):
    """One version and its share of requests, in percent. The command takes any
    integers so that a bad weight is refused by the decider with a reason code."""

    version: int
    weight: int


class TrafficSplit(Frozen):
    routes: tuple[Route, ...] = Field(min_length=1)
    shadows: tuple[int, ...] = ()  # versions sent a copy of requests; their answers are not served
    # The version in Production when the split was set: its route is the one
    # that is no canary, and the one a leaving canary's weight goes back to.
    production_version: int | None = None

    def versions(self) -> set[int]:
        return {r.version for r in self.routes} | set(self.shadows)


def normalized(split: TrafficSplit | None) -> TrafficSplit | None:
    """None for a split that routes everything to its Production version with no
    shadows: serving follows the Production stage then, as with no split."""
    if split is None:
        return None
    only = split.routes[0] if len(split.routes) == 1 else None
    if only is not None and only.version == split.production_version and not split.shadows:
        return None
    return split


def without_version(split: TrafficSplit | None, version: int) -> TrafficSplit | None:
    """The split once `version` no longer serves (see the module's rule)."""
    if split is None or version not in split.versions():
        return split
    if version == split.production_version:
        return None
    shadows = tuple(v for v in split.shadows if v != version)
    leaving = next((r for r in split.routes if r.version == version), None)
    if leaving is None:
        return normalized(split.model_copy(update={"shadows": shadows}))
    if split.production_version not in {r.version for r in split.routes}:
        return None  # no route to give the weight back to
    routes = tuple(Route(version=r.version, weight=r.weight + leaving.weight) if r.version == split.production_version
                   else r for r in split.routes if r.version != version)
    return normalized(TrafficSplit(routes=routes, shadows=shadows, production_version=split.production_version))


def canaries(split: TrafficSplit) -> list[Route]:
    """Every route but the Production version's."""
    return [r for r in split.routes if r.version != split.production_version]
