"""Which command ids a model still remembers deciding, and which it forgot.

A retried command (the same command id, e.g. the registrar's Idempotency-Key)
must never act twice. Remembering every id forever would cost memory and time
without bound, so a model remembers a window of them: the newest
`IdempotencyWindow.commands` ids, none decided more than
`IdempotencyWindow.seconds` before the newest event of the model.

Forgetting is made exact by the horizon: the newest decision time among the
forgotten ids. A command whose id is not remembered and that was issued at or
before the horizon may have been decided and forgotten, so it is refused
(command_expired), never decided again; one issued after the horizon cannot
have been forgotten, so if it is not remembered it was never decided.

Everything here depends only on the events folded and the window: replaying
the log under the same window gives the same memory.
"""

from datetime import datetime, timedelta, timezone
from uuid import UUID

from immutables import Map
from pydantic import Field, model_validator

from modelog_contract.domain.persistent import PersistentMap
from modelog_contract.domain.types import Frozen


class IdempotencyWindow(Frozen):
    """How long a model remembers a decided command id: while it is among the
    newest `commands` ids, and at most `seconds` after the model's newest event."""

    commands: int = Field(1000, ge=1)
    seconds: float = Field(24 * 3600.0, gt=0)


DEFAULT_WINDOW = IdempotencyWindow()


def utc(at: datetime) -> datetime:
    """A naive time is taken as UTC, the log's own zone (and comparable with aware ones)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


class DecidedCommands(Frozen):
    """The command ids a model decided within its window, oldest first.

    `command_id in decided` says whether a retry is recognised; `expired` whether
    an unrecognised command may have been forgotten."""

    # Entry number -> (command id, decision time); numbers run on from `first`.
    entries: PersistentMap[int, tuple[UUID, datetime]] = Field(default_factory=Map)
    first: int = 0  # the number of the oldest remembered entry
    horizon: datetime | None = None  # the newest decision time among forgotten ids; None: none forgotten
    newest: datetime | None = None  # the newest decision time seen: time is measured back from it
    # Command id -> entry number: derived from `entries`, so not stored.
    numbers: PersistentMap[UUID, int] = Field(default_factory=Map, exclude=True)

    @model_validator(mode="after")
    def _index(self) -> "DecidedCommands":
        # Runs on construction and on reading a stored state, never in evolve.
        object.__setattr__(self, "numbers", Map({command_id: n for n, (command_id, _) in self.entries.items()}))
        return self

    def __contains__(self, command_id: object) -> bool:
        return command_id in self.numbers

    def __len__(self) -> int:
        return len(self.entries)

    def expired(self, command_id: UUID, issued_at: datetime) -> bool:
        """Not remembered, and issued no later than an id that was forgotten:
        it may have been decided already, so deciding it now could act twice."""
        return (command_id not in self.numbers and self.horizon is not None
                and utc(issued_at) <= self.horizon)

    def remember(self, command_id: UUID, at: datetime, window: IdempotencyWindow) -> "DecidedCommands":
        """With `command_id` decided at `at`, and whatever fell out of `window` forgotten."""
        at = utc(at)
        newest = at if self.newest is None or at > self.newest else self.newest
        if command_id in self.numbers:
            return self if newest is self.newest else self.model_copy(update={"newest": newest})
        number = self.first + len(self.entries)
        entries, numbers = self.entries.set(number, (command_id, at)), self.numbers.set(command_id, number)
        first, horizon = self.first, self.horizon
        oldest_kept = newest - timedelta(seconds=window.seconds)
        # Oldest first, by decision order: an id decided earlier but stamped
        # later stays until those before it go; it is forgotten no later than
        # by count, and the horizon covers whatever is forgotten.
        while entries:
            forgotten, decided_at = entries[first]
            if len(entries) <= window.commands and decided_at >= oldest_kept:
                break
            entries, numbers = entries.delete(first), numbers.delete(forgotten)
            horizon = decided_at if horizon is None or decided_at > horizon else horizon
            first += 1
        return self.model_copy(update={"entries": entries, "numbers": numbers, "first": first,
                                       "horizon": horizon, "newest": newest})


NOTHING_DECIDED = DecidedCommands()
