"""Which version a serving process should load: a stage's or an alias's
version, followed through the projector's change feed, or by polling its
lookup while the feed is unreachable.

The lookup is the truth and the feed only the trigger. The feed reads the log
itself and may announce an event before the projector's read models hold it,
so on each event the lookup is read again until it answers at the event's seq
or later. The feed is opened before the first lookup (its opening comment says
its position is fixed), so nothing that happens between the two is missed;
after a disconnect it resumes with Last-Event-ID, and the lookup is read again
anyway, which covers any gap however long.
"""

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from modelog.client import ModelogError, _raise_for

# How long an event may be ahead of the projector's read models before the
# follower stops waiting for the lookup to catch up (the next event or poll
# looks again).
CATCH_UP_S = 10.0
# The feed sends a keep-alive every second or so; a silent feed is a dead one.
FEED_READ_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Target:
    """A version to serve, pinned by its artifact's sha256."""

    version: int
    sha256: str


def chosen(answer: dict) -> Target | None:
    """The version a lookup's answer says to serve: an alias's version, or the
    newest of a stage's (a stage usually holds one; when a move to Production
    kept the old one there, the newer is the one just promoted)."""
    if "versions" not in answer:
        return Target(answer["version"], answer["artifact"]["sha256"])
    newest = max(answer["versions"], key=lambda v: v["version"], default=None)
    return newest and Target(newest["version"], newest["artifact"]["sha256"])


def sse_messages(lines: Iterator[str]) -> Iterator[dict]:
    """Server-Sent Events as dicts of their fields (`id`, `event`, `data`); a
    comment line is a message of its own, {"comment": text}."""
    message: dict = {}
    for line in lines:
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line == "":
            if message:
                yield message
            message = {}
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            message[field] = f"{message[field]}\n{value}" if field == "data" and field in message else value


class TargetFollower:
    """Reads the lookup of one stage or alias (with If-None-Match) and follows
    the model's change feed; `on_target` is called with every answer read,
    as `choose` makes it (a subclass may follow another lookup of the model)."""

    choose: Callable[[dict], Any] = staticmethod(chosen)

    def __init__(self, projector: httpx.Client, model: str, stage: str | None, alias: str | None,
                 on_target: Callable[[Any], None]):
        if (stage is None) == (alias is None):
            raise ValueError("follow exactly one of a stage or an alias")
        self.projector, self.model, self.alias, self.on_target = projector, model, alias, on_target
        self.path = f"/v1/models/{model}/stages/{stage}" if stage else f"/v1/models/{model}/aliases/{alias}"
        self.cursor: str | None = None  # the last event's SSE id: where a reconnect resumes
        self.etag: str | None = None
        self.seq = 0  # the model's seq the last answer was read at

    def refresh(self, at_least: int = 0) -> None:
        """Read the lookup until it answers at seq `at_least` or later (or
        CATCH_UP_S passes), and hand on its target."""
        deadline = time.monotonic() + CATCH_UP_S
        while True:
            self._read()
            if self.seq >= at_least or time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def _read(self) -> None:
        response = self.projector.get(self.path, headers={"If-None-Match": self.etag} if self.etag else {})
        if response.status_code == 404 and self.alias:
            # An alias that does not exist answers without a seq: the model's
            # seq, read before asking again, says how recent that answer is.
            seq = self._model_seq()
            response = self.projector.get(self.path)
            if response.status_code == 404:
                self.etag, self.seq = None, seq
                self.on_target(None)
                return
        if response.status_code == 304:
            return
        if response.status_code == 404:  # no such model (yet): nothing to serve
            self.on_target(None)
            return
        _raise_for(response)
        self.etag = response.headers.get("etag")
        self.seq = int((self.etag or '"0"').strip('"'))
        self.on_target(self.choose(response.json()))

    def _model_seq(self) -> int:
        response = self.projector.get(f"/v1/models/{self.model}")
        return 0 if response.status_code == 404 else int(response.json()["seq"])

    def follow_feed(self, opened: Callable[[], None], stopping: Callable[[], bool]) -> None:
        """Follow the change feed until it ends or `stopping()`: read the lookup
        once the feed is positioned, then again on each event of the model.
        Raises what the connection raises (httpx.HTTPError, ModelogError)."""
        headers = {"Last-Event-ID": self.cursor} if self.cursor else {}
        timeout = httpx.Timeout(10.0, read=FEED_READ_TIMEOUT_S)
        with self.projector.stream("GET", "/v1/changes", params={"model": self.model}, headers=headers,
                                   timeout=timeout) as response:
            if not response.is_success:
                response.read()
                try:
                    _raise_for(response)
                except ModelogError as refused:
                    if refused.code == "invalid_cursor":  # a log of another shape: start afresh
                        self.cursor = None
                    raise
            for number, message in enumerate(sse_messages(response.iter_lines())):
                if stopping():
                    return
                if number == 0:  # the feed's opening comment: sent once it is positioned
                    opened()
                    self.refresh()
                if "data" in message:
                    self.cursor = message.get("id", self.cursor)
                    self.refresh(at_least=_event_seq(message["data"]))


def _event_seq(data: str) -> int:
    """The seq of the event a feed message carries (CloudEvents JSON)."""
    return int(json.loads(data)["data"]["seq"])
