"""The sentinel's working part, apart from Faust: signals in, windows summed,
closed windows judged, breaches out. The Faust app (app.py) hands it batches
and a clock; the table it writes is any mapping plus a changelog callback, so
the unit tests drive it without a broker.

Windows close by the wall clock, `grace_s` after their end, and every model
with signals in a closed window is judged then: a window with no later signal
still closes. A window is judged once per process; a restart judges the kept
windows again, which decides nothing twice (decisions.py) and, as each version
is judged only on windows that began after it took its role, nothing stale.

A breach is judged on the book, which follows the log and may lag it: just
after a restart, the decision a killed sentinel asked for may not be in it
yet. So each request is conditional on the seq the book had (If-Match), and a
request refused for a seq the model has left, or whose outcome the answer did
not show, is judged again on the same window once the book has moved past
that seq: then the version no longer serves (the decision came) or the breach
is asked again on the model as it now is.
"""

import logging
from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, Literal, NamedTuple

from modelog_contract.domain.monitoring import Signal, VersionWindow
from modelog_contract.domain.splits import TrafficSplit
from sentinel import messages
from sentinel import windows as w
from sentinel.book import Book
from sentinel.rules import Breach, judge

log = logging.getLogger("sentinel")
Changelog = Callable[[int, str, w.Aggregate | None], None]  # (partition, key, value or None to delete)
# What the registrar's answer showed: the breach decided or refused on the model
# as judged; refused because the model had moved on (stale); no outcome yet
# (pending); or nothing taken, to be asked again as it was (retry).
Answer = Literal["decided", "refused", "stale", "pending", "retry"]


class Judged(NamedTuple):
    """A breach with what it was judged on: its request applies only at `seq`."""

    model: str
    breach: Breach
    start: int  # the closed window it was found in
    seq: int  # the model's seq in the book when judged
    split: TrafficSplit | None  # the model's split then


class Sentinel:
    def __init__(self, table: MutableMapping[str, Any], changelog: Changelog, book: Book,
                 size_s: int, grace_s: float, kept: int):
        self.table, self.changelog, self.book = table, changelog, book
        self.size_s, self.grace_s, self.kept = size_s, grace_s, kept
        self.counts: Counter[str] = Counter()
        # window start -> (model, version) -> partition: what is in the table, by window.
        self.by_window: dict[int, dict[tuple[str, int], int]] = {}
        self.closed: set[int] = set()
        self.acted: dict[tuple[str, int, str], int] = {}  # (model, version, action) -> model seq then
        # (model, window start) -> the seq a request was made at, whose outcome the book has not shown yet.
        self.watched: dict[tuple[str, int], int] = {}

    def index_table(self, partition_of: Callable[[str], int]) -> None:
        """Learn what a recovered table holds (after a restart)."""
        for key in list(self.table.keys()):
            model, version, start = w.parse_key(key)
            self.by_window.setdefault(start, {})[(model, version)] = partition_of(model)

    def absorb(self, records: Iterable[tuple[int, bytes | None]], now: float) -> None:
        """Sum a batch of (partition, raw message) into the table: one write per key."""
        oldest = self._oldest_kept(now)
        deltas: dict[tuple[int, str], w.Aggregate] = {}
        for partition, raw in records:
            for signal in self._signals(raw):
                self._add(deltas, partition, signal, oldest)
        for (partition, key), delta in deltas.items():
            value = w.merged(self.table.get(key), delta)
            self.table[key] = value
            self.changelog(partition, key, value)
            model, version, start = w.parse_key(key)
            self.by_window.setdefault(start, {})[(model, version)] = partition

    def _add(self, deltas: dict[tuple[int, str], w.Aggregate], partition: int, signal: Signal, oldest: int) -> None:
        start = w.window_start(signal.time, self.size_s)
        if start < oldest:
            self._drop("too_old", f"a signal of {signal.model} version {signal.version} at "
                                  f"{signal.time.isoformat()}, before the windows kept")
            return
        if start in self.closed:
            self.counts["late"] += 1  # summed and shown, but its window was judged without it
        key = w.key_of(signal.model, signal.version, start)
        deltas[(partition, key)] = w.merged(deltas.get((partition, key)), w.of_signal(signal))
        self.counts["signals"] += 1
        self.counts["requests"] += signal.requests

    def _signals(self, raw: bytes | None) -> list[Signal]:
        """A message's signals, each malformed one or of an unknown model counted and dropped."""
        parsed = messages.signals(raw or b"")
        for error in parsed.malformed:
            self._drop("malformed", f"a malformed signal ({error}): {(raw or b'')[:200]!r}")
        known = []
        for signal in parsed.signals:
            if self.book.knows(signal.model):
                known.append(signal)
            else:
                self._drop("unknown_model", f"a signal of {signal.model!r}, which is no model of the registry")
        return known

    def _drop(self, why: str, what: str) -> None:
        self.counts[why] += 1
        log.warning("dropped %s (%s; %d so far)", what, why, self.counts[why])

    def _oldest_kept(self, now: float) -> int:
        return int(now) - int(now) % self.size_s - (self.kept - 1) * self.size_s

    def prune(self, now: float) -> None:
        """Forget windows older than the kept ones, in the table and its changelog."""
        oldest = self._oldest_kept(now)
        for start in [s for s in self.by_window if s < oldest]:
            for (model, version), partition in self.by_window.pop(start).items():
                key = w.key_of(model, version, start)
                if self.table.pop(key, None) is not None:
                    self.changelog(partition, key, None)
            self.closed.discard(start)
        self.watched = {k: seq for k, seq in self.watched.items() if k[1] >= oldest}

    def closable(self, now: float) -> list[int]:
        return sorted(s for s in self.by_window
                      if s not in self.closed and s + self.size_s + self.grace_s <= now)

    def breaches(self, start: int) -> list[Judged]:
        """Every breach the models with signals in window `start` show once it is closed."""
        self.closed.add(start)
        found = []
        for model in sorted({m for m, _ in self.by_window.get(start, {})}):
            found += self._breaches_of(model, start)
        return found

    def _breaches_of(self, model: str, start: int) -> list[Judged]:
        if not self.book.knows(model):
            return []
        seq, split = self.book.seq(model), self.book.split(model)
        return [Judged(model, b, start, seq, split) for rule in self.book.policy(model).rollback_rules
                for b in self._judge(model, rule, start) if not self._acted_on(model, b)]

    def judged_again(self) -> list[Judged]:
        """The watched windows whose model the book has seen move past the seq asked at, judged on it as it is now."""
        found = []
        for (model, start), seq in list(self.watched.items()):
            if not self.book.knows(model) or self.book.seq(model) > seq:
                del self.watched[(model, start)]
                found += self._breaches_of(model, start) if start in self.by_window else []
        return found

    def _judge(self, model: str, rule: Any, start: int) -> list[Breach]:
        serving = self.book.serving(model)
        end = start + self.size_s
        first = end - max(rule.window_s, self.size_s)
        span: dict[int, VersionWindow] = {}
        opened = end
        for version in (serving.production, *serving.canaries):
            if version is None:
                continue
            since = serving.since.get(version)
            starts = [s for s in range(start, first - 1, -self.size_s)
                      if since is None or s >= since.timestamp()]
            present = [self.table[k] for s in starts if (k := w.key_of(model, version, s)) in self.table]
            if present:
                span[version] = w.version_window(version, w.summed(present))
                opened = min(opened, min(starts))
        if not span:
            return []
        return judge(rule, span, serving, w.instant(opened), w.instant(end))

    def _acted_on(self, model: str, breach: Breach) -> bool:
        """Asked already for this version and action, and the model has not moved since."""
        seq = self.book.seq(model)
        return self.acted.get((model, breach.version, breach.action)) == seq

    def answered(self, judged: Judged, answer: Answer) -> None:
        """Record what asking for `judged` showed; not asked again at the seq it was asked at."""
        if answer == "retry":
            return
        model, breach = judged.model, judged.breach
        self.counts[f"{answer}_{breach.action}"] += 1
        self.acted[(model, breach.version, breach.action)] = judged.seq
        if answer in ("stale", "pending"):
            self.watched[(model, judged.start)] = judged.seq

    def windows(self, model: str, now: float) -> list[dict[str, Any]]:
        """Each kept window of `model`, newest first, with every version's figures: the A/B results."""
        shown = []
        for start in sorted(self.by_window, reverse=True):
            versions = sorted(v for m, v in self.by_window[start] if m == model)
            if not versions:
                continue
            figures = [w.version_window(v, self.table[k]).model_dump(mode="json")
                       for v in versions if (k := w.key_of(model, v, start)) in self.table]
            shown.append({"start": _iso(start), "end": _iso(start + self.size_s),
                          "closed": start in self.closed, "versions": figures})
        return shown


def _iso(epoch_s: int) -> str:
    return w.instant(epoch_s).isoformat()


def one_per_change(due: list[Judged]) -> list[Judged]:
    """The first of each (model, version, action, seq): windows that close
    together and show the same breach ask for the same change, once; a later
    request for it at that seq would only be refused as stale."""
    seen: set[tuple[str, int, str, int]] = set()
    kept = []
    for judged in due:
        change = (judged.model, judged.breach.version, judged.breach.action, judged.seq)
        if change not in seen:
            seen.add(change)
            kept.append(judged)
    return kept
